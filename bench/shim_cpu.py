"""CPU per REST request through the shim: the in-process channel against the loopback gRPC channel.

Two `lattice serve` processes in front of one `bench.fast_upstream`, alike but for `shim_transport`
(`in_process`, the default, and `channel`, the path before it). They take turns, in alternating order
each repetition, at one offered rate (open loop, as `gateway_overhead`); each cell reports the
gateway process's user + system CPU per request sent and its latency percentiles. CPU per request is
what this compares: it moves much less than latency when the machine is shared. Unpinned.
With `--against DIR` (another checkout, e.g. a `git worktree` of an older commit) it compares this
tree's shim with that tree's instead, both in-process: a before/after of a change in one run.

    .venv/bin/python -m bench.shim_cpu --rate 50 --seconds 6 --repeats 4
    .venv/bin/python -m bench.shim_cpu --rate 200 --against /tmp/before
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence

import httpx

from bench.common import cpu_seconds
from bench.fast_upstream import MODEL_ID
from bench.peers import lattice_config, start_fast_upstream, start_lattice

TRANSPORTS = ("in_process", "channel")


async def load(url: str, rate: float, seconds: float, stream: bool) -> tuple[int, list[float]]:
    """Open loop at `rate`: request i is due at start + i / rate; returns the answers that came back
    whole (200) and each one's latency from its due time."""
    body = {"model": MODEL_ID, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=256)) as client:

        async def one(due: float) -> bool:
            async with client.stream("POST", url, json=body) as answer:
                async for _ in answer.aiter_raw():
                    pass
            latencies.append(time.monotonic() - due)
            return answer.status_code == 200

        start, requests = time.monotonic(), []
        for i in range(int(rate * seconds)):
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            requests.append(asyncio.ensure_future(one(due)))
        results = await asyncio.gather(*requests, return_exceptions=True)
    return sum(1 for r in results if r is True), sorted(latencies)


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50, help="offered load, req/s")
    parser.add_argument("--seconds", type=float, default=6, help="seconds of load per cell")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--against", metavar="DIR", help="compare with the lattice checkout at DIR, not transports")
    args = parser.parse_args(argv)
    contenders = TRANSPORTS if args.against is None else ("this", "against")
    cells: dict[tuple[str, bool], list[float]] = {(t, s): [] for t in contenders for s in (True, False)}
    with tempfile.TemporaryDirectory(prefix="lattice-bench-") as log_dir:
        upstream, root = start_fast_upstream(log_dir)
        config = os.path.join(log_dir, "lattice.toml")
        lattice_config(config, f"{root}/v1")
        if args.against is None:
            gateways = [start_lattice(log_dir, config, t, LATTICE_SHIM_TRANSPORT=t)[0] for t in TRANSPORTS]
        else:
            path = f"{args.against}:{args.against}/clients/python"
            gateways = [
                start_lattice(log_dir, config, "this", LATTICE_SHIM_WORKERS="1")[0],
                start_lattice(log_dir, config, "against", LATTICE_SHIM_WORKERS="1", PYTHONPATH=path)[0],
            ]
        try:
            for gateway in gateways:  # warm up
                asyncio.run(load(f"{gateway.http_url}/v1/chat/completions", args.rate, 1, True))
            for repetition in range(args.repeats):
                order = list(zip(contenders, gateways, strict=True))
                for stream in (True, False):
                    for transport, gateway in order if repetition % 2 == 0 else order[::-1]:
                        sent = int(args.rate * args.seconds)
                        before = cpu_seconds(gateway.process.pid)
                        url = f"{gateway.http_url}/v1/chat/completions"
                        ok, latencies = asyncio.run(load(url, args.rate, args.seconds, stream))
                        ms = (cpu_seconds(gateway.process.pid) - before) * 1000 / sent
                        cells[(transport, stream)].append(ms)
                        print(
                            f"rep {repetition + 1}  {transport:10}  stream={stream!s:5}  ok {ok}/{sent}  "
                            f"CPU {ms:.2f} ms/req  p50 {percentile(latencies, 0.5):.1f} ms  "
                            f"p99 {percentile(latencies, 0.99):.1f} ms",
                            flush=True,
                        )
        finally:
            for gateway in gateways:
                gateway.stop()
            upstream.stop()
    print(f"\nmedian CPU ms per request at {args.rate:g} req/s ({args.repeats} repetitions)")
    for stream in (True, False):
        first, second = (statistics.median(cells[(t, stream)]) for t in contenders)
        print(
            f"  stream={stream!s:5}  {contenders[0]} {first:.2f}  {contenders[1]} {second:.2f}  "
            f"ratio {first / second:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
