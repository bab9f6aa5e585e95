"""The token loop: runs on the MLX worker thread, one request at a time.

Stop strings are checked here, where tokens are made, so generation ends at
the token that completes one; the cancel event is checked at every token.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from typing import Any

import mlx.core as mx
from mlx_lm.generate import generate_step
from mlx_lm.sample_utils import make_sampler

from lattice.server.backends.mlx.worker import Emit
from lattice.server.chat import Delta, Finish, FinishReason, GenerationEvent, Sampling, Usage
from lattice.server.stop_strings import StopStringMatcher


@dataclass(frozen=True)
class GenerationJob:
    prompt_ids: list[int]
    max_tokens: int
    sampling: Sampling
    stop: tuple[str, ...]


def run_generation(
    model: Any, tokenizer: Any, job: GenerationJob, emit: Emit[GenerationEvent], cancel: threading.Event
) -> None:
    """Generates on the calling (worker) thread, emitting `Delta`s then one `Finish`."""
    # The global MLX key is ours: jobs run one at a time on this thread. MLX takes
    # unsigned 64-bit seeds; callers may send any integer (OpenAI does).
    seed = job.sampling.seed if job.sampling.seed is not None else secrets.randbits(64)
    mx.random.seed(seed % 2**64)
    sampler = make_sampler(temp=job.sampling.temperature, top_p=_top_p(job.sampling.top_p))
    detokenizer = tokenizer.detokenizer
    detokenizer.reset()
    stops = StopStringMatcher(job.stop)
    eos = set(tokenizer.eos_token_ids)
    generated = 0
    reason = FinishReason.LENGTH
    steps = generate_step(mx.array(job.prompt_ids), model, max_tokens=job.max_tokens, sampler=sampler)
    for token_array, _logprobs in steps:
        if cancel.is_set():
            return
        token = int(token_array)
        if token in eos:
            reason = FinishReason.STOP
            break
        generated += 1
        detokenizer.add_token(token)
        scan = stops.feed(detokenizer.last_segment)
        if scan.text:
            emit(Delta(scan.text))
        if scan.stopped:
            emit(Finish(FinishReason.STOP, _usage(job, generated)))
            return
    if cancel.is_set():
        return
    detokenizer.finalize()
    scan = stops.feed(detokenizer.last_segment)
    rest = scan.text if scan.stopped else scan.text + stops.flush()
    if rest:
        emit(Delta(rest))
    emit(Finish(FinishReason.STOP if scan.stopped else reason, _usage(job, generated)))


def _usage(job: GenerationJob, generated: int) -> Usage:
    return Usage(prompt_tokens=len(job.prompt_ids), completion_tokens=generated)


def _top_p(top_p: float) -> float:
    # mlx_lm treats 0 (not 1) as "no nucleus filtering".
    return 0.0 if top_p >= 1.0 else top_p
