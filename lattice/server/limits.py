"""What one request and one caller may ask of the gateway: request size, rate, concurrent chats.

Enforced in the domain (by `Gateway.open_chat`), so gRPC callers, the shim and
Envoy all meet the same limits. A caller is the identity the services compute
for fairness (`ChatRequest.caller`: a hash of the API key, else the client's
address). Each refusal is its own reason, so clients can tell a burst they
should slow down (`RATE_LIMITED`, with a retry delay) from a request they
must change (`TOO_MANY_MESSAGES`, `PROMPT_TOO_LARGE`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from lattice.errors import InvalidArgument, RateLimited, TooManyStreams
from lattice.observability import metrics
from lattice.server.chat import ChatRequest

MAX_TRACKED_CALLERS = 10_000
"""Past this many callers with a bucket, full (idle) buckets are forgotten: a full bucket is the default."""


@dataclass(frozen=True)
class RequestLimits:
    max_messages: int = 1_000_000
    max_prompt_chars: int = 1 << 62
    max_stream_seconds: float = math.inf
    rate_per_minute: float = 0.0
    """0: no rate limit."""
    burst: int = 1
    max_streams_per_caller: int = 1 << 62


UNLIMITED = RequestLimits()


def check_request_size(request: ChatRequest, limits: RequestLimits) -> None:
    if len(request.messages) > limits.max_messages:
        metrics.limit_refused("messages")
        raise InvalidArgument(
            f"a chat may carry at most {limits.max_messages} messages, got {len(request.messages)}",
            field="messages",
            reason="TOO_MANY_MESSAGES",
        )
    characters = sum(len(m.text) + sum(len(c.arguments) for c in m.tool_calls) for m in request.messages)
    if characters > limits.max_prompt_chars:
        metrics.limit_refused("prompt_chars")
        raise InvalidArgument(
            f"the messages hold {characters} characters; at most {limits.max_prompt_chars} are allowed",
            field="messages",
            reason="PROMPT_TOO_LARGE",
        )


@dataclass
class _Bucket:
    tokens: float
    updated: float


class CallerLimits:
    """Per-caller token buckets (chats started per minute) and counts of chats in flight."""

    def __init__(self, limits: RequestLimits, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._streams: dict[str, int] = {}

    def streams(self, caller: str) -> int:
        return self._streams.get(caller, 0)

    def take(self, caller: str) -> None:
        """Spends one of `caller`'s tokens, or refuses with the time until the next one."""
        rate = self._limits.rate_per_minute / 60.0
        if rate <= 0:
            return
        now, capacity = self._clock(), float(self._limits.burst)
        bucket = self._buckets.get(caller)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED_CALLERS:
                self._forget_full_buckets(now, rate)
            bucket = self._buckets[caller] = _Bucket(capacity, now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens < 1.0:
            metrics.limit_refused("rate")
            raise RateLimited(
                f"more than {self._limits.rate_per_minute:g} chats a minute (bursts of {self._limits.burst}) "
                "from this caller",
                retry_after_seconds=(1.0 - bucket.tokens) / rate,
            )
        bucket.tokens -= 1.0

    def open_stream(self, caller: str) -> Callable[[], None]:
        """Counts one more chat in flight for `caller`, or refuses; returns the (idempotent) release."""
        count = self.streams(caller)
        if count >= self._limits.max_streams_per_caller:
            metrics.limit_refused("streams")
            raise TooManyStreams(
                f"this caller already has {count} chats in flight, the most allowed; wait for one to finish"
            )
        self._streams[caller] = count + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            left = self._streams[caller] - 1
            if left:
                self._streams[caller] = left
            else:
                del self._streams[caller]

        return release

    def _forget_full_buckets(self, now: float, rate: float) -> None:
        capacity = float(self._limits.burst)
        for caller, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.updated) * rate >= capacity:
                del self._buckets[caller]
