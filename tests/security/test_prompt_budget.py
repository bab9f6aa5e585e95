"""The engine-independent prompt budget (issue #22, item 3): a prompt that would outlast a chat's
duration at the model's measured rate is refused, and waiting behind other prompts inside an engine
counts against the queue timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from lattice.errors import PromptQueueTimeout, PromptTooLongForDuration
from lattice.server.prompt_budget import PromptBudget


def test_nothing_is_refused_before_the_model_is_measured() -> None:
    budget = PromptBudget(max_seconds=10, queue_timeout_seconds=5)
    budget.check("m", 1_000_000)
    assert budget.first_event_timeout("m", 1_000_000) is None


def test_a_prompt_that_would_outlast_the_chat_duration_is_refused() -> None:
    budget = PromptBudget(max_seconds=10, queue_timeout_seconds=5)
    budget.rates.observe("m", 100, 1.0)  # 100 tokens/s
    budget.check("m", 900)  # 9 s: fine
    with pytest.raises(PromptTooLongForDuration) as refused:
        budget.check("m", 1100)  # 11 s
    assert refused.value.reason == "PROMPT_TOO_LONG_FOR_DURATION" and refused.value.field == "messages"
    budget.check("other", 1_000_000)  # rates are per model
    assert budget.first_event_timeout("m", 100) == pytest.approx(5 + 2 * 1.0)


async def test_waiting_behind_other_prompts_ends_in_a_queue_timeout() -> None:
    budget = PromptBudget(max_seconds=600, queue_timeout_seconds=0.5)
    budget.rates.observe("m", 1000, 1.0)
    closed = asyncio.Event()

    async def stuck_behind_a_long_prompt() -> AsyncIterator[str]:
        try:
            await asyncio.sleep(60)
            yield "late"
        finally:
            closed.set()

    started = time.monotonic()
    with pytest.raises(PromptQueueTimeout) as refused:
        async for _ in budget.bounded("m", 10, stuck_behind_a_long_prompt()):
            pass
    assert time.monotonic() - started < 30  # generous: the stream would have taken 60 s
    assert refused.value.reason == "QUEUE_TIMEOUT" and refused.value.retry_after_seconds
    assert closed.is_set()  # the engine's stream was closed: the request leaves the engine


async def test_a_stream_that_answers_in_time_is_passed_through() -> None:
    budget = PromptBudget(max_seconds=600, queue_timeout_seconds=5)
    budget.rates.observe("m", 1000, 1.0)

    async def prompt() -> AsyncIterator[str]:
        for word in ("a", "b", "c"):
            yield word

    assert [e async for e in budget.bounded("m", 10, prompt())] == ["a", "b", "c"]
