"""Gateway overhead: the same fast upstream called directly and through each gateway, at fixed offered loads.

    .venv/bin/python -m bench.gateway_overhead                 # 50/100/200/500 req/s, 3 s each, 3 repetitions
    .venv/bin/python -m bench.gateway_overhead --rates 50 200 --duration 2 --repeats 2
    .venv/bin/python -m bench.gateway_overhead --mode non-stream --no-pin    # whole answers, unpinned

Targets, side by side in one run (all on 127.0.0.1, all in front of one `bench.fast_upstream` process):
  direct         the upstream itself, over HTTP (the baseline)
  lattice-grpc   Lattice's StreamChat over grpc.aio, its [[upstreams]] entry pointing at the upstream
  lattice-shim   Lattice's OpenAI-compatible shim, /v1/chat/completions (`stream: true` unless --mode non-stream)
  lattice-shim-channel  the same shim in a second Lattice process whose shim reaches its server over a
                 loopback gRPC channel (`shim_transport = "channel"`: the path before the in-process one)
  lattice-shim-workers  the same shim served by `--shim-workers` worker processes (default 2) of a third
                 Lattice process, each a gRPC client of its server; its CPU counts the workers'
  litellm        LiteLLM's proxy (bench/.venvs/litellm), its model_list pointing at the upstream
  local-lattice  Local Lattice's LM Studio proxy mode (bench/.venvs/local-lattice), LM_STUDIO_URL = the upstream
A target whose virtualenv is missing is skipped and the reason recorded (`make bench` creates them).

The load is open-loop: request i is due at start + i / rate whatever happened to earlier ones, and its
latency is measured from that due time (so a gateway that falls behind shows it, rather than slowing
the client down). Per request: time to the first body chunk (first gRPC message) and to the last byte
(end of stream), and whether the answer was complete and right. Each cell is one target at one rate
for `--duration` seconds; every request has a `--timeout`, and a request due while `--max-in-flight`
are still unfinished is not sent but counted as an error (the target is far behind, and a client
queueing thousands of requests would measure itself); the run ends by itself. Between cells the run
waits until every server is idle again, so a saturated gateway's backlog does not slow the next cell, and
each cell starts on a new client (HTTP pool or gRPC channel) warmed by a few requests, so an overloaded
client does not either. The HTTP client is aiohttp, the cheapest here (a third of httpx's CPU per request).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import aiohttp
import grpc

from bench.common import (
    PEER_VENVS,
    REPO,
    cpu_seconds,
    fmt,
    load_average,
    machine,
    machine_line,
    median,
    percentile,
    pin,
    running,
    table,
    venv_version,
    write_results,
)
from bench.fast_upstream import ANSWER, MODEL_ID
from bench.peers import lattice_config, start_fast_upstream, start_lattice, start_litellm, start_local_lattice
from lattice.v1 import chat_pb2, chat_pb2_grpc, common_pb2

QUESTION = "What is the capital of France?"
TARGET_ORDER = (
    "direct",
    "lattice-grpc",
    "lattice-shim",
    "lattice-shim-channel",
    "lattice-shim-workers",
    "litellm",
    "local-lattice",
)
WARMUP_REQUESTS = 50
CELL_WARMUP_REQUESTS = 10  # before each cell, on its new client


class Target(Protocol):
    name: str
    pid: int | None  # the process whose CPU time the cell reports (the gateway, or the upstream for direct)

    async def call(self) -> tuple[float, float]:
        """One request; returns (first content, last byte) as time.monotonic(); raises on a bad answer."""
        ...

    async def reopen(self) -> None:
        """A new client (connections, pool), so one cell's overload cannot slow the next cell's client."""
        ...

    async def aclose(self) -> None: ...


class BadAnswer(Exception):
    pass


def http_body(stream: bool) -> dict[str, Any]:
    return {
        "model": MODEL_ID,
        "messages": [{"role": "user", "content": QUESTION}],
        "stream": stream,
        "max_tokens": 16,
        "temperature": 0,
    }


class HttpTarget:
    def __init__(
        self, name: str, base_url: str, pid: int | None, timeout: float, headers: dict[str, str], stream: bool
    ) -> None:
        self.name = name
        self.pid = pid
        self._stream = stream
        self._body = http_body(stream)
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = headers
        self._timeout = timeout
        self._client = self._new_client()

    def _new_client(self) -> aiohttp.ClientSession:
        # aiohttp rather than httpx: a third of the client CPU per request (0.23 against 0.65-0.93 ms at
        # 500 req/s), CPU that on a 2-core machine the gateway gets; and httpx's pool, once a cell had
        # overloaded it, slowed every later cell of its target.
        return aiohttp.ClientSession(
            headers=self._headers,
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            connector=aiohttp.TCPConnector(limit=256),
        )

    async def call(self) -> tuple[float, float]:
        first = 0.0
        body = bytearray()
        async with self._client.post(self._url, json=self._body) as response:
            async for chunk in response.content.iter_any():
                if chunk and not first:
                    first = time.monotonic()
                body += chunk
            last = time.monotonic()
            if response.status != 200:
                raise BadAnswer(f"HTTP {response.status}: {bytes(body[:120])!r}")
        if self._stream and (b" Paris" not in body or not body.rstrip().endswith(b"[DONE]")):
            raise BadAnswer(f"incomplete stream: {bytes(body[-120:])!r}")
        if not self._stream and ANSWER.encode() not in body:
            raise BadAnswer(f"wrong answer: {bytes(body[:120])!r}")
        return first or last, last

    async def reopen(self) -> None:
        await self._client.close()
        self._client = self._new_client()

    async def aclose(self) -> None:
        await self._client.close()


class GrpcTarget:
    def __init__(self, name: str, address: str, pid: int | None, timeout: float, stream: bool) -> None:
        self.name = name
        self.pid = pid
        self._timeout = timeout
        self._stream = stream
        self._address = address
        self._channel = grpc.aio.insecure_channel(address)
        self._stub = chat_pb2_grpc.ChatServiceStub(self._channel)
        message = common_pb2.Message(role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text=QUESTION)])
        self._request = chat_pb2.ChatRequest(model=MODEL_ID, messages=[message], max_tokens=16, temperature=0)

    async def call(self) -> tuple[float, float]:
        if not self._stream:
            response = await self._stub.Chat(self._request, timeout=self._timeout)
            last = time.monotonic()
            if "".join(part.text for part in response.message.content) != ANSWER:
                raise BadAnswer(f"wrong answer: {response.message!r:.120}")
            return last, last
        first = 0.0
        text: list[str] = []
        done = False
        async for message in self._stub.StreamChat(self._request, timeout=self._timeout):
            if message.HasField("delta"):
                if message.delta.content and not first:
                    first = time.monotonic()
                text.append(message.delta.content)
            elif message.HasField("done"):
                done = True
        last = time.monotonic()
        if not done or "".join(text) != ANSWER:
            raise BadAnswer(f"incomplete stream: done={done} text={''.join(text)!r}")
        return first or last, last

    async def reopen(self) -> None:
        await self._channel.close()
        self._channel = grpc.aio.insecure_channel(self._address)
        self._stub = chat_pb2_grpc.ChatServiceStub(self._channel)

    async def aclose(self) -> None:
        await self._channel.close()


@dataclass
class Cell:
    """One target at one offered rate for one repetition."""

    target: str
    rate: float
    repetition: int
    sent: int
    ok: int
    errors: int
    error_kinds: dict[str, int]
    achieved_rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    ttfc_p50_ms: float
    ttfc_p99_ms: float
    client_lag_p99_ms: float  # how late the client itself sent requests: the harness's own limit
    cpu_ms_per_request: float  # CPU time of the target's process (gateway, or the upstream for direct)
    added_p50_ms: float = float("nan")
    added_p99_ms: float = float("nan")
    latencies_ms: list[float] = field(default_factory=list, repr=False)


async def run_cell(
    target: Target, rate: float, duration: float, limit: float, repetition: int, max_in_flight: int
) -> Cell:
    loop = asyncio.get_running_loop()
    count = max(1, round(rate * duration))
    interval = 1.0 / rate
    latencies: list[float] = []
    ttfc: list[float] = []
    lags: list[float] = []
    ends: list[float] = []
    errors: collections.Counter[str] = collections.Counter()

    in_flight = 0

    async def one(due: float) -> None:
        nonlocal in_flight
        lags.append(time.monotonic() - due)
        try:
            first, last = await asyncio.wait_for(target.call(), limit)
        except TimeoutError:
            errors["timeout"] += 1
        except BadAnswer as error:
            errors[str(error)[:100]] += 1
        except grpc.aio.AioRpcError as error:
            errors[f"gRPC {error.code().name}: {(error.details() or '')[:80]}"] += 1
        except Exception as error:
            errors[f"{type(error).__name__}: {str(error)[:80]}"] += 1
        else:
            latencies.append(last - due)
            ttfc.append(first - due)
            ends.append(last)
        finally:
            in_flight -= 1

    cpu_before = cpu_seconds(target.pid)
    tasks: set[asyncio.Task[None]] = set()
    start = loop.time() + 0.02
    sent = 0
    while sent < count:
        now = loop.time()
        while sent < count and start + sent * interval <= now:
            if in_flight >= max_in_flight:
                # The target is far behind: queueing more in the client would only measure the client.
                errors[f"not sent: {max_in_flight} requests already in flight"] += 1
            else:
                in_flight += 1  # counted from creation, so one batch of due requests cannot overshoot
                tasks.add(asyncio.create_task(one(start + sent * interval)))
            sent += 1
        if sent < count:
            await asyncio.sleep(max(0.0, start + sent * interval - loop.time()))
    _, pending = await asyncio.wait(tasks, timeout=limit + 5)
    for task in pending:  # each call has its own timeout, so this only guards against a stuck client
        task.cancel()
        errors["never finished"] += 1
    cpu_used = cpu_seconds(target.pid) - cpu_before

    ok = len(latencies)
    elapsed = (max(ends) - start) if ends else float("nan")
    ms = [v * 1000 for v in latencies]
    return Cell(
        target=target.name,
        rate=rate,
        repetition=repetition,
        sent=sent,
        ok=ok,
        errors=sent - ok,
        error_kinds=dict(errors.most_common(5)),
        achieved_rps=ok / elapsed if ok else 0.0,
        p50_ms=percentile(ms, 50),
        p90_ms=percentile(ms, 90),
        p99_ms=percentile(ms, 99),
        max_ms=max(ms) if ms else float("nan"),
        ttfc_p50_ms=percentile([v * 1000 for v in ttfc], 50),
        ttfc_p99_ms=percentile([v * 1000 for v in ttfc], 99),
        client_lag_p99_ms=percentile([v * 1000 for v in lags], 99),
        cpu_ms_per_request=cpu_used * 1000 / sent,
        latencies_ms=ms,
    )


async def settle(pids: Sequence[int], quiet: float = 0.05, longest: float = 30.0) -> float:
    """Waits until the servers are idle (together under `quiet` of a core over 0.25 s), so work a saturated
    gateway still has in hand from one cell does not slow the next. Returns the seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < longest:
        before = sum(cpu_seconds(pid) for pid in pids)
        await asyncio.sleep(0.25)
        if sum(cpu_seconds(pid) for pid in pids) - before < quiet * 0.25:
            break
    return time.monotonic() - began


