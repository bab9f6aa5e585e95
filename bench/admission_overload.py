"""Admission under overload: ten times more concurrent callers than capacity, two tenants, one flooding.

    .venv/bin/python -m bench.admission_overload              # both transports, ~2 minutes
    .venv/bin/python -m bench.admission_overload --transports shim --duration 10

Lattice runs in front of `bench.fast_upstream --delay-ms D`, an upstream that holds every answer for D ms
and costs no CPU while it waits, with small admission caps (`max_concurrent_per_model`, `queue_size`,
`queue_timeout_seconds`), so capacity is finite and known: cap / D requests per second. Two tenants call
it, told apart the way Lattice tells callers apart for fairness (`caller_identity`): through the shim
each sends its own `X-Forwarded-For` (uvicorn trusts it from 127.0.0.1, and the shim passes the client
address on as `x-forwarded-for`); over gRPC each sends that metadata itself.

Two phases per transport (the shim: HTTP 429 + Retry-After; gRPC: RESOURCE_EXHAUSTED + RetryInfo):
  overload  for --duration s, the flooding tenant's callers send back to back, and after a refusal try
            again after a fixed --flood-pause-ms (ignoring Retry-After); the quiet tenant's callers send
            one request every --quiet-think-ms. Every request must either complete with the full answer
            or be refused with a retry delay: anything else (a 5xx, a timeout, a cut stream) is "lost".
  retry     every caller has --requests-per-caller requests to get answered and honours the retry delay
            it is told after each refusal, up to --max-attempts; all should succeed in the end.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
import httpx
from google.rpc import error_details_pb2, status_pb2

from bench.common import REPO, fmt, load_average, machine, machine_line, percentile, running, table, write_results
from bench.fast_upstream import ANSWER, MODEL_ID
from bench.gateway_overhead import QUESTION, http_body
from bench.peers import lattice_config, start_fast_upstream, start_lattice
from lattice.v1 import chat_pb2, chat_pb2_grpc, common_pb2
from lattice.wire.names import STATUS_DETAILS_METADATA_KEY

TENANTS = {"flood": "10.0.0.1", "quiet": "10.0.0.2"}


@dataclass
class Outcome:
    """One attempt: answered in full, refused with a retry delay, or lost (anything else)."""

    tenant: str
    kind: str  # "ok" | "refused" | "lost"
    seconds: float  # send -> last byte (ok) or -> refusal
    first_content_seconds: float = math.nan
    retry_after_seconds: float = math.nan  # what the refusal said (HTTP: whole seconds)
    code: str = ""  # the refusal's reason (queue_full, queue_timeout, …) or what went wrong
    queued: bool = False  # gRPC only: the stream said it was queued (QueueStatus) before answering


class Caller(Protocol):
    async def call(self, tenant: str) -> Outcome: ...

    async def aclose(self) -> None: ...


class ShimCaller:
    """OpenAI's REST shape: 429 with Retry-After and the error envelope's `code`."""

    def __init__(self, base_url: str, timeout: float, connections: int) -> None:
        self._url = base_url.rstrip("/") + "/v1/chat/completions"
        self._client = httpx.AsyncClient(
            timeout=timeout, limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        )

    async def call(self, tenant: str) -> Outcome:
        start = time.monotonic()
        first = math.nan
        body = bytearray()
        try:
            headers = {"x-forwarded-for": TENANTS[tenant]}
            async with self._client.stream("POST", self._url, json=http_body(stream=True), headers=headers) as response:
                async for chunk in response.aiter_raw():
                    if chunk and math.isnan(first):
                        first = time.monotonic() - start
                    body += chunk
        except (httpx.HTTPError, OSError) as error:
            return Outcome(tenant, "lost", time.monotonic() - start, code=type(error).__name__)
        seconds = time.monotonic() - start
        if response.status_code == 429:
            retry_after = response.headers.get("retry-after")
            code = _envelope_code(bytes(body))
            if retry_after is None or not retry_after.isdigit():
                return Outcome(tenant, "lost", seconds, code=f"429 without Retry-After ({code})")
            return Outcome(tenant, "refused", seconds, retry_after_seconds=float(retry_after), code=code)
        if response.status_code != 200 or b" Paris" not in body or not body.rstrip().endswith(b"[DONE]"):
            return Outcome(tenant, "lost", seconds, code=f"HTTP {response.status_code}: {bytes(body[:80])!r}")
        return Outcome(tenant, "ok", seconds, first_content_seconds=first)

    async def aclose(self) -> None:
        await self._client.aclose()


class GrpcCaller:
    """StreamChat: RESOURCE_EXHAUSTED with RetryInfo (and ErrorInfo's reason) in the status details."""

    def __init__(self, target: str, timeout: float) -> None:
        self._timeout = timeout
        self._channel = grpc.aio.insecure_channel(target)
        self._stub = chat_pb2_grpc.ChatServiceStub(self._channel)
        message = common_pb2.Message(role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text=QUESTION)])
        self._request = chat_pb2.ChatRequest(model=MODEL_ID, messages=[message], max_tokens=16, temperature=0)

    async def call(self, tenant: str) -> Outcome:
        start = time.monotonic()
        first = math.nan
        text: list[str] = []
        done = queued = False
        metadata = (("x-forwarded-for", TENANTS[tenant]),)
        try:
            async for message in self._stub.StreamChat(self._request, timeout=self._timeout, metadata=metadata):
                if message.HasField("queued"):
                    queued = True
                elif message.HasField("delta"):
                    if message.delta.content and math.isnan(first):
                        first = time.monotonic() - start
                    text.append(message.delta.content)
                elif message.HasField("done"):
                    done = True
        except grpc.aio.AioRpcError as error:
            seconds = time.monotonic() - start
            reason, retry = _status_details(error)
            if error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED and retry is not None:
                return Outcome(tenant, "refused", seconds, retry_after_seconds=retry, code=reason, queued=queued)
            return Outcome(tenant, "lost", seconds, code=f"{error.code().name} {reason}".strip(), queued=queued)
        seconds = time.monotonic() - start
        if not done or "".join(text) != ANSWER:
            return Outcome(tenant, "lost", seconds, code="incomplete stream", queued=queued)
        return Outcome(tenant, "ok", seconds, first_content_seconds=first, queued=queued)

    async def aclose(self) -> None:
        await self._channel.close()


