"""Per-request samplers with their own random key, so a seed fixes the answer even in a shared batch."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import mlx.core as mx
from mlx_lm.sample_utils import apply_top_p, greedy_sampler

from lattice.server.chat import Sampling

Sampler = Callable[[mx.array], mx.array]


def make_request_sampler(sampling: Sampling) -> Sampler:
    """Greedy for temperature 0 (one shared function: the batch samples greedy rows together);
    otherwise a sampler that splits its own key at every token."""
    if sampling.temperature == 0:
        return greedy_sampler
    # Callers may send any integer seed (OpenAI does); MLX keys take unsigned 64-bit ones.
    seed = sampling.seed if sampling.seed is not None else secrets.randbits(64)
    key = mx.random.key(seed % 2**64)
    temperature, top_p = sampling.temperature, sampling.top_p

    def sample(logprobs: mx.array) -> mx.array:
        nonlocal key
        key, step = mx.random.split(key)
        if top_p < 1.0:
            logprobs = apply_top_p(logprobs, top_p)
        return mx.random.categorical(logprobs * (1.0 / temperature), key=step)

    return sample
