"""1. Round trip: one chat at a time on each target, latency from send to the whole answer."""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from typing import Any

from bench.common import cpu_seconds, fmt, load_average, percentile
from bench.fast_upstream import ANSWER
from bench.gateway_overhead import settle
from bench.relay.targets import QUESTION, WARMUP_REQUESTS, Target, error_kind


@dataclass
class RoundTrip:
    target: str
    sent: int = 0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    latencies_ms: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0

    def summary(self, direct: RoundTrip | None) -> dict[str, Any]:
        p50, p99 = percentile(self.latencies_ms, 50), percentile(self.latencies_ms, 99)
        base50 = percentile(direct.latencies_ms, 50) if direct else float("nan")
        base99 = percentile(direct.latencies_ms, 99) if direct else float("nan")
        return {
            "sent": self.sent,
            "ok": len(self.latencies_ms),
            "errors": dict(self.errors.most_common(5)),
            "p50_ms": p50,
            "p90_ms": percentile(self.latencies_ms, 90),
            "p99_ms": p99,
            "max_ms": max(self.latencies_ms, default=float("nan")),
            "added_p50_ms": p50 - base50,
            "added_p99_ms": p99 - base99,
            "cpu_ms_per_request": self.cpu_seconds * 1000 / self.sent if self.sent else float("nan"),
        }


async def warm_up(target: Target, limit: float) -> str | None:
    for _ in range(WARMUP_REQUESTS):
        try:
            answer = await asyncio.wait_for(target.call(QUESTION), limit)
        except Exception as error:
            return error_kind(error)
        if answer != ANSWER:
            return f"wrong answer {answer!r}"
    return None


async def round_trips(
    targets: list[Target], requests: int, rounds: int, limit: float, all_pids: list[int]
) -> dict[str, RoundTrip]:
    results = {t.name: RoundTrip(t.name) for t in targets}
    per_round = max(1, requests // rounds)
    for number in range(rounds):
        order = targets[number % len(targets) :] + targets[: number % len(targets)]
        for target in order:
            result = results[target.name]
            await settle(all_pids)
            before = sum(cpu_seconds(pid) for pid in target.pids)
            for _ in range(per_round):
                result.sent += 1
                began = time.monotonic()
                try:
                    answer = await asyncio.wait_for(target.call(QUESTION), limit)
                except Exception as error:
                    result.errors[error_kind(error)] += 1
                    continue
                ended = time.monotonic()
                if answer != ANSWER:
                    result.errors[f"wrong answer: {answer[:60]!r}"] += 1
                    continue
                result.latencies_ms.append((ended - began) * 1000)
            result.cpu_seconds += sum(cpu_seconds(pid) for pid in target.pids) - before
        print(
            f"  round {number + 1}/{rounds}: "
            + ", ".join(f"{n} p50 {fmt(percentile(r.latencies_ms, 50))} ms" for n, r in results.items())
            + f"; load {load_average()}",
            flush=True,
        )
    return results
