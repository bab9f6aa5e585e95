"""3. Concurrency: many chats at once on one daemon, each answer its own; the work items in flight at once."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from bench.common import cpu_seconds, percentile
from bench.relay.targets import JsonChatTarget, Target, error_kind


async def _peak(read: Callable[[], Awaitable[float]], stop: asyncio.Event, every: float = 0.1) -> float:
    """The highest value `read` gave until `stop` is set, sampled every `every` seconds."""
    highest = 0.0
    while not stop.is_set():
        with contextlib.suppress(Exception):
            highest = max(highest, await read())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
    return highest


async def concurrency(
    target: Target,
    count: int,
    limit: float,
    provider_url: str,
    gateway_in_flight: Callable[[httpx.AsyncClient], Awaitable[float]],
) -> dict[str, Any]:
    """`count` chats at once; every answer must be its own prompt, echoed."""
    tag = os.urandom(3).hex()
    prompts = [f"work item {i} of {count} in burst {tag}" for i in range(count)]
    errors: collections.Counter[str] = collections.Counter()
    latencies: list[float] = []
    wrong = 0
    async with httpx.AsyncClient(timeout=10) as probe:
        await probe.get(provider_url.removesuffix("/v1") + "/stats", params={"reset": 1})
        stop = asyncio.Event()

        async def provider_in_flight() -> float:
            return float((await probe.get(provider_url.removesuffix("/v1") + "/stats")).json()["in_flight"])

        async def at_gateway() -> float:
            return await gateway_in_flight(probe)

        samplers = [asyncio.create_task(_peak(provider_in_flight, stop)), asyncio.create_task(_peak(at_gateway, stop))]

        async def one(prompt: str) -> None:
            nonlocal wrong
            began = time.monotonic()
            try:
                answer = await asyncio.wait_for(target.call(prompt), limit)
            except Exception as error:
                errors[error_kind(error)] += 1
                return
            if answer != prompt:
                wrong += 1
                return
            latencies.append((time.monotonic() - began) * 1000)

        cpu_before = sum(cpu_seconds(pid) for pid in target.pids)
        client_before = cpu_seconds(os.getpid())
        reported = len(target.dispatch) if isinstance(target, JsonChatTarget) else 0
        began = time.monotonic()
        await asyncio.gather(*(one(p) for p in prompts))
        wall = time.monotonic() - began
        cpu_used = sum(cpu_seconds(pid) for pid in target.pids) - cpu_before
        client_used = cpu_seconds(os.getpid()) - client_before
        dispatch = [d * 1000 for d in target.dispatch[reported:]] if isinstance(target, JsonChatTarget) else []
        stop.set()
        provider_peak, gateway_peak = await asyncio.gather(*samplers)
        provider_total = (await probe.get(provider_url.removesuffix("/v1") + "/stats")).json()
    return {
        "target": target.name,
        "concurrency": count,
        "ok": len(latencies),
        "wrong": wrong,
        "lost": errors.get("timeout", 0),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors.most_common(5)),
        "wall_s": wall,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies, default=float("nan")),
        "provider_peak_in_flight": provider_peak,
        "gateway_peak_in_flight": gateway_peak,
        "provider_requests_total": provider_total.get("chat_requests"),
        "cpu_ms_per_request": cpu_used * 1000 / count,
        "client_cpu_ms_per_request": client_used * 1000 / count,
        "gateway_dispatch_p50_ms": percentile(dispatch, 50),
        "gateway_dispatch_p99_ms": percentile(dispatch, 99),
    }
