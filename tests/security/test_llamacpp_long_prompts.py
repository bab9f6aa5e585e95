"""One long prompt must not hold every other request back (issue #22, item 3), on the llama.cpp engine
with the real model: llama.cpp's server processes prompts `batch_tokens` at a time beside the other
sequences' tokens, and a caller who leaves during its prompt is dropped at the next prompt batch (the
engine asks for a progress chunk per batch, and its callback then says stop)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from typing import Any

import pytest

from lattice.server.backends.default_model import default_gguf_path
from lattice.server.backends.llamacpp.engine import EngineOptions, LlamaCppEngine

pytestmark = pytest.mark.slow

BATCH_TOKENS = 256
LONG = {
    "messages": [{"role": "user", "content": "x " * 4000}],
    "max_tokens": 1,
    "stream": True,
    "return_progress": True,
}
SHORT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "temperature": 0, "stream": True}


def engine(parallel: int) -> Iterator[LlamaCppEngine]:
    options = EngineOptions(threads=1, parallel=parallel, context_tokens=16384, batch_tokens=BATCH_TOKENS)
    loaded = LlamaCppEngine.load(default_gguf_path(), options)
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def one_slot() -> Iterator[LlamaCppEngine]:
    yield from engine(parallel=1)


@pytest.fixture(scope="module")
def two_slots() -> Iterator[LlamaCppEngine]:
    yield from engine(parallel=2)


async def progress(chunks: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    """The next progress chunk that shows some of the prompt processed."""
    async for chunk in chunks:
        if (chunk.get("prompt_progress") or {}).get("processed", 0) > 0:
            return chunk
    raise AssertionError("the stream ended during its prompt")


async def test_a_caller_who_leaves_during_a_long_prompt_is_dropped_at_the_next_batch(
    one_slot: LlamaCppEngine,
) -> None:
    long = one_slot.stream(LONG)
    seen = await progress(long)
    assert seen["prompt_progress"]["processed"] < seen["prompt_progress"]["total"]
    await long.aclose()
    # One slot: the short chat runs only once the long one has left it.
    async with aclosing(one_slot.stream(SHORT)) as short:
        assert [c async for c in short if c.get("choices") and c["choices"][0].get("finish_reason")]
    # What the long one posted after the caller left: at most the batch running then, and its end.
    # Had it run on, every remaining batch's progress chunk and its answer would be here.
    assert long.unread <= 3


async def test_a_short_chat_is_answered_while_a_long_prompt_is_processed(two_slots: LlamaCppEngine) -> None:
    events: list[tuple[str, str]] = []
    long_started = asyncio.Event()

    async def read(name: str, request: dict[str, Any]) -> None:
        async with aclosing(two_slots.stream(request)) as chunks:
            async for chunk in chunks:
                if "prompt_progress" in chunk:
                    events.append((name, "progress"))
                    long_started.set()
                elif chunk.get("choices") and chunk["choices"][0].get("finish_reason"):
                    events.append((name, "finish"))

    long = asyncio.create_task(read("long", LONG))
    await long_started.wait()
    await read("short", SHORT)
    await long
    short_done = events.index(("short", "finish"))
    assert short_done < events.index(("long", "finish"))
    assert ("long", "progress") in events[short_done:]  # the long prompt was still being processed