async def warm_up(target: Target, limit: float, requests: int = WARMUP_REQUESTS) -> str | None:
    """A few requests one after another: connections open, lazy imports done. Returns an error or None."""
    for _ in range(requests):
        try:
            await asyncio.wait_for(target.call(), limit)
        except Exception as error:
            return f"{type(error).__name__}: {error}"
    return None


# --- the run -----------------------------------------------------------------------------------------------


async def measure(
    targets: list[Target],
    rates: Sequence[float],
    duration: float,
    limit: float,
    repeats: int,
    pids: Sequence[int],
    max_in_flight: int,
) -> list[Cell]:
    cells: list[Cell] = []
    for repetition in range(repeats):
        for rate in rates:
            # Rotate the order each repetition so no target always runs first (or right after the slowest).
            order = targets[repetition % len(targets) :] + targets[: repetition % len(targets)]
            for target in order:
                await target.reopen()
                await warm_up(target, limit, CELL_WARMUP_REQUESTS)
                cell = await run_cell(target, rate, duration, limit, repetition, max_in_flight)
                cells.append(cell)
                print(
                    f"  rep {repetition + 1}/{repeats} {rate:>5.0f} req/s {target.name:<14}"
                    f" p50 {fmt(cell.p50_ms):>7} ms  p99 {fmt(cell.p99_ms):>8} ms"
                    f"  ok {cell.ok}/{cell.sent}  load {load_average()}",
                    flush=True,
                )
                await settle(pids)
    for cell in cells:
        direct = next(
            (c for c in cells if c.target == "direct" and c.rate == cell.rate and c.repetition == cell.repetition), None
        )
        if direct is not None:
            cell.added_p50_ms = cell.p50_ms - direct.p50_ms
            cell.added_p99_ms = cell.p99_ms - direct.p99_ms
    return cells


