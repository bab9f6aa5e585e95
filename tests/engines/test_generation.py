"""The MLX batch engine on the real model: batching, cancellation within a step, stop strings, finishes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest
from mlx_lm.utils import load

from lattice.server.backends.mlx.batching import BatchEngine, GenerationJob
from lattice.server.backends.mlx.gguf_convert import default_gguf_path, prepare_mlx_model
from lattice.server.backends.mlx.worker import MlxWorker
from lattice.server.chat import Delta, Finish, FinishReason, GenerationEvent, Sampling
from tests.gateway_process import TEST_HOME

pytestmark = pytest.mark.slow

PROMPTS = [
    "Tell me a long story about a dragon.",
    "What is the capital of France?",
    "List three colours.",
    "Why is the sky blue?",
]


@pytest.fixture(scope="module")
async def engine() -> AsyncIterator[tuple[BatchEngine, MlxWorker, Any]]:
    worker = MlxWorker(name="test-mlx")
    model_dir = prepare_mlx_model(default_gguf_path(), TEST_HOME / "models", "float32")
    model, tokenizer = await worker.call(lambda: load(str(model_dir))[:2])
    yield BatchEngine(model, tokenizer, worker, max_batch=8), worker, tokenizer
    worker.stop()


def job(tokenizer: Any, text: str, max_tokens: int, stop: tuple[str, ...] = (), **sampling: Any) -> GenerationJob:
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True)
    return GenerationJob(list(prompt), max_tokens, Sampling(**{"temperature": 0.0, **sampling}), stop)


async def run(engine: BatchEngine, generation: GenerationJob) -> tuple[str, Finish]:
    events: list[GenerationEvent] = []
    async with aclosing(engine.stream(generation)) as stream:
        events = [e async for e in stream]
    finish = events[-1]
    assert isinstance(finish, Finish)
    return "".join(e.text for e in events if isinstance(e, Delta)), finish


async def test_cancel_leaves_the_batch_within_one_step(engine: tuple[BatchEngine, MlxWorker, Any]) -> None:
    batch, worker, tokenizer = engine
    stream = batch.stream(job(tokenizer, PROMPTS[0], 500))
    deltas = [await anext(stream) for _ in range(3)]
    await stream.aclose()
    await worker.call(lambda: None)  # the worker runs jobs in order: the batch loop has ended
    assert all(isinstance(d, Delta) for d in deltas)
    assert stream.unread <= 1  # at most the token already in flight when the cancel landed


async def test_length_finish_counts_tokens(engine: tuple[BatchEngine, MlxWorker, Any]) -> None:
    batch, _, tokenizer = engine
    _, finish = await run(batch, job(tokenizer, PROMPTS[0], 5))
    assert finish.reason is FinishReason.LENGTH
    assert finish.usage.completion_tokens == 5


async def test_stop_string_is_cut_and_not_emitted(engine: tuple[BatchEngine, MlxWorker, Any]) -> None:
    batch, _, tokenizer = engine
    text, _ = await run(batch, job(tokenizer, PROMPTS[0], 40))
    word = text.split()[3]  # a word from inside the greedy answer
    stopped, finish = await run(batch, job(tokenizer, PROMPTS[0], 40, stop=("zebra", word)))
    assert (finish.reason, finish.stop_sequence) == (FinishReason.STOP, word)
    assert stopped == text[: text.index(word)]


async def test_concurrent_greedy_streams_match_the_same_requests_one_by_one(
    engine: tuple[BatchEngine, MlxWorker, Any],
) -> None:
    batch, _, tokenizer = engine
    jobs = [job(tokenizer, p, 24) for p in PROMPTS]
    alone = [await run(batch, j) for j in jobs]
    together = await asyncio.gather(*(run(batch, j) for j in jobs))
    assert [t for t, _ in together] == [t for t, _ in alone]
    assert [f.usage for _, f in together] == [f.usage for _, f in alone]


async def test_a_cancelled_stream_leaves_the_others_undisturbed(engine: tuple[BatchEngine, MlxWorker, Any]) -> None:
    batch, _, tokenizer = engine
    jobs = [job(tokenizer, p, 24) for p in PROMPTS[1:]]
    alone = [await run(batch, j) for j in jobs]
    leaving = batch.stream(job(tokenizer, PROMPTS[0], 500))

    async def leave_early() -> None:
        for _ in range(2):
            await anext(leaving)
        await leaving.aclose()

    together, _ = await asyncio.gather(asyncio.gather(*(run(batch, j) for j in jobs)), leave_early())
    assert [t for t, _ in together] == [t for t, _ in alone]


async def test_a_seed_fixes_the_answer_even_in_a_shared_batch(engine: tuple[BatchEngine, MlxWorker, Any]) -> None:
    batch, _, tokenizer = engine
    seeded = job(tokenizer, "Write a short poem about the sea.", 20, temperature=1.0, seed=42)
    other = job(tokenizer, "Write a short poem about the sea.", 20, temperature=1.0, seed=43)
    (first, _), (second, _), (third, _) = await asyncio.gather(
        run(batch, seeded), run(batch, seeded), run(batch, other)
    )
    alone, _ = await run(batch, seeded)
    assert first == second == alone
    assert third != first


async def test_a_shared_prefix_is_prefilled_once(engine: tuple[BatchEngine, MlxWorker, Any]) -> None:
    batch, _, tokenizer = engine
    first = job(tokenizer, "Name a fruit.", 4)
    follow_up = job(tokenizer, "Name a vegetable.", 4)  # the same system prompt and template before it
    await run(batch, first)
    before = batch.reused_prompt_tokens
    cold_text, _ = await run(batch, follow_up)
    shared = next(i for i, (a, b) in enumerate(zip(first.prompt_ids, follow_up.prompt_ids, strict=False)) if a != b)
    # The nearest cached entry may be an earlier prompt that shares a little less (same template and
    # system prompt, then other words): nearly all of the shared prefix is reused either way.
    assert batch.reused_prompt_tokens - before >= shared - 2
    again, _ = await run(batch, follow_up)
    assert again == cold_text  # reusing the cache changes nothing in the answer
