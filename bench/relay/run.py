"""The run: the phases in order, their report, the results file, and the command line."""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

import bench.relay
from bench.common import (
    REPO,
    Process,
    fmt,
    load_average,
    machine,
    machine_line,
    percentile,
    running,
    table,
    write_results,
)
from bench.fast_upstream import MODEL_ID
from bench.gateway_overhead import settle
from bench.relay.concurrency import concurrency
from bench.relay.dispatch import dispatches
from bench.relay.processes import (
    GATEWAY_ENV,
    Lattice,
    start_lattice,
    start_longpoll_daemon,
    start_longpoll_gateway,
    start_upstream,
)
from bench.relay.round_trip import round_trips, warm_up
from bench.relay.targets import WARMUP_REQUESTS, DirectTarget, GrpcChatTarget, JsonChatTarget, Target

TARGET_ORDER = ("direct", "lattice-proxy", "relay-grpc", "relay-shim", "longpoll")
PHASES = ("round-trip", "dispatch", "concurrency")


def report(
    trips: dict[str, dict[str, Any]],
    longpoll_dispatch: dict[str, float],
    dispatch: dict[str, dict[str, Any]],
    burst: int,
    levels: list[dict[str, Any]],
) -> str:
    parts: list[str] = []
    if trips:
        headers = ["target", "p50 ms", "p99 ms", "added p50", "added p99", "CPU ms/req", "errors"]
        rows = [
            [
                name,
                fmt(s["p50_ms"]),
                fmt(s["p99_ms"]),
                fmt(s["added_p50_ms"]),
                fmt(s["added_p99_ms"]),
                fmt(s["cpu_ms_per_request"]),
                f"{s['sent'] - s['ok']}/{s['sent']}",
            ]
            for name, s in trips.items()
        ]
        parts.append("### Round trip, one chat at a time (real processes)\n\n" + table(headers, rows))
        if "longpoll" in trips:
            ratios = [
                [
                    f"longpoll / {name}",
                    fmt(trips["longpoll"]["added_p50_ms"] / trips[name]["added_p50_ms"]),
                    fmt(trips["longpoll"]["added_p99_ms"] / trips[name]["added_p99_ms"]),
                ]
                for name in ("relay-grpc", "relay-shim")
                if name in trips
            ]
            if ratios:
                parts.append(
                    "Added latency, long polling over the bidirectional stream (> 1: the stream adds less):\n\n"
                    + table(["ratio", "added p50", "added p99"], ratios)
                )
    if dispatch:
        headers = ["transport", "dispatch p50", "dispatch p99", "relay hop p50", "relay hop p99"]
        if burst:
            headers += [f"burst of {burst}: dispatch p50", "p99", "max", "relay hop p50", "p99"]
        keys = ["dispatch_p50_ms", "dispatch_p99_ms", "hop_p50_ms", "hop_p99_ms"]
        if burst:
            keys += ["burst_dispatch_p50_ms", "burst_dispatch_p99_ms", "burst_dispatch_max_ms"]
            keys += ["burst_hop_p50_ms", "burst_hop_p99_ms"]
        rows = [[name, *(fmt(s[k], 3 if "burst" not in k else 1) for k in keys)] for name, s in dispatch.items()]
        if longpoll_dispatch:
            row = [
                "long polling, real processes",
                fmt(longpoll_dispatch["p50_ms"], 3),
                fmt(longpoll_dispatch["p99_ms"], 3),
            ]
            rows.append(row + ["-"] * (len(headers) - len(row)))
        values = list(dispatch.values())
        if len(values) == 2:
            bidi, poll = values
            rows.append(["ratio long polling / bidi", *(fmt(poll[k] / bidi[k]) for k in keys)])
        parts.append(
            "### Dispatch, ms (in-process harness): app sent the chat -> daemon has the work item; relay hop: "
            "gateway hands it to its relay -> daemon has it\n\n" + table(headers, rows)
        )
    if levels:
        headers = ["target", "at once", "ok", "wrong", "lost", "errors", "wall s", "p50 ms", "p99 ms"]
        headers += ["gateway peak", "provider peak", "CPU ms/req", "client CPU ms/req"]
        rows = [
            [
                s["target"],
                str(s["concurrency"]),
                str(s["ok"]),
                str(s["wrong"]),
                str(s["lost"]),
                str(s["errors"]),
                fmt(s["wall_s"]),
                fmt(s["p50_ms"], 0),
                fmt(s["p99_ms"], 0),
                fmt(s["gateway_peak_in_flight"], 0),
                fmt(s["provider_peak_in_flight"], 0),
                fmt(s["cpu_ms_per_request"]),
                fmt(s["client_cpu_ms_per_request"]),
            ]
            for s in levels
        ]
        parts.append("### Concurrent work items on one daemon (real processes)\n\n" + table(headers, rows))
    return "\n\n".join(parts)


