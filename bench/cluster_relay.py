"""What routing a personal-runtime chat through NATS adds: two `ClusterHub`s in this process on a real
`nats-server`, a daemon's link held on hub B answering at once (one delta, then finish), chats run one at
a time on B itself (the stream is local) and on A (published to B, answered on an inbox). The difference
is the cluster's hop; no gateway, no gRPC, no daemon process: the hub's own cost only.

    .venv/bin/python -m bench.cluster_relay [--requests 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import tempfile
import time
from typing import Any

from nacl.public import PrivateKey

from bench.common import fmt, machine, machine_line, percentile, table, write_results
from lattice.server.relay.cluster import ClusterHub
from lattice.server.relay.hub import LinkClosed, RuntimeLink
from lattice.v1 import chat_pb2, relay_pb2
from lattice.wire.sealing import lock, open_sealed
from tests.cluster.processes import start_nats

LATTICE_ID = "lat_bench"
GATEWAY_KEY = PrivateKey.generate()
DAEMON_KEY = PrivateKey.generate()


async def answer_everything(hub: ClusterHub, link: RuntimeLink) -> None:
    """A daemon that answers each work item at once: one delta, then the finish."""
    while True:
        message = await link.outbox.get()
        if isinstance(message, LinkClosed):
            return
        if message.WhichOneof("message") != "work":
            continue
        work_id = message.work.work_id
        payload = open_sealed(
            message.work.sealed_payload, DAEMON_KEY, relay_pb2.WorkPayload, lattice_id=LATTICE_ID, work_id=work_id
        )
        for event in (relay_pb2.WorkEvent(delta="ok"), relay_pb2.WorkEvent(finish=relay_pb2.WorkFinish())):
            event.lattice_id, event.work_id = LATTICE_ID, work_id
            hub.receive(link, relay_pb2.WorkUpdate(work_id=work_id, sealed_event=lock(event, payload.answer_key)))


async def round_trips(hub: ClusterHub, count: int) -> list[float]:
    """Milliseconds from `run` to the finish, one chat at a time."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        async for _event in hub.run(LATTICE_ID, chat_pb2.ChatRequest(model="bench")):
            pass
        times.append((time.perf_counter() - started) * 1000)
    return times


async def measure(url: str, count: int) -> dict[str, list[float]]:
    a, b = ClusterHub(GATEWAY_KEY, 10.0, url), ClusterHub(GATEWAY_KEY, 10.0, url)
    await a.start()
    await b.start()
    link = b.attach(LATTICE_ID, "acct_bench", bytes(DAEMON_KEY.public_key))
    daemon = asyncio.create_task(answer_everything(b, link))
    deadline = time.monotonic() + 10
    while not a.reachable(LATTICE_ID):  # presence crossing the broker
        if time.monotonic() > deadline:
            raise RuntimeError("hub A never heard of the runtime held on hub B")
        await asyncio.sleep(0.01)
    try:
        await round_trips(b, 50)  # warm up both paths
        await round_trips(a, 50)
        return {"same replica": await round_trips(b, count), "across replicas": await round_trips(a, count)}
    finally:
        daemon.cancel()
        await a.stop()
        await b.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="chats per path (default 1000)")
    args = parser.parse_args()
    nats = start_nats(pathlib.Path(tempfile.mkdtemp(prefix="lattice-bench-nats-")))
    try:
        results = asyncio.run(measure(nats.url, args.requests))
    finally:
        nats.stop()
    info = machine()
    rows = []
    summary: dict[str, Any] = {}
    for name, times in results.items():
        p50, p99 = percentile(times, 50), percentile(times, 99)
        summary[name] = {"p50_ms": p50, "p99_ms": p99, "requests": len(times)}
        rows.append([name, fmt(p50, 3), fmt(p99, 3)])
    added = summary["across replicas"]["p50_ms"] - summary["same replica"]["p50_ms"]
    print(machine_line(info))
    print(table(["path", "p50 ms", "p99 ms"], rows))
    print(f"added by the NATS hop: {fmt(added, 3)} ms at p50")
    write_results("cluster_relay", {"machine": info, "requests": args.requests, "results": summary})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
