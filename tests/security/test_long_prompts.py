"""One long prompt must not hold every other request back (issue #22, item 3), on the MLX engine with
the real model: prompts are processed in bounded chunks between the other sequences' decode steps,
and a caller who leaves during its prompt is removed within a chunk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest
from mlx_lm.utils import load

from lattice.server.backends.mlx.batching import PREFILL_CHUNK_TOKENS, BatchEngine, GenerationJob
from lattice.server.backends.mlx.gguf_convert import default_gguf_path, prepare_mlx_model
from lattice.server.backends.mlx.worker import MlxWorker
from lattice.server.chat import Finish, Sampling
from lattice.server.prompt_budget import PromptRates
from tests.gateway_process import TEST_HOME

pytestmark = pytest.mark.slow

LONG_PROMPT_TOKENS = 2600  # over mlx_lm's own chunk (2,048 tokens) by more than two of ours


@pytest.fixture(scope="module")
async def engine() -> AsyncIterator[tuple[BatchEngine, MlxWorker, Any]]:
    worker = MlxWorker(name="test-mlx-long-prompts")
    model_dir = prepare_mlx_model(default_gguf_path(), TEST_HOME / "models", "float32")
    model, tokenizer = await worker.call(lambda: load(str(model_dir))[:2])
    yield BatchEngine(model, tokenizer, worker, max_batch=8, model_id="smollm2"), worker, tokenizer
    worker.stop()


def long_job(tokenizer: Any) -> GenerationJob:
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "x " * LONG_PROMPT_TOKENS}], add_generation_prompt=True
    )
    assert len(prompt) >= LONG_PROMPT_TOKENS
    return GenerationJob(list(prompt), 1, Sampling(temperature=0.0), ())


def short_job(tokenizer: Any) -> GenerationJob:
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True)
    return GenerationJob(list(prompt), 4, Sampling(temperature=0.0), ())


async def prefill_started(batch: BatchEngine, before: int) -> int:
    while batch.prefilled_tokens == before:  # noqa: ASYNC110 - a counter the worker thread moves
        await asyncio.sleep(0.01)
    return batch.prefilled_tokens


async def test_a_caller_who_leaves_during_a_long_prompt_is_removed_within_a_chunk(
    engine: tuple[BatchEngine, MlxWorker, Any],
) -> None:
    batch, worker, tokenizer = engine
    before = batch.prefilled_tokens
    stream = batch.stream(long_job(tokenizer))
    seen = await asyncio.wait_for(prefill_started(batch, before), 120)
    await stream.aclose()
    await worker.call(lambda: None)  # the worker runs jobs in order: the batch loop has ended
    done = batch.prefilled_tokens - before
    # What was seen, plus the chunk running when the cancel landed and at most one more.
    assert done <= seen - before + 2 * PREFILL_CHUNK_TOKENS
    assert done < LONG_PROMPT_TOKENS


async def test_a_short_chat_is_answered_while_a_long_prompt_is_processed(
    engine: tuple[BatchEngine, MlxWorker, Any],
) -> None:
    batch, worker, tokenizer = engine
    rates = PromptRates()
    batch.rates = rates
    before = batch.prefilled_tokens
    async with aclosing(batch.stream(long_job(tokenizer))):
        await asyncio.wait_for(prefill_started(batch, before), 120)
        async with aclosing(batch.stream(short_job(tokenizer))) as short:
            events = [e async for e in short]
        assert isinstance(events[-1], Finish)
        # The short chat finished while the long prompt was still being processed.
        assert batch.prefilled_tokens - before < LONG_PROMPT_TOKENS
    await worker.call(lambda: None)  # the long one left (unread): the batch loop has ended
    rate = rates.rate("smollm2")
    assert rate is not None and rate > 0  # the chunks were measured for the prompt budget