async def run(args: argparse.Namespace) -> int:
    print(f"relay: phases {', '.join(args.phases)}; machine load {load_average()}", flush=True)
    trips: dict[str, dict[str, Any]] = {}
    longpoll_dispatch: dict[str, float] = {}
    dispatch: dict[str, dict[str, Any]] = {}
    levels: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="lattice-bench-relay-") as tmp, running([]) as processes:
        work = pathlib.Path(tmp)
        upstream, provider_url = start_upstream(work, "fast-upstream")
        processes.append(upstream)
        held, held_url = start_upstream(work, "held-upstream", "--delay-ms", f"{args.hold_ms:g}", "--echo")
        processes.append(held)

        lattice: Lattice | None = None
        if "round-trip" in args.phases or "concurrency" in args.phases:
            lattice = start_lattice(work, provider_url)
            processes.append(Process("lattice", lattice.gateway.process, lattice.gateway.log_path))
        try:
            info = machine({"pynacl": _version("pynacl"), "starlette": _version("starlette")})
            print(machine_line(info), flush=True)
            if lattice is not None and "round-trip" in args.phases:
                print("round trip:", flush=True)
                lp_gateway, lp_url = start_longpoll_gateway(work)
                processes.append(lp_gateway)
                lp_daemon = start_longpoll_daemon(work, lp_url, provider_url, "longpoll-daemon")
                processes.append(lp_daemon)
                gw, dm = lattice.gateway.process.pid, lattice.daemon.pid()
                lp = [lp_gateway.process.pid, lp_daemon.process.pid]
                every: list[Target] = [
                    DirectTarget("direct", provider_url, [upstream.process.pid], args.timeout),
                    GrpcChatTarget(
                        "lattice-proxy", lattice.gateway.grpc_target, MODEL_ID, lattice.key, [gw], args.timeout
                    ),
                    GrpcChatTarget(
                        "relay-grpc", lattice.gateway.grpc_target, lattice.model, lattice.key, [gw, dm], args.timeout
                    ),
                    JsonChatTarget(
                        "relay-shim",
                        lattice.gateway.http_url,
                        lattice.model,
                        [gw, dm],
                        args.timeout,
                        {"x-api-key": lattice.key},
                    ),
                    JsonChatTarget("longpoll", lp_url, MODEL_ID, lp, args.timeout, {}),
                ]
                targets = [t for t in every if t.name in args.targets]
                try:
                    for target in list(targets):
                        problem = await warm_up(target, args.timeout)
                        if problem:
                            skipped[target.name] = f"warm-up failed: {problem}"
                            targets.remove(target)
                    all_pids = [p.process.pid for p in processes] + [dm]
                    results = await round_trips(targets, args.requests, args.rounds, args.timeout, all_pids)
                    trips = {name: r.summary(results.get("direct")) for name, r in results.items()}
                    for target in targets:
                        if isinstance(target, JsonChatTarget) and target.dispatch:
                            samples = [d * 1000 for d in target.dispatch[WARMUP_REQUESTS:]]
                            longpoll_dispatch = {
                                "samples": len(samples),
                                "p50_ms": percentile(samples, 50),
                                "p99_ms": percentile(samples, 99),
                            }
                finally:
                    for target in every:
                        await target.aclose()
                    lp_daemon.stop()

            if "dispatch" in args.phases:
                print("dispatch (in-process harness):", flush=True)
                found = await dispatches(
                    work, provider_url, args.harness_requests, args.rounds, args.burst, args.timeout
                )
                dispatch = {d.transport: d.summary() for d in found}

            if lattice is not None and "concurrency" in args.phases:
                print(f"concurrency: provider holds each chat {args.hold_ms:g} ms", flush=True)
                lattice.daemon.stop()
                lattice.start_daemon(held_url)
                lp_gateway, lp_url = start_longpoll_gateway(work)
                processes.append(lp_gateway)
                lp_daemon = start_longpoll_daemon(work, lp_url, held_url, "longpoll-daemon-held")
                processes.append(lp_daemon)

                async def longpoll_in_flight(client: httpx.AsyncClient) -> float:
                    return float((await client.get(f"{lp_url}/healthz")).json()["in_flight"])

                limit = args.hold_ms / 1000 + args.timeout
                gw, dm = lattice.gateway.process.pid, lattice.daemon.pid()
                held_targets: list[tuple[Target, Callable[[httpx.AsyncClient], Awaitable[float]]]] = [
                    (
                        GrpcChatTarget(
                            "relay-grpc", lattice.gateway.grpc_target, lattice.model, lattice.key, [gw, dm], limit
                        ),
                        lattice.running,
                    ),
                    (
                        JsonChatTarget(
                            "relay-shim",
                            lattice.gateway.http_url,
                            lattice.model,
                            [gw, dm],
                            limit,
                            {"x-api-key": lattice.key},
                        ),
                        lattice.running,
                    ),
                    (
                        JsonChatTarget(
                            "longpoll", lp_url, MODEL_ID, [lp_gateway.process.pid, lp_daemon.process.pid], limit, {}
                        ),
                        longpoll_in_flight,
                    ),
                ]
                held_targets = [(t, f) for t, f in held_targets if t.name in args.targets]

                try:
                    for count in args.concurrency:
                        for target, in_flight in held_targets:
                            await settle([p.process.pid for p in processes] + [dm])
                            level = await concurrency(target, count, limit, held_url, in_flight)
                            levels.append(level)
                            print(
                                f"  {count} at once, {target.name}: ok {level['ok']}, wrong {level['wrong']}, "
                                f"errors {level['errors']} {level['error_kinds'] or ''}, "
                                f"wall {fmt(level['wall_s'])} s, "
                                f"gateway peak {level['gateway_peak_in_flight']:.0f}, "
                                f"provider peak {level['provider_peak_in_flight']:.0f}; load {load_average()}",
                                flush=True,
                            )
                finally:
                    for target, _ in held_targets:
                        await target.aclose()
            info["load_average_at_end"] = load_average()
        finally:
            if lattice is not None:
                lattice.daemon.stop()

    text = report(trips, longpoll_dispatch, dispatch, args.burst, levels)
    print()
    print(text)
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    path = write_results(
        "relay",
        {
            "benchmark": "relay",
            "machine": info,
            "settings": vars(args),
            "gateway_env": GATEWAY_ENV,
            "skipped": skipped,
            "round_trip": trips,
            "longpoll_dispatch_real_processes": longpoll_dispatch,
            "dispatch_harness": dispatch,
            "concurrency": levels,
            "report": text,
        },
    )
    print(f"\nwritten to {path.relative_to(REPO)}")
    return 0


def _version(distribution: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.relay",  # argparse would say __main__.py
        description=bench.relay.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--phases", nargs="+", default=list(PHASES), choices=PHASES, help="what to measure")
    parser.add_argument("--requests", type=int, default=600, help="round trips per target (after 50 warm-up)")
    parser.add_argument("--harness-requests", type=int, default=1000, help="dispatches per transport in the harness")
    parser.add_argument("--rounds", type=int, default=5, help="the requests are split in this many rounds")
    parser.add_argument(
        "--burst", type=int, default=256, help="harness: chats sent at once for burst dispatch (0: none)"
    )
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[256, 512], help="chats in flight at once on one daemon"
    )
    parser.add_argument("--hold-ms", type=float, default=2000.0, help="how long the provider holds each chat then")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a chat counts as lost")
    parser.add_argument("--targets", nargs="+", default=list(TARGET_ORDER), choices=TARGET_ORDER)
    args = parser.parse_args(argv)
    if "direct" not in args.targets:
        parser.error("the direct target is the baseline: keep it")
    return asyncio.run(run(args))
