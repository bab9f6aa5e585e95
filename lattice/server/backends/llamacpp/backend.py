"""The in-process llama.cpp backend: a GGUF model served straight from its file, no conversion."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from lattice.config import ModelProfile
from lattice.errors import InvalidArgument
from lattice.server.backends.base import GenerationLimits
from lattice.server.backends.in_process import InProcessBackend
from lattice.server.backends.llamacpp.engine import Chunk, EngineOptions, LlamaCppEngine, engine_error
from lattice.server.backends.llamacpp.gguf_metadata import read_metadata
from lattice.server.backends.llamacpp.request import chat_body, embeddings_body, text_completion_body, trim_logprobs
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
    Usage,
)
from lattice.server.embeddings import Embeddings, EmbedRequest
from lattice.server.prompt_budget import PromptBudget
from lattice.server.stop_strings import DeltaStops

log = logging.getLogger(__name__)


class LlamaCppBackend(InProcessBackend[LlamaCppEngine]):
    name = "llamacpp"

    def __init__(self, profile: ModelProfile, *, options: EngineOptions, residency: Residency, pinned: bool) -> None:
        super().__init__(profile, residency=residency, pinned=pinned)
        self._options = options
        self._native_tools = False

    @property
    def options(self) -> EngineOptions:
        """What the model's engine is loaded with."""
        return self._options

    async def close(self) -> None:
        await self.unload()

    async def _load(self) -> LlamaCppEngine:
        gguf = self.gguf
        metadata = await asyncio.to_thread(read_metadata, gguf)
        template = str(metadata.get("tokenizer.chat_template", ""))
        pooling_in_file = f"{metadata.get('general.architecture', '')}.pooling_type" in metadata
        engine = await asyncio.to_thread(LlamaCppEngine.load, gguf, self._options, pooling_in_file=pooling_in_file)
        self._native_tools = template_supports_tools(template)
        log.info(
            "model %s loaded on llama.cpp from %s (%d threads, %d sequences at once, tools %s)",
            self.model_id,
            gguf,
            self._options.threads,
            self._options.parallel,
            "from its template" if self._native_tools else "emulated",
        )
        return engine

    async def _release(self, engine: LlamaCppEngine) -> None:
        await asyncio.to_thread(engine.close)

    async def _generate(
        self, engine: LlamaCppEngine, request: ChatRequest, limits: GenerationLimits
    ) -> AsyncGenerator[GenerationEvent, None]:
        max_tokens = request.max_tokens if request.max_tokens is not None else limits.max_tokens_ceiling
        raw = request.prompt is not None
        if raw:
            body, emulation = text_completion_body(request, max_tokens=max_tokens), None
        else:
            body, emulation = chat_body(request, max_tokens=max_tokens, native_tools=self._native_tools)
        # The stop strings are the gateway's to apply, not the engine's: llama.cpp's OpenAI-shaped chunks
        # never say which one ended an answer (only its native, non-OpenAI results do), and callers are
        # told (Anthropic's `stop_sequence`). Once one is found the stream is closed, which stops
        # generation at the engine's next token.
        body.pop("stop", None)
        stops = DeltaStops(request.stop)
        state, prompt = StreamState(), _PromptSize()
        answer: list[str] = []
        output = self._output(engine, body, limits.prompt_budget, prompt, raw=raw)
        async with aclosing(output) as chunks, aclosing(_cut(chunks, state, stops)) as deltas:
            async for delta in deltas:
                if not (delta.text or delta.tool_calls or delta.logprobs):
                    continue
                if emulation is not None:
                    answer.append(delta.text)  # read whole once it ends: a call or text
                else:
                    yield trim_logprobs(delta, request.top_logprobs)
        reason = FinishReason.STOP if stops.stopped else state.finish_reason or FinishReason.STOP
        if emulation is not None:
            text, calls = emulation.parse("".join(answer))
            if calls:
                yield Delta(tool_calls=tuple(_fragment(i, call) for i, call in enumerate(calls)))
                reason = FinishReason.TOOL_CALLS
            elif text:
                yield Delta(text)
        stop = stops.stop if reason is FinishReason.STOP else ""  # a call parsed from the text cut before it
        yield Finish(reason, self._usage(state, prompt, request), stop)

    @staticmethod
    def _usage(state: StreamState, prompt: _PromptSize, request: ChatRequest) -> Usage:
        """The engine's own count; when the gateway stopped it (a stop string) no count comes, and the
        prompt's size is the one its progress said, the answer's a count of its chunks (one a token)."""
        if state.usage is not None:
            return state.usage
        return Usage(
            prompt.tokens if prompt.tokens is not None else request.estimated_prompt_tokens,
            state.completion_tokens_seen,
        )

    async def _embed(self, engine: LlamaCppEngine, request: EmbedRequest) -> Embeddings:
        if request.dimensions is not None:
            raise InvalidArgument(
                f"model {self.model_id!r} (llama.cpp) gives vectors of its own size only: leave dimensions unset",
                field="dimensions",
            )
        answer = await engine.embed(embeddings_body(request))
        vectors = sorted(answer.get("data") or [], key=lambda item: int(item.get("index", 0)))
        usage = answer.get("usage") or {}
        return Embeddings(tuple(tuple(v["embedding"]) for v in vectors), int(usage.get("prompt_tokens", 0)))

    async def _output(
        self,
        engine: LlamaCppEngine,
        body: dict[str, Any],
        budget: PromptBudget | None,
        prompt: _PromptSize,
        *,
        raw: bool = False,
    ) -> AsyncGenerator[Chunk, None]:
        """The answer's chunks. The prompt's progress chunks (one per prompt batch) are read here: the
        first tells the prompt's size (into `prompt`) and how many tokens it needs processed, which
        `budget` checks and bounds the wait for the first output by (time behind other requests' prompts
        counts, as time in the admission queue does); the others measure the model's prompt rate."""
        first_output = asyncio.timeout(None)  # no output yet: no yield happens while it can expire
        waited, seen = 0.0, (-1, 0)  # (tokens processed, milliseconds) at the last progress chunk
        try:
            async with aclosing(engine.stream(body, raw=raw)) as chunks, first_output:
                async for chunk in chunks:
                    if "error" in chunk:
                        raise engine_error(chunk["error"], field="prompt" if raw else "messages")
                    progress = chunk.get("prompt_progress")
                    if progress is None:
                        first_output.reschedule(None)
                        yield chunk
                        continue
                    if prompt.tokens is None:
                        prompt.tokens = int(progress.get("total", 0))
                    if budget is not None:
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
            if budget is None or not first_output.expired():  # only a budget ever sets the timer
                raise
            raise budget.late(self.model_id, waited) from None


@dataclass
class _PromptSize:
    tokens: int | None = None
    """The prompt's tokens, as the engine's first progress chunk says (None before it)."""


async def _cut(chunks: AsyncIterator[Chunk], state: StreamState, stops: DeltaStops) -> AsyncGenerator[Delta, None]:
    """The answer's deltas, cut at the first of the request's stop strings: ends there (the caller's
    `aclosing` then stops the engine), else with what `stops` held back."""
    async for chunk in chunks:
        delta = state.read_chunk(chunk)
        if delta is None:
            continue
        yield stops.feed(delta)
        if stops.stopped:
            return
    yield stops.flush()


def _fragment(index: int, call: ToolCall) -> ToolCallDelta:
    return ToolCallDelta(index, call.id, call.name, call.arguments)