def _envelope_code(body: bytes) -> str:
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        return str(json.loads(body)["error"]["code"])
    return "no envelope"


def _status_details(error: grpc.aio.AioRpcError) -> tuple[str, float | None]:
    """ErrorInfo's reason and RetryInfo's delay in seconds, from the rich status in the trailers."""
    raw = next((v for k, v in (error.trailing_metadata() or ()) if k == STATUS_DETAILS_METADATA_KEY), None)
    reason, retry = "", None
    if isinstance(raw, bytes):
        for detail in status_pb2.Status.FromString(raw).details:
            if detail.TypeName() == error_details_pb2.ErrorInfo.DESCRIPTOR.full_name:
                reason = error_details_pb2.ErrorInfo.FromString(detail.value).reason.lower()
            elif detail.TypeName() == error_details_pb2.RetryInfo.DESCRIPTOR.full_name:
                delay = error_details_pb2.RetryInfo.FromString(detail.value).retry_delay
                retry = delay.ToTimedelta().total_seconds()
    return reason, retry


# --- the phases --------------------------------------------------------------------------------------------


async def overload(caller: Caller, args: argparse.Namespace) -> list[Outcome]:
    """The flood sends back to back (a fixed pause after a refusal); the quiet tenant paces itself."""
    outcomes: list[Outcome] = []
    end = time.monotonic() + args.duration

    async def flood() -> None:
        while time.monotonic() < end:
            outcome = await caller.call("flood")
            outcomes.append(outcome)
            if outcome.kind != "ok":
                await asyncio.sleep(args.flood_pause_ms / 1000)

    async def quiet(offset: float) -> None:
        await asyncio.sleep(offset)  # spread the quiet callers over one think time
        while time.monotonic() < end:
            outcomes.append(await caller.call("quiet"))
            await asyncio.sleep(args.quiet_think_ms / 1000)

    think = args.quiet_think_ms / 1000
    await asyncio.gather(
        *(flood() for _ in range(args.flood_callers)),
        *(quiet(i * think / args.quiet_callers) for i in range(args.quiet_callers)),
    )
    return outcomes


@dataclass
class Done:
    """One request of the retry phase: how many refusals it took, and how long until it was answered."""

    tenant: str
    succeeded: bool
    retries: int
    seconds: float
    waited_for_retry_seconds: float


async def retry_as_told(caller: Caller, args: argparse.Namespace) -> tuple[list[Done], list[Outcome], float]:
    """Every caller gets its requests answered, sleeping the retry delay it is told after each refusal."""
    done: list[Done] = []
    attempts: list[Outcome] = []

    async def one_caller(tenant: str) -> None:
        for _ in range(args.requests_per_caller):
            start, retries, slept = time.monotonic(), 0, 0.0
            while True:
                outcome = await caller.call(tenant)
                attempts.append(outcome)
                if outcome.kind == "ok" or retries + 1 >= args.max_attempts:
                    done.append(Done(tenant, outcome.kind == "ok", retries, time.monotonic() - start, slept))
                    break
                retries += 1
                # A lost attempt has no delay to honour: back off by one service time.
                delay = outcome.retry_after_seconds if outcome.kind == "refused" else args.delay_ms / 1000
                slept += delay
                await asyncio.sleep(delay)

    began = time.monotonic()
    await asyncio.gather(
        *(one_caller("flood") for _ in range(args.flood_callers)),
        *(one_caller("quiet") for _ in range(args.quiet_callers)),
    )
    return done, attempts, time.monotonic() - began


