"""The in-process MLX backend: a GGUF converted once, loaded on the MLX worker thread,
served with continuous batching."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

from lattice.config import ModelProfile, WeightFormat
from lattice.errors import ContextLengthExceeded
from lattice.server.backends.base import GenerationLimits
from lattice.server.backends.in_process import InProcessBackend
from lattice.server.backends.mlx.batching import BatchEngine, GenerationJob
from lattice.server.backends.mlx.gguf_convert import prepare_mlx_model
from lattice.server.backends.mlx.worker import MlxWorker
from lattice.server.backends.residency import Residency
from lattice.server.chat import ChatRequest, GenerationEvent, Message


class MlxBackend(InProcessBackend[BatchEngine]):
    name = "mlx"

    def __init__(
        self,
        profile: ModelProfile,
        *,
        cache_dir: pathlib.Path,
        weights: WeightFormat,
        worker: MlxWorker,
        max_batch: int,
        residency: Residency,
        pinned: bool,
    ) -> None:
        super().__init__(profile, residency=residency, pinned=pinned)
        self._cache_dir = cache_dir
        self._weights = weights
        self._worker = worker
        self._max_batch = max_batch
        self._tokenizer: Any = None

    async def _load(self) -> BatchEngine:
        gguf = self.gguf
        # Conversion is plain file work: keep it off the worker so it never blocks generation.
        model_dir = await asyncio.to_thread(prepare_mlx_model, gguf, self._cache_dir, self._weights)
        model, tokenizer = await self._worker.call(lambda: _load(model_dir))
        self._tokenizer = tokenizer
        return BatchEngine(model, tokenizer, self._worker, self._max_batch, model_id=self.model_id)

    async def _release(self, engine: BatchEngine) -> None:
        self._tokenizer = None
        del engine  # the last reference to the weights, before the worker frees their memory
        await self._worker.call(_free_memory)

    async def _generate(
        self, engine: BatchEngine, request: ChatRequest, limits: GenerationLimits
    ) -> AsyncGenerator[GenerationEvent, None]:
        prompt_ids = self._prompt_ids(request.messages)
        job = GenerationJob(
            prompt_ids=prompt_ids,
            max_tokens=self._max_tokens(request, len(prompt_ids), limits),
            sampling=request.sampling,
            stop=request.stop,
        )
        budget = limits.prompt_budget
        if budget is not None:
            engine.rates = budget.rates
            budget.check(self.model_id, len(prompt_ids))
        stream: AsyncIterator[GenerationEvent] = engine.stream(job)
        if budget is not None:
            stream = budget.bounded(self.model_id, len(prompt_ids), stream)
        async with aclosing(stream) as events:  # type: ignore[type-var]  # JobStream has aclose too
            async for event in events:
                yield event

    def _prompt_ids(self, messages: tuple[Message, ...]) -> list[int]:
        ids = self._tokenizer.apply_chat_template(
            [_template_message(m) for m in messages], add_generation_prompt=True, tokenize=True
        )
        return list(ids)

    def _max_tokens(self, request: ChatRequest, prompt_tokens: int, limits: GenerationLimits) -> int:
        window = self._profile.context_window
        room = window - prompt_tokens
        if room <= 0:
            raise ContextLengthExceeded(
                f"the prompt is {prompt_tokens} tokens; model {self._profile.id!r} has a context "
                f"window of {window} tokens",
                field="messages",
            )
        if request.max_tokens is None:
            return min(room, limits.max_tokens_ceiling)
        if request.max_tokens > room:
            raise ContextLengthExceeded(
                f"the prompt ({prompt_tokens} tokens) plus max_tokens ({request.max_tokens}) exceeds "
                f"model {self._profile.id!r}'s context window of {window} tokens",
                field="max_tokens",
            )
        return request.max_tokens


def _free_memory() -> None:
    """Runs on the worker after a model's references are dropped: give its buffers back."""
    import gc

    import mlx.core as mx

    gc.collect()
    mx.clear_cache()


def _load(model_dir: pathlib.Path) -> tuple[Any, Any]:
    from mlx_lm.utils import load  # imported here: it pulls in transformers, slow to import

    model, tokenizer = load(str(model_dir))[:2]
    return model, tokenizer


def _template_message(message: Message) -> dict[str, str]:
    out = {"role": message.role.value, "content": message.text}
    if message.name:
        out["name"] = message.name
    return out
