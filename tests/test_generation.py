"""The token loop on the real model: cancellation within one step, stop strings, finish reasons."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from mlx_lm.utils import load

from lattice.server.backends.mlx.generation import GenerationJob, run_generation
from lattice.server.backends.mlx.gguf_convert import default_gguf_path, prepare_mlx_model
from lattice.server.chat import Delta, Finish, FinishReason, GenerationEvent, Sampling
from tests.gateway_process import TEST_HOME

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_and_tokenizer() -> tuple[Any, Any]:
    model_dir = prepare_mlx_model(default_gguf_path(), TEST_HOME / "models", "float32")
    model, tokenizer = load(str(model_dir))[:2]
    return model, tokenizer


def story_job(tokenizer: Any, max_tokens: int, stop: tuple[str, ...] = ()) -> GenerationJob:
    messages = [{"role": "user", "content": "Tell me a long story about a dragon."}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    return GenerationJob(list(prompt), max_tokens, Sampling(temperature=0.0), stop)


def run(model_and_tokenizer: tuple[Any, Any], job: GenerationJob, cancel_after: int | None = None) -> list[Any]:
    events: list[GenerationEvent] = []
    cancel = threading.Event()

    def emit(event: GenerationEvent) -> None:
        events.append(event)
        if cancel_after is not None and len(events) >= cancel_after:
            cancel.set()

    run_generation(*model_and_tokenizer, job, emit, cancel)
    return events


def test_cancel_stops_within_one_token(model_and_tokenizer: tuple[Any, Any]) -> None:
    events = run(model_and_tokenizer, story_job(model_and_tokenizer[1], 500), cancel_after=3)
    # The loop checks the event before emitting the next token: nothing after the third delta.
    assert len(events) == 3
    assert all(isinstance(e, Delta) for e in events)


def test_length_finish_counts_tokens(model_and_tokenizer: tuple[Any, Any]) -> None:
    events = run(model_and_tokenizer, story_job(model_and_tokenizer[1], 5))
    finish = events[-1]
    assert isinstance(finish, Finish)
    assert finish.reason is FinishReason.LENGTH
    assert finish.usage.completion_tokens == 5


def test_stop_string_is_cut_and_not_emitted(model_and_tokenizer: tuple[Any, Any]) -> None:
    free = run(model_and_tokenizer, story_job(model_and_tokenizer[1], 40))
    text = "".join(e.text for e in free if isinstance(e, Delta))
    word = text.split()[3]  # a word from inside the greedy answer
    stopped = run(model_and_tokenizer, story_job(model_and_tokenizer[1], 40, stop=(word,)))
    finish = stopped[-1]
    assert isinstance(finish, Finish)
    assert finish.reason is FinishReason.STOP
    assert "".join(e.text for e in stopped if isinstance(e, Delta)) == text[: text.index(word)]
