"""The run: the processes of each phase, the steady load, the report, the results file, the command line."""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import pathlib
import random
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

import bench.cluster
from bench.cluster.daemons import SimulatedDaemon, connect_all, pair_runtimes
from bench.common import REPO, fmt, load_average, machine, machine_line, percentile, table, write_results
from bench.relay.processes import GATEWAY_ENV
from bench.relay.targets import GrpcChatTarget, error_kind
from lattice.server.relay import PERSONAL_PREFIX
from tests.cluster.processes import NatsServer, start_nats, start_replicas
from tests.gateway_process import TEST_HOME, GatewayProcess
from tests.personal_runtime_fixtures import create_key
from tests.postgres_server import fresh_database, postgres_server

ACCOUNT = "acct_bench"
WARMUP_PER_REPLICA = 20


@dataclass
class Load:
    """What the apps saw in one phase."""

    latencies_ms: list[float] = field(default_factory=list)
    same_ms: list[float] = field(default_factory=list)
    across_ms: list[float] = field(default_factory=list)
    sent: int = 0
    misrouted: int = 0
    lost: collections.Counter[str] = field(default_factory=collections.Counter)
    timeline: list[tuple[float, float]] = field(default_factory=list)
    """(seconds into the load when sent, ms) per answered chat: whether the slow ones come together."""
    behind_ms: float = 0.0
    """How late the last chat left against the schedule: the load generator keeping up, or not."""

    def summary(self) -> dict[str, Any]:
        def stats(values: list[float]) -> dict[str, float]:
            return {"p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99), "count": len(values)}

        return {
            "sent": self.sent,
            "ok": len(self.latencies_ms),
            "misrouted": self.misrouted,
            "lost": sum(self.lost.values()),
            "lost_kinds": dict(self.lost.most_common(5)),
            "behind_schedule_ms": self.behind_ms,
            "all": stats(self.latencies_ms),
            "same_replica": stats(self.same_ms),
            "across_replicas": stats(self.across_ms),
            "timeline": self.timeline,
        }


@contextlib.contextmanager
def replicas_running(work: pathlib.Path, count: int, env: dict[str, str]) -> Iterator[list[GatewayProcess]]:
    replicas = start_replicas(work, count, env)
    try:
        yield replicas
    finally:
        for replica in replicas:
            replica.stop()


async def wait_reachable(replicas: list[GatewayProcess], key: str, count: int, limit: float) -> None:
    """Until every replica lists all `count` runtimes as reachable (presence has crossed the broker)."""
    deadline = time.monotonic() + limit
    async with httpx.AsyncClient(headers={"x-api-key": key}, timeout=30) as client:
        for replica in replicas:
            while True:
                reachable, token = 0, ""
                while True:
                    page = await client.get(
                        f"{replica.http_url}/v1/personal-runtimes", params={"pageSize": 500, "pageToken": token}
                    )
                    page.raise_for_status()
                    body = page.json()
                    reachable += sum(r["status"] == "reachable" for r in body.get("runtimes", ()))
                    token = body.get("nextPageToken", "")
                    if not token:
                        break
                if reachable == count:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{replica.grpc_target} sees {reachable} of {count} runtimes reachable")
                await asyncio.sleep(0.5)


async def steady_load(
    apps: list[GrpcChatTarget], daemons: list[SimulatedDaemon], holder: dict[str, int], args: argparse.Namespace
) -> Load:
    """`args.rate` chats a second for `args.seconds`, open loop: each to a random runtime, on the replicas
    in turn. Seeded, so both phases send the same sequence."""
    load = Load()
    rng = random.Random(21)
    total = round(args.rate * args.seconds)
    start = time.monotonic()

    async def one(number: int) -> None:
        daemon = rng.choice(daemons)
        lattice_id = daemon.runtime.lattice_id
        replica = number % len(apps)
        load.sent += 1
        sent = time.monotonic()
        try:
            answer = await asyncio.wait_for(apps[replica].call(str(number), PERSONAL_PREFIX + lattice_id), args.timeout)
        except Exception as error:
            load.lost[error_kind(error)] += 1
            return
        elapsed = (time.monotonic() - sent) * 1000
        if answer != lattice_id:
            load.misrouted += 1
            return
        load.latencies_ms.append(elapsed)
        load.timeline.append((round(sent - start, 4), round(elapsed, 3)))
        (load.same_ms if holder[lattice_id] == replica else load.across_ms).append(elapsed)

    tasks = []
    for number in range(total):
        delay = start + number / args.rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            load.behind_ms = max(load.behind_ms, -delay * 1000)
        tasks.append(asyncio.create_task(one(number)))
    await asyncio.gather(*tasks)
    return load


async def phase(
    name: str, work: pathlib.Path, database_url: str, nats: NatsServer | None, replicas: int, args: argparse.Namespace
) -> dict[str, Any]:
    env = {"LATTICE_DATABASE_URL": database_url, **GATEWAY_ENV}
    if nats is not None:
        env["LATTICE_BROKER_URL"] = nats.url
    if args.heartbeat_seconds:
        env["LATTICE_RELAY_HEARTBEAT_SECONDS"] = f"{args.heartbeat_seconds:g}"
    print(f"{name}: {replicas} replica(s), {args.daemons} daemons; load {load_average()}", flush=True)
    key = await asyncio.to_thread(create_key, env, ACCOUNT)  # also upgrades the fresh database's schema
    runtimes = await pair_runtimes(database_url, TEST_HOME, ACCOUNT, args.daemons)
    with replicas_running(work, replicas, env) as gateways:
        daemons = [SimulatedDaemon(r, gateways[i % len(gateways)].grpc_target) for i, r in enumerate(runtimes)]
        holder = {d.runtime.lattice_id: i % len(gateways) for i, d in enumerate(daemons)}
        started = time.monotonic()
        tasks = await connect_all(daemons, args.timeout * 3)
        await wait_reachable(gateways, key, args.daemons, 60)
        print(f"  {args.daemons} daemons connected and reachable in {time.monotonic() - started:.1f} s", flush=True)
        apps = [GrpcChatTarget(g.grpc_target, g.grpc_target, "", key, [], args.timeout) for g in gateways]
        try:
            for number in range(WARMUP_PER_REPLICA * len(gateways)):  # connections, first-call paths
                daemon = daemons[number % len(daemons)]
                answer = await apps[number % len(apps)].call("warm-up", PERSONAL_PREFIX + daemon.runtime.lattice_id)
                if answer != daemon.runtime.lattice_id:
                    raise RuntimeError(f"warm-up answered by {answer!r}, not {daemon.runtime.lattice_id}")
            before = sum(d.work_items for d in daemons)
            load = await steady_load(apps, daemons, holder, args)
            received = sum(d.work_items for d in daemons) - before
        finally:
            for app in apps:
                await app.aclose()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    summary = load.summary()
    summary.update(replicas=replicas, daemons=args.daemons, work_items_received=received)
    summary["duplicated"] = max(0, received - load.sent)
    print(
        f"  sent {load.sent}, ok {summary['ok']}, lost {summary['lost']} {summary['lost_kinds'] or ''}, "
        f"misrouted {load.misrouted}, work items {received}; p50 {fmt(summary['all']['p50_ms'])} ms, "
        f"p99 {fmt(summary['all']['p99_ms'])} ms; load {load_average()}",
        flush=True,
    )
    return summary


def report(phases: dict[str, dict[str, Any]]) -> str:
    single = phases.get("single")
    headers = ["phase", "replicas", "daemons", "sent", "ok", "lost", "misrouted", "duplicated"]
    headers += ["p50 ms", "p99 ms", "added p50", "added p99", "same-replica p50", "across-replica p50"]
    rows = []
    for name, s in phases.items():
        added = ["-", "-"]
        if single is not None and name != "single":
            added = [fmt(s["all"][f"{q}_ms"] - single["all"][f"{q}_ms"]) for q in ("p50", "p99")]
        rows.append(
            [
                name,
                str(s["replicas"]),
                str(s["daemons"]),
                str(s["sent"]),
                str(s["ok"]),
                str(s["lost"]),
                str(s["misrouted"]),
                str(s["duplicated"]),
                fmt(s["all"]["p50_ms"]),
                fmt(s["all"]["p99_ms"]),
                *added,
                fmt(s["same_replica"]["p50_ms"]),
                fmt(s["across_replicas"]["p50_ms"]),
            ]
        )
    return table(headers, rows)


async def run(args: argparse.Namespace) -> int:
    phases: dict[str, dict[str, Any]] = {}
    info = machine()
    print(machine_line(info), flush=True)
    with tempfile.TemporaryDirectory(prefix="lattice-bench-cluster-") as tmp, postgres_server() as postgres:
        work = pathlib.Path(tmp)
        nats = start_nats(work)
        try:
            if "single" in args.phases:
                phases["single"] = await phase("single", work, await fresh_database(postgres), None, 1, args)
            if "cluster" in args.phases:
                database = await fresh_database(postgres)
                phases["cluster"] = await phase("cluster", work, database, nats, args.replicas, args)
        finally:
            nats.stop()
    info["load_average_at_end"] = load_average()
    text = report(phases)
    print()
    print(text)
    path = write_results(
        "cluster",
        {"benchmark": "cluster", "machine": info, "settings": vars(args), "gateway_env": GATEWAY_ENV, **phases},
    )
    print(f"\nwritten to {path.relative_to(REPO)}")
    failed = any(s["lost"] or s["misrouted"] or s["duplicated"] for s in phases.values())
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cluster",  # argparse would say __main__.py
        description=bench.cluster.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--daemons", type=int, default=100, help="simulated daemons, one paired runtime each")
    parser.add_argument("--rate", type=float, default=20.0, help="chats a second, open loop")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the load runs in each phase")
    parser.add_argument("--replicas", type=int, default=3, help="replicas in the cluster phase")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a chat counts as lost")
    parser.add_argument(
        "--heartbeat-seconds", type=float, default=0.0, help="the relay's heartbeat period (0: the gateway's default)"
    )
    parser.add_argument("--phases", nargs="+", default=["single", "cluster"], choices=["single", "cluster"])
    args = parser.parse_args(argv)
    if args.daemons < 1 or args.rate <= 0 or args.seconds <= 0 or args.replicas < 1:
        parser.error("--daemons, --rate, --seconds and --replicas must be positive")
    return asyncio.run(run(args))