def summarize(cells: list[Cell], rates: Sequence[float], names: Sequence[str], slo_ms: float) -> dict[str, Any]:
    per_rate: dict[str, dict[str, dict[str, float | bool]]] = {}
    for rate in rates:
        per_rate[f"{rate:g}"] = {}
        for name in names:
            mine = [c for c in cells if c.target == name and c.rate == rate]
            if not mine:
                continue
            per_rate[f"{rate:g}"][name] = {
                "p50_ms": median([c.p50_ms for c in mine]),
                "p99_ms": median([c.p99_ms for c in mine]),
                "added_p50_ms": median([c.added_p50_ms for c in mine]),
                "added_p99_ms": median([c.added_p99_ms for c in mine]),
                "ttfc_p50_ms": median([c.ttfc_p50_ms for c in mine]),
                "achieved_rps": median([c.achieved_rps for c in mine]),
                "cpu_ms_per_request": median([c.cpu_ms_per_request for c in mine]),
                "client_lag_p99_ms": median([c.client_lag_p99_ms for c in mine]),
                "errors": sum(c.errors for c in mine),
                "sent": sum(c.sent for c in mine),
                "held": all(c.errors == 0 and c.p99_ms <= slo_ms for c in mine),
            }
    highest: dict[str, float | None] = {}
    for name in names:
        held = [rate for rate in rates if per_rate[f"{rate:g}"].get(name, {}).get("held")]
        # "Held" means every lower rate was held too.
        top = None
        for rate in sorted(rates):
            if rate in held:
                top = rate
            else:
                break
        highest[name] = top
    return {"per_rate": per_rate, "highest_load_held": highest}


