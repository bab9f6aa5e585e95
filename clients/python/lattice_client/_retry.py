"""When the SDK tries a call again: only before its first token, only on RESOURCE_EXHAUSTED or
UNAVAILABLE (`LatticeError.retryable`), after the gateway's retry delay, within bounds."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass

from lattice_client._errors import LatticeError

log = logging.getLogger("lattice_client")


@dataclass(frozen=True)
class RetryPolicy:
    """How many times and for how long a refused call is tried again.

    A retry waits the gateway's `RetryInfo` delay when it sent one (plus up to 10 % jitter), else an
    exponential backoff with jitter. The SDK gives up, raising the last error, after `max_attempts`
    tries, or when the wait would end past `max_elapsed` seconds since the first try (or past the
    call's timeout), or when the gateway asks for a wait longer than `max_delay`.
    """

    max_attempts: int = 3
    """Tries in all, the first one included; 1 never retries."""
    initial_backoff: float = 0.5
    """Seconds before the first retry when the gateway gave no delay; doubles each time."""
    max_backoff: float = 8.0
    max_delay: float = 30.0
    """The longest single wait the SDK accepts; a longer retry delay is left to the caller."""
    max_elapsed: float = 60.0
    """Seconds from the first try after which no retry starts."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    @classmethod
    def disabled(cls) -> RetryPolicy:
        return cls(max_attempts=1)


class Attempts:
    """The retry state of one call: `delay_before_retry(error)` says how long to wait, or None to give up."""

    def __init__(self, policy: RetryPolicy, what: str, deadline: float | None) -> None:
        self._policy = policy
        self._what = what
        self._deadline = deadline
        self._started = time.monotonic()
        self.attempt = 1

    def delay_before_retry(self, error: LatticeError) -> float | None:
        policy = self._policy
        if not error.retryable or self.attempt >= policy.max_attempts:
            return None
        if error.retry_delay is not None:
            if error.retry_delay > policy.max_delay:
                return None
            delay = error.retry_delay * (1.0 + 0.1 * random.random())
        else:
            ceiling = min(policy.max_backoff, policy.initial_backoff * 2 ** (self.attempt - 1))
            delay = ceiling / 2 + random.uniform(0, ceiling / 2)
        resume = time.monotonic() + delay
        if resume - self._started > policy.max_elapsed or (self._deadline is not None and resume >= self._deadline):
            return None
        self.attempt += 1
        log.info(
            "%s refused with %s; retrying in %.2f s (attempt %d of %d)",
            self._what,
            error.reason,
            delay,
            self.attempt,
            policy.max_attempts,
        )
        return delay
