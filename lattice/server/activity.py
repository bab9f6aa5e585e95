"""What the gateway did lately, in memory, for the dashboard: the latest requests (metadata only) and
per-interval sums over the last minutes, for the whole gateway and for each account.

Never a prompt or an answer: a request is its id, account, model, backend, outcome, times and token
counts. Bounded: at most `recent` requests are kept, and per account only the intervals of the
window (an account idle for longer than the window is forgotten).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

GATEWAY = None
"""The `account_id` that means every account's requests together."""


@dataclass(frozen=True)
class FinishedRequest:
    end_time: float
    """Wall clock (`time.time()`) when it ended."""
    request_id: str
    account_id: str
    model: str
    backend: str
    outcome: str
    """`ok`, `cancelled`, or the error's reason in lower case."""
    duration_ms: int
    first_token_ms: int | None
    prompt_tokens: int
    completion_tokens: int
    key_id: str = ""
    """Which credential: a key's id, an OAuth subject, `admin` (for metering; never a secret)."""

    @property
    def failed(self) -> bool:
        return self.outcome != "ok"


@dataclass
class Bucket:
    """The requests that ended in `[start, start + bucket_seconds)`."""

    start: int
    requests: int = 0
    failed_requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    duration_ms_sum: int = 0
    first_token_ms_sum: int = 0
    first_tokens: int = 0

    @property
    def mean_duration_ms(self) -> float:
        return self.duration_ms_sum / self.requests if self.requests else 0.0

    @property
    def mean_first_token_ms(self) -> float:
        return self.first_token_ms_sum / self.first_tokens if self.first_tokens else 0.0

    def add(self, request: FinishedRequest) -> None:
        self.requests += 1
        self.failed_requests += request.failed
        self.prompt_tokens += request.prompt_tokens
        self.completion_tokens += request.completion_tokens
        self.duration_ms_sum += request.duration_ms
        if request.first_token_ms is not None:
            self.first_token_ms_sum += request.first_token_ms
            self.first_tokens += 1


class Activity:
    def __init__(
        self,
        *,
        bucket_seconds: int = 10,
        window_seconds: int = 600,
        recent: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if window_seconds % bucket_seconds:
            raise ValueError("the window must be a whole number of buckets")
        self.bucket_seconds = bucket_seconds
        self.window_seconds = window_seconds
        self._clock = clock
        self._recent: deque[FinishedRequest] = deque(maxlen=recent)
        self._buckets: dict[str | None, dict[int, Bucket]] = {}

    def record(self, request: FinishedRequest) -> None:
        self._recent.append(request)
        start = self._bucket_start(request.end_time)
        oldest = self._bucket_start(self._clock()) - self.window_seconds + self.bucket_seconds
        for key in (GATEWAY, request.account_id):
            buckets = self._buckets.setdefault(key, {})
            bucket = buckets.get(start)
            if bucket is None:  # a new interval: the ones that left the window go
                for old in [s for s in buckets if s < oldest]:
                    del buckets[old]
                bucket = buckets[start] = Bucket(start)
            bucket.add(request)

    def recent(self, account_id: str | None, limit: int) -> list[FinishedRequest]:
        """The latest requests, newest first: every account's (`GATEWAY`) or one account's."""
        found: list[FinishedRequest] = []
        for request in reversed(self._recent):
            if len(found) >= limit:
                break
            if account_id is GATEWAY or request.account_id == account_id:
                found.append(request)
        return found

    def buckets(self, account_id: str | None) -> list[Bucket]:
        """Every interval of the window up to now, oldest first, empty ones included."""
        self._forget_old()
        last = self._bucket_start(self._clock())
        first = last - self.window_seconds + self.bucket_seconds
        known = self._buckets.get(account_id, {})
        return [known.get(start) or Bucket(start) for start in range(first, last + 1, self.bucket_seconds)]

    def _bucket_start(self, moment: float) -> int:
        return int(moment // self.bucket_seconds) * self.bucket_seconds

    def _forget_old(self) -> None:
        """Drops the intervals that left the window, and accounts with none left."""
        oldest = self._bucket_start(self._clock()) - self.window_seconds + self.bucket_seconds
        for key in list(self._buckets):
            buckets = self._buckets[key]
            for start in [s for s in buckets if s < oldest]:
                del buckets[start]
            if not buckets and key is not GATEWAY:
                del self._buckets[key]