def report(summary: dict[str, Any], names: Sequence[str], skipped: dict[str, str], slo_ms: float) -> str:
    parts: list[str] = []
    for rate, by_target in summary["per_rate"].items():
        rows = [
            [
                name,
                fmt(s["p50_ms"]),
                fmt(s["p99_ms"]),
                fmt(s["added_p50_ms"]),
                fmt(s["added_p99_ms"]),
                fmt(s["ttfc_p50_ms"]),
                fmt(s["achieved_rps"], 0),
                fmt(s["cpu_ms_per_request"]),
                f"{s['errors']}/{s['sent']}",
            ]
            for name, s in by_target.items()
        ]
        headers = ["target", "p50 ms", "p99 ms", "added p50", "added p99", "TTFC p50", "done/s", "CPU ms/req", "errors"]
        parts.append(f"### {rate} req/s offered\n\n" + table(headers, rows))
    rows = [
        [name, f"{summary['highest_load_held'][name]:g} req/s" if summary["highest_load_held"][name] else "none"]
        for name in names
    ]
    rows += [[name, f"skipped: {why}"] for name, why in skipped.items()]
    parts.append(
        f"### Highest offered load held (no errors and p99 <= {slo_ms:g} ms in every repetition)\n\n"
        + table(["target", "held"], rows)
    )
    return "\n\n".join(parts)


