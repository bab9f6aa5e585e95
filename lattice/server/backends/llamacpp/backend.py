"""The in-process llama.cpp backend: a GGUF model served straight from its file, no conversion."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from lattice.config import ModelProfile
from lattice.errors import BackendUnavailable
from lattice.server.backends.base import Backend, GenerationLimits
from lattice.server.backends.default_model import default_gguf_path
from lattice.server.backends.llamacpp.engine import Chunk, EngineOptions, LlamaCppEngine, engine_error
from lattice.server.backends.llamacpp.gguf_metadata import read_metadata
from lattice.server.backends.llamacpp.request import chat_body, trim_logprobs
from lattice.server.backends.llamacpp.tool_emulation import template_supports_tools
from lattice.server.backends.residency import Residency
from lattice.server.backends.upstream.openai_wire import StreamState
from lattice.server.chat import (
    ChatRequest,
    Delta,
    Finish,
    FinishReason,
    GenerationEvent,
    ToolCall,
    ToolCallDelta,
    merged,
)
from lattice.server.prompt_budget import PromptBudget, PromptQueueTimeout

log = logging.getLogger(__name__)


class LlamaCppBackend(Backend):
    name = "llamacpp"

    def __init__(self, profile: ModelProfile, *, options: EngineOptions, residency: Residency, pinned: bool) -> None:
        """A pinned model loads at start and is never evicted; others load on first use."""
        self._profile = profile
        self._options = options
        self._residency = residency
        self._pinned = pinned
        self._engine: LlamaCppEngine | None = None
        self._native_tools = False
        self._loading = asyncio.Lock()  # single flight: concurrent requests for a cold model load it once
        self._in_flight = 0
        self.loads = 0
        """How many times the weights were loaded (for tests and metrics)."""

    @property
    def model_id(self) -> str:
        return self._profile.id

    @property
    def options(self) -> EngineOptions:
        """What the model's engine is loaded with."""
        return self._options

    @property
    def pinned(self) -> bool:
        return self._pinned

    @property
    def busy(self) -> bool:
        return self._in_flight > 0

    @property
    def resident(self) -> bool:
        return self._engine is not None

    def state(self, model: ModelProfile) -> str:
        if self._engine is not None:
            return "resident"
        return "loading" if self._loading.locked() else "unloaded"

    async def start(self) -> None:
        if self.pinned:
            await self._ensure_loaded()

    async def close(self) -> None:
        if self._engine is not None:
            await self.unload()

    async def unload(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await asyncio.to_thread(engine.close)

    async def stream(
        self, model: ModelProfile, request: ChatRequest, limits: GenerationLimits
    ) -> AsyncGenerator[GenerationEvent, None]:
        self._in_flight += 1
        try:
            async for event in self._generate(request, limits):
                yield event
        finally:
            self._in_flight -= 1

    async def _generate(self, request: ChatRequest, limits: GenerationLimits) -> AsyncGenerator[GenerationEvent, None]:
        engine = await self._ensure_loaded()
        max_tokens = request.max_tokens if request.max_tokens is not None else limits.max_tokens_ceiling
        body, emulation = chat_body(request, max_tokens=max_tokens, native_tools=self._native_tools)
        state = StreamState()
        answer: list[str] = []
        async with aclosing(self._output(engine, body, limits.prompt_budget)) as chunks:
            async for chunk in chunks:
                delta = state.read_chunk(chunk)
                deltas = [trim_logprobs(delta, request.top_logprobs)] if delta else []
                if emulation is not None:
                    answer.extend(d.text for d in deltas)
                    continue
                for delta in merged(deltas):
                    yield delta
        reason = state.finish_reason or FinishReason.STOP
        if emulation is not None:
            text, calls = emulation.parse("".join(answer))
            if calls:
                yield Delta(tool_calls=tuple(_fragment(i, call) for i, call in enumerate(calls)))
                reason = FinishReason.TOOL_CALLS
            elif text:
                yield Delta(text)
        yield Finish(reason, state.final_usage(request.estimated_prompt_tokens))

    async def _output(
        self, engine: LlamaCppEngine, body: dict[str, Any], budget: PromptBudget | None
    ) -> AsyncGenerator[Chunk, None]:
        """The answer's chunks. The prompt's progress chunks (one per prompt batch) are read here: the
        first tells how many tokens the prompt needs processed, which `budget` checks and bounds the wait
        for the first output by (time behind other requests' prompts counts, as time in the admission
        queue does); the others measure the model's prompt rate."""
        first_output = asyncio.timeout(None)  # no output yet: no yield happens while it can expire
        waited, seen = 0.0, (-1, 0)  # (tokens processed, milliseconds) at the last progress chunk
        try:
            async with aclosing(engine.stream(body)) as chunks, first_output:
                async for chunk in chunks:
                    if "error" in chunk:
                        raise engine_error(chunk["error"])
                    progress = chunk.get("prompt_progress")
                    if progress is None:
                        first_output.reschedule(None)
                        yield chunk
                    elif budget is not None:
                        processed, milliseconds = int(progress.get("processed", 0)), int(progress.get("time_ms", 0))
                        if seen[0] < 0:  # the first: how much of the prompt is to be processed
                            tokens = int(progress.get("total", 0)) - int(progress.get("cache", 0))
                            budget.check(self.model_id, tokens)
                            if (waited := budget.first_event_timeout(self.model_id, tokens) or 0.0) > 0:
                                first_output.reschedule(asyncio.get_running_loop().time() + waited)
                        else:  # one more batch of the prompt: the model's measured rate
                            budget.rates.observe(self.model_id, processed - seen[0], (milliseconds - seen[1]) / 1000)
                        seen = (processed, milliseconds)
        except TimeoutError:
            if not first_output.expired():
                raise
            raise PromptQueueTimeout(
                f"waited {waited:.0f} s for {self.model_id!r} to get through this request's prompt "
                "(the queue timeout plus its own prompt's time)",
                retry_after_seconds=budget.queue_timeout_seconds if budget else 1.0,
                metadata={"model": self.model_id},
            ) from None

    async def _ensure_loaded(self) -> LlamaCppEngine:
        async with self._loading:
            if self._engine is not None:
                self._residency.touch(self)
                return self._engine
            await self._residency.make_room_for(self.model_id)
            gguf = self._profile.gguf_path or default_gguf_path()
            try:
                template = str((await asyncio.to_thread(read_metadata, gguf)).get("tokenizer.chat_template", ""))
                self._engine = await asyncio.to_thread(LlamaCppEngine.load, gguf, self._options)
            except Exception as error:
                raise BackendUnavailable(
                    f"model {self.model_id!r} failed to load: {type(error).__name__}: {error}",
                    reason="MODEL_LOAD_FAILED",
                ) from error
            self._native_tools = template_supports_tools(template)
            log.info(
                "model %s loaded on llama.cpp from %s (%d threads, %d sequences at once, tools %s)",
                self.model_id,
                gguf,
                self._options.threads,
                self._options.parallel,
                "from its template" if self._native_tools else "emulated",
            )
            self.loads += 1
            self._residency.loaded(self)
            return self._engine


def _fragment(index: int, call: ToolCall) -> ToolCallDelta:
    return ToolCallDelta(index, call.id, call.name, call.arguments)
