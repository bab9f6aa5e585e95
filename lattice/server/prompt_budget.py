"""How long prompts take, per model, and what that allows: the engine-independent half of keeping one
long prompt from holding everyone else back.

In-process engines report what their prompt processing did (`PromptRates.observe`: tokens and
seconds, as often as they like, from any thread). A backend that has tokenized a request asks the
`PromptBudget`:

- `check(model, tokens)`: refuses (400 `prompt_too_long_for_duration`) a prompt that would take
  longer than a chat may run (`max_stream_seconds`) at the model's measured rate;
- `bounded(model, tokens, events)`: its event stream, failed with 429 `queue_timeout` when the first
  event does not come within `queue_timeout_seconds` plus the time its own prompt should take (twice
  the estimate: a loaded machine is slower). Time spent behind other requests' prompts inside the
  engine so counts against the queue timeout, as time in the admission queue does. Failing closes
  the stream, which cancels the request inside the engine.

Until a model has been measured, nothing is refused and the wait for the first event is bounded by
the chat duration alone (the gateway's own limit).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TypeVar

from lattice.errors import PromptQueueTimeout, PromptTooLongForDuration

T = TypeVar("T")

SMOOTHING = 0.3
"""Weight of the newest measurement in the moving average of a model's rate."""
OWN_PROMPT_SLACK = 2.0
"""The first event may take this many times the prompt's estimated time, plus the queue timeout."""


class PromptRates:
    """Prompt tokens per second, per model: an exponential moving average of what engines report."""

    def __init__(self) -> None:
        self._rates: dict[str, float] = {}
        self._lock = threading.Lock()  # engines report from their own threads

    def observe(self, model: str, tokens: int, seconds: float) -> None:
        """`tokens` of prompt took `seconds` (one chunk, or one request's whole prompt)."""
        if tokens <= 0 or seconds <= 0:
            return
        rate = tokens / seconds
        with self._lock:
            old = self._rates.get(model)
            self._rates[model] = rate if old is None else (1 - SMOOTHING) * old + SMOOTHING * rate

    def rate(self, model: str) -> float | None:
        with self._lock:
            return self._rates.get(model)

    def estimate_seconds(self, model: str, tokens: int) -> float | None:
        rate = self.rate(model)
        return None if rate is None else tokens / rate


@dataclass(frozen=True)
class PromptBudget:
    max_seconds: float
    """The chat duration limit (`max_stream_seconds`): no prompt may be expected to take longer."""
    queue_timeout_seconds: float
    rates: PromptRates = field(default_factory=PromptRates)

    def check(self, model: str, tokens: int) -> None:
        estimate = self.rates.estimate_seconds(model, tokens)
        if estimate is not None and estimate > self.max_seconds:
            raise PromptTooLongForDuration(
                f"the prompt is {tokens} tokens; {model!r} processes about {tokens / estimate:.0f} prompt tokens "
                f"a second here, so it would take about {estimate:.0f} s, past the {self.max_seconds:g} s "
                "a chat may run: send a shorter prompt",
                field="messages",
            )

    def first_event_timeout(self, model: str, tokens: int) -> float | None:
        """How long the first event may take: None while the model is unmeasured."""
        estimate = self.rates.estimate_seconds(model, tokens)
        if estimate is None:
            return None
        return self.queue_timeout_seconds + OWN_PROMPT_SLACK * estimate

    def late(self, model: str, waited: float) -> PromptQueueTimeout:
        """The refusal of a request whose first event did not come within `waited` seconds."""
        return PromptQueueTimeout(
            f"waited {waited:.0f} s for {model!r} to reach this request's prompt "
            f"(the queue timeout, {self.queue_timeout_seconds:g} s, plus its own prompt's time)",
            retry_after_seconds=self.queue_timeout_seconds,
            metadata={"model": model},
        )

    async def bounded(self, model: str, tokens: int, events: AsyncIterator[T]) -> AsyncGenerator[T, None]:
        """`events`, failed with `PromptQueueTimeout` (and closed) when the first is late."""
        timeout = self.first_event_timeout(model, tokens)
        async with aclosing(events) as stream:  # type: ignore[type-var]  # JobStream has aclose too
            try:
                async with asyncio.timeout(timeout):
                    first = await anext(stream)
            except TimeoutError:
                raise self.late(model, timeout or 0.0) from None
            except StopAsyncIteration:
                return
            yield first
            async for event in stream:
                yield event