async def run(args: argparse.Namespace) -> int:
    print(
        f"gateway overhead ({args.mode}): rates {args.rates} req/s, {args.duration:g} s each,"
        f" {args.repeats} repetitions"
    )
    stream = args.mode == "stream"
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="lattice-bench-") as log_dir, running([]) as processes:
        upstream, upstream_root = start_fast_upstream(log_dir, *(["--gap-ms", str(args.gap_ms)] if args.gap_ms else []))
        processes.append(upstream)

        config = os.path.join(log_dir, "lattice.toml")
        lattice_config(config, f"{upstream_root}/v1")
        gateway, gateway_process = start_lattice(log_dir, config)
        processes.append(gateway_process)

        targets: list[Target] = [
            HttpTarget("direct", f"{upstream_root}/v1", upstream.process.pid, args.timeout, {}, stream),
            GrpcTarget("lattice-grpc", gateway.grpc_target, gateway.process.pid, args.timeout, stream),
            HttpTarget("lattice-shim", f"{gateway.http_url}/v1", gateway.process.pid, args.timeout, {}, stream),
        ]
        if "lattice-shim-channel" in args.targets:
            channel, channel_process = start_lattice(
                log_dir, config, "lattice-shim-channel", LATTICE_SHIM_TRANSPORT="channel"
            )
            processes.append(channel_process)
            url = f"{channel.http_url}/v1"
            targets.append(HttpTarget("lattice-shim-channel", url, channel.process.pid, args.timeout, {}, stream))
        if "lattice-shim-workers" in args.targets:
            workers, workers_process = start_lattice(
                log_dir, config, "lattice-shim-workers", LATTICE_SHIM_WORKERS=str(args.shim_workers)
            )
            processes.append(workers_process)
            url = f"{workers.http_url}/v1"
            targets.append(HttpTarget("lattice-shim-workers", url, workers.process.pid, args.timeout, {}, stream))
        if "litellm" in args.targets:
            try:
                litellm, port, key = start_litellm(log_dir, f"{upstream_root}/v1")
                processes.append(litellm)
                url = f"http://127.0.0.1:{port}/v1"
                auth = {"authorization": f"Bearer {key}"}
                targets.append(HttpTarget("litellm", url, litellm.process.pid, args.timeout, auth, stream))
            except Exception as error:
                skipped["litellm"] = f"{type(error).__name__}: {str(error)[:300]}"
        if "local-lattice" in args.targets:
            try:
                local, port = start_local_lattice(log_dir, upstream_root)
                processes.append(local)
                url = f"http://127.0.0.1:{port}/v1"
                targets.append(HttpTarget("local-lattice", url, local.process.pid, args.timeout, {}, stream))
            except Exception as error:
                skipped["local-lattice"] = f"{type(error).__name__}: {str(error)[:300]}"
        targets = [t for t in targets if t.name in args.targets]

        for target in list(targets):
            problem = await warm_up(target, args.timeout)
            if problem:
                skipped[target.name] = f"warm-up failed: {problem[:300]}"
                targets.remove(target)
                await target.aclose()
        for name, why in skipped.items():
            print(f"  skipped {name}: {why}")

        info = machine(
            {
                "litellm": venv_version(PEER_VENVS / "litellm", "litellm"),
                "local-lattice": venv_version(PEER_VENVS / "local-lattice", "local-lattice"),
            }
        )
        print(machine_line(info))
        if args.pin:
            # Each gateway gets a core to itself, as it would in production; the load generator and the
            # upstream share the other. Left to the scheduler, three busy processes on two cores make a
            # gateway's numbers depend on where it happened to run (cells moved by 40% between repetitions).
            for process in processes:
                pin(process.process.pid, {0} if process is upstream else {1})
            pin(os.getpid(), {0})
        info["pinned"] = args.pin
        try:
            pids = [p.process.pid for p in processes]
            cells = await measure(
                targets, args.rates, args.duration, args.timeout, args.repeats, pids, args.max_in_flight
            )
        finally:
            for target in targets:
                await target.aclose()
        info["load_average_at_end"] = load_average()

    names = [t.name for t in targets]
    summary = summarize(cells, args.rates, names, args.slo_ms)
    text = report(summary, names, skipped, args.slo_ms)
    print()
    print(
        f"Medians of {args.repeats} repetitions ({args.mode}); latencies to the last byte, from each request's"
        " due time."
    )
    print(text)
    path = write_results(
        "gateway_overhead",
        {
            "benchmark": "gateway_overhead",
            "machine": info,
            "settings": {k: v for k, v in vars(args).items()},
            "skipped": skipped,
            "summary": summary,
            "cells": [{k: v for k, v in asdict(c).items() if k != "latencies_ms"} for c in cells],
            "report": text,
        },
    )
    print(f"\nwritten to {path.relative_to(REPO)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=float, nargs="+", default=[50, 100, 200, 500], help="offered loads, req/s")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds of load per target and rate")
    parser.add_argument("--repeats", type=int, default=3, help="repetitions of the whole sweep (medians reported)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds before one request counts as failed")
    parser.add_argument(
        "--max-in-flight", type=int, default=256, help="requests past this many unfinished ones count as errors"
    )
    parser.add_argument("--slo-ms", type=float, default=1000.0, help="p99 above this means the load was not held")
    parser.add_argument("--targets", nargs="+", default=list(TARGET_ORDER), choices=TARGET_ORDER)
    parser.add_argument(
        "--mode",
        choices=("stream", "non-stream"),
        default="stream",
        help="`stream: true` (StreamChat over gRPC) or whole answers (Chat)",
    )
    parser.add_argument(
        "--shim-workers", type=int, default=2, help="worker processes of the lattice-shim-workers target"
    )
    parser.add_argument(
        "--gap-ms",
        type=float,
        default=0.0,
        help="the upstream writes its answer one event every this many ms (a model generating) instead of at once",
    )
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2,
        help="run each gateway on CPU 1 and the client and upstream on CPU 0 (default on Linux with 2+ CPUs)",
    )
    args = parser.parse_args(argv)
    if "direct" not in args.targets:
        parser.error("the direct target is the baseline: keep it")
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
