"""The domain's front door: validate, resolve, run, fall back. Services call this and nothing deeper."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import AsyncExitStack, aclosing
from dataclasses import dataclass

from lattice.errors import BackendUnavailable, ResourceExhausted
from lattice.server.admission import Admission, AdmissionLimits, QueuedCallback
from lattice.server.backends.base import Backend, GenerationLimits
from lattice.server.chat import ChatRequest, Delta, Finish, GenerationEvent, ToolCall
from lattice.server.registry import ModelRegistry, RegisteredModel
from lattice.server.resolver import Resolution, Resolver
from lattice.server.tool_calls import ToolCallAssembler
from lattice.server.validation import validate_chat_request

log = logging.getLogger(__name__)

FALLBACK_ERRORS = (BackendUnavailable, ResourceExhausted)
UNLIMITED = AdmissionLimits(
    max_concurrent_per_model=1_000_000, max_concurrent_total=1_000_000, queue_size=0, queue_timeout_seconds=0
)
"""Failures before the first token that send the request to the next candidate: the backend is
down, unreachable or over its limits. A refusal of the request itself (a 4xx) is not retried."""


@dataclass(frozen=True)
class Completion:
    resolution: Resolution
    text: str
    tool_calls: tuple[ToolCall, ...]
    finish: Finish


@dataclass(frozen=True)
class Queued:
    model: str
    position: int
    estimated_wait_seconds: float


QueueListener = Callable[[Queued], None]


def _for_model(listener: QueueListener | None, model: str) -> QueuedCallback | None:
    if listener is None:
        return None
    return lambda position, wait: listener(Queued(model, position, wait))


class ChatStream:
    """A chat whose first event has arrived: `resolution` names the model that really answers.

    Iterate it for the events; `aclose()` (or `contextlib.aclosing`) stops generation,
    whether or not iteration has begun.
    """

    def __init__(
        self,
        resolution: Resolution,
        first: GenerationEvent,
        rest: AsyncGenerator[GenerationEvent, None],
        resources: AsyncExitStack,
    ) -> None:
        """`resources` (the admission slot, the backend stream) are released by `aclose`."""
        self.resolution = resolution
        self._first: GenerationEvent | None = first
        self._rest = rest
        self._resources = resources

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> GenerationEvent:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return await anext(self._rest)

    async def aclose(self) -> None:
        await self._resources.aclose()


class Gateway:
    def __init__(
        self,
        registry: ModelRegistry,
        resolver: Resolver,
        limits: GenerationLimits,
        backends: list[Backend] | None = None,
        admission: Admission | None = None,
    ) -> None:
        """`backends` are started and closed with the gateway; by default, those of the registry's models.
        Without `admission`, nothing is queued or refused for capacity."""
        self._registry = registry
        self._resolver = resolver
        self._limits = limits
        self._admission = admission or Admission(UNLIMITED)
        self._backends = (
            backends if backends is not None else list({id(m.backend): m.backend for m in registry}.values())
        )

    @property
    def registry(self) -> ModelRegistry:
        return self._registry

    async def start(self) -> None:
        await asyncio.gather(*(backend.start() for backend in self._backends))

    async def close(self) -> None:
        await asyncio.gather(*(backend.close() for backend in self._backends))

    def list_models(self) -> list[RegisteredModel]:
        return list(self._registry)

    def resolve(self, expression: str, request: ChatRequest | None = None) -> Resolution:
        return self._resolver.resolve(expression, request)

    async def open_chat(self, request: ChatRequest, on_queued: QueueListener | None = None) -> ChatStream:
        """Validates, resolves and starts generation, falling back to the next candidate while
        a backend fails before its first event. After that there is no silent switch."""
        validate_chat_request(request, max_tokens_ceiling=self._limits.max_tokens_ceiling)
        resolution: Resolution | None = self._resolver.resolve(request.model, request)
        while resolution is not None:
            resources = AsyncExitStack()
            try:
                await resources.enter_async_context(
                    self._admission.slot(
                        resolution.model,
                        caller=request.caller,
                        priority=request.priority,
                        deadline=request.deadline,
                        on_queued=_for_model(on_queued, resolution.model),
                    )
                )
                events = resolution.chosen.backend.stream(resolution.chosen.profile, request, self._limits)
                resources.push_async_callback(events.aclose)  # closed before the slot is given back
                first = await anext(events)
            except FALLBACK_ERRORS as error:
                await resources.aclose()
                log.warning("model %s failed before its first token: %s", resolution.model, error.message)
                next_resolution = resolution.fall_back(error)
                if next_resolution is None:
                    raise
                resolution = next_resolution
                continue
            except BaseException:
                await resources.aclose()
                raise
            return ChatStream(resolution, first, events, resources)
        raise AssertionError("unreachable")

    async def complete(self, request: ChatRequest) -> Completion:
        chat = await self.open_chat(request)
        parts: list[str] = []
        tool_calls = ToolCallAssembler()
        async with aclosing(chat):
            async for event in chat:
                if isinstance(event, Delta):
                    parts.append(event.text)
                    tool_calls.add(event.tool_calls)
                else:
                    return Completion(chat.resolution, "".join(parts), tool_calls.calls(), event)
        raise AssertionError("a backend stream always ends with Finish")