async def upstream_stats(root: str, *, reset: bool = False) -> dict[str, int]:
    async with httpx.AsyncClient(timeout=5) as client:
        reply = await client.get(f"{root}/stats" + ("?reset=1" if reset else ""))
        return dict(reply.json())


# --- the report --------------------------------------------------------------------------------------------


def overload_rows(transport: str, outcomes: list[Outcome], args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    service = args.delay_ms / 1000
    for tenant in TENANTS:
        mine = [o for o in outcomes if o.tenant == tenant]
        ok = [o for o in mine if o.kind == "ok"]
        refused = [o for o in mine if o.kind == "refused"]
        lost = [o for o in mine if o.kind == "lost"]
        # Time in the queue: the wait for the first token beyond the upstream's own service time.
        waits = [max(0.0, o.first_content_seconds - service) * 1000 for o in ok]
        rows.append(
            {
                "transport": transport,
                "tenant": tenant,
                "sent": len(mine),
                "answered": len(ok),
                "refused_with_retry": len(refused),
                "lost": len(lost),
                "refusal_codes": dict(collections.Counter(o.code for o in refused)),
                "lost_kinds": dict(collections.Counter(o.code for o in lost).most_common(5)),
                "wait_p50_ms": percentile(waits, 50),
                "wait_p99_ms": percentile(waits, 99),
                "wait_max_ms": max(waits) if waits else math.nan,
                "latency_p50_ms": percentile([o.seconds * 1000 for o in ok], 50),
                "latency_p99_ms": percentile([o.seconds * 1000 for o in ok], 99),
                "refusal_p50_ms": percentile([o.seconds * 1000 for o in refused], 50),
                "retry_after_p50_s": percentile([o.retry_after_seconds for o in refused], 50),
                "retry_after_max_s": max((o.retry_after_seconds for o in refused), default=math.nan),
                "answered_per_s": len(ok) / args.duration,
                "queued_updates": sum(o.queued for o in mine),
            }
        )
    return rows


def retry_rows(transport: str, done: list[Done], attempts: list[Outcome], wall: float) -> list[dict[str, Any]]:
    rows = []
    for tenant in TENANTS:
        mine = [d for d in done if d.tenant == tenant]
        retries = [d.retries for d in mine]
        rows.append(
            {
                "transport": transport,
                "tenant": tenant,
                "requests": len(mine),
                "succeeded": sum(d.succeeded for d in mine),
                "retries": sum(retries),
                "retries_p50": percentile(retries, 50),
                "retries_max": max(retries, default=0),
                "answered_p50_s": percentile([d.seconds for d in mine], 50),
                "answered_p99_s": percentile([d.seconds for d in mine], 99),
                "lost_attempts": sum(1 for a in attempts if a.tenant == tenant and a.kind == "lost"),
                "wall_s": wall,
            }
        )
    return rows


def report(overloads: list[dict[str, Any]], retries: list[dict[str, Any]], args: argparse.Namespace) -> str:
    capacity = args.cap / (args.delay_ms / 1000)
    callers = args.flood_callers + args.quiet_callers
    head = (
        f"Capacity: {args.cap} at once x {args.delay_ms:g} ms per answer = {capacity:g} answers/s; queue "
        f"{args.queue_size}, queue timeout {args.queue_timeout:g} s. Callers: {callers} at once "
        f"({callers / args.cap:g}x the slots): flood {args.flood_callers}, quiet {args.quiet_callers}."
    )
    rows = [
        [
            r["transport"],
            r["tenant"],
            str(r["sent"]),
            str(r["answered"]),
            str(r["refused_with_retry"]),
            str(r["lost"]),
            fmt(r["wait_p50_ms"], 0),
            fmt(r["wait_p99_ms"], 0),
            fmt(r["latency_p99_ms"], 0),
            fmt(r["retry_after_p50_s"], 2),
            ", ".join(f"{k} {v}" for k, v in r["refusal_codes"].items()) or "-",
        ]
        for r in overloads
    ]
    overload_table = table(
        [
            "transport",
            "tenant",
            "sent",
            "answered",
            "429 + retry",
            "lost",
            "wait p50 ms",
            "wait p99 ms",
            "latency p99 ms",
            "retry-after p50 s",
            "refused as",
        ],
        rows,
    )
    rows = [
        [
            r["transport"],
            r["tenant"],
            str(r["requests"]),
            str(r["succeeded"]),
            str(r["retries"]),
            fmt(r["retries_p50"], 0),
            str(r["retries_max"]),
            fmt(r["answered_p50_s"], 2),
            fmt(r["answered_p99_s"], 2),
            str(r["lost_attempts"]),
            fmt(r["wall_s"], 1),
        ]
        for r in retries
    ]
    retry_table = table(
        [
            "transport",
            "tenant",
            "requests",
            "succeeded",
            "retries",
            "retries p50",
            "retries max",
            "answered p50 s",
            "answered p99 s",
            "lost attempts",
            "phase s",
        ],
        rows,
    )
    return (
        f"{head}\n\n### Overload ({args.duration:g} s; the flood retries after {args.flood_pause_ms:g} ms, "
        f"ignoring Retry-After; quiet callers send every {args.quiet_think_ms:g} ms)\n\n{overload_table}\n\n"
        f"wait = time to the first token minus the upstream's {args.delay_ms:g} ms; lost = neither answered "
        f"nor refused with a retry delay.\n\n### Everyone honours the retry delay "
        f"({args.requests_per_caller} requests per caller)\n\n{retry_table}"
    )


async def run(args: argparse.Namespace) -> int:
    print(f"admission under overload: transports {', '.join(args.transports)}")
    overloads: list[dict[str, Any]] = []
    retries: list[dict[str, Any]] = []
    peaks: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="lattice-bench-") as log_dir, running([]) as processes:
        upstream, root = start_fast_upstream(log_dir, "--delay-ms", f"{args.delay_ms:g}")
        processes.append(upstream)
        config = os.path.join(log_dir, "lattice.toml")
        lattice_config(
            config,
            f"{root}/v1",
            max_concurrent_per_model=args.cap,
            queue_size=args.queue_size,
            queue_timeout_seconds=args.queue_timeout,
        )
        gateway, gateway_process = start_lattice(log_dir, config)
        processes.append(gateway_process)
        info = machine()
        print(machine_line(info))
        callers = args.flood_callers + args.quiet_callers
        # The client waits longer than anything admission can take, so a timeout here would be a real loss.
        timeout = args.queue_timeout + args.delay_ms / 1000 + 30
        for transport in args.transports:
            caller: Caller = (
                ShimCaller(gateway.http_url, timeout, callers)
                if transport == "shim"
                else GrpcCaller(gateway.grpc_target, timeout)
            )
            try:
                await upstream_stats(root, reset=True)
                outcomes = await overload(caller, args)
                overloads += overload_rows(transport, outcomes, args)
                print(f"  {transport} overload: {len(outcomes)} attempts, load {load_average()}", flush=True)
                await asyncio.sleep(args.queue_timeout + 1)  # the queue drains before the next phase
                done, attempts, wall = await retry_as_told(caller, args)
                retries += retry_rows(transport, done, attempts, wall)
                print(f"  {transport} retry: {len(attempts)} attempts in {wall:.1f} s, load {load_average()}")
                peaks[transport] = (await upstream_stats(root))["peak_in_flight"]
            finally:
                await caller.aclose()
        info["load_average_at_end"] = load_average()

    text = report(overloads, retries, args)
    text += "\n\nMost requests at the upstream at once: " + ", ".join(
        f"{t} {p} (cap {args.cap})" for t, p in peaks.items()
    )
    print()
    print(text)
    path = write_results(
        "admission_overload",
        {
            "benchmark": "admission_overload",
            "machine": info,
            "settings": vars(args),
            "overload": overloads,
            "retry": retries,
            "upstream_peak_in_flight": peaks,
            "report": text,
        },
    )
    print(f"\nwritten to {path.relative_to(REPO)}")
    lost = sum(r["lost"] for r in overloads) + sum(r["lost_attempts"] for r in retries)
    unanswered = sum(r["requests"] - r["succeeded"] for r in retries)
    print(f"lost: {lost}; requests never answered in the retry phase: {unanswered}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transports", nargs="+", default=["shim", "grpc"], choices=["shim", "grpc"])
    parser.add_argument("--delay-ms", type=float, default=250.0, help="the upstream's service time per answer")
    parser.add_argument("--cap", type=int, default=4, help="max_concurrent_per_model")
    parser.add_argument("--queue-size", type=int, default=8, help="queue_size")
    parser.add_argument("--queue-timeout", type=float, default=2.0, help="queue_timeout_seconds")
    parser.add_argument("--flood-callers", type=int, default=36, help="concurrent callers of the flooding tenant")
    parser.add_argument("--quiet-callers", type=int, default=4, help="concurrent callers of the quiet tenant")
    parser.add_argument("--quiet-think-ms", type=float, default=1000.0, help="pause between a quiet caller's calls")
    parser.add_argument("--flood-pause-ms", type=float, default=50.0, help="the flood's pause after a refusal")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of the overload phase")
    parser.add_argument("--requests-per-caller", type=int, default=3, help="requests each caller gets answered")
    parser.add_argument("--max-attempts", type=int, default=100, help="attempts per request in the retry phase")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
