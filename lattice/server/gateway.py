"""The domain's front door: validate, resolve, run. Services call this and nothing deeper."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass

from lattice.config import ModelProfile
from lattice.server.backends.base import GenerationLimits
from lattice.server.chat import ChatRequest, Delta, Finish, GenerationEvent
from lattice.server.registry import ModelRegistry
from lattice.server.resolver import Resolution, Resolver
from lattice.server.validation import validate_chat_request


@dataclass(frozen=True)
class Completion:
    resolution: Resolution
    text: str
    finish: Finish


@dataclass(frozen=True)
class ChatStream:
    """A resolved chat whose events have not been pulled yet."""

    resolution: Resolution
    events: AsyncGenerator[GenerationEvent, None]


class Gateway:
    def __init__(self, registry: ModelRegistry, resolver: Resolver, limits: GenerationLimits) -> None:
        self._registry = registry
        self._resolver = resolver
        self._limits = limits

    async def start(self) -> None:
        await asyncio.gather(*(m.backend.start() for m in self._registry))

    async def close(self) -> None:
        await asyncio.gather(*(m.backend.close() for m in self._registry))

    def list_models(self) -> list[ModelProfile]:
        return [m.profile for m in self._registry]

    def resolve(self, expression: str, request: ChatRequest | None = None) -> Resolution:
        return self._resolver.resolve(expression, request)

    def open_chat(self, request: ChatRequest) -> ChatStream:
        """Validates and resolves now; generation starts when `events` is first pulled."""
        validate_chat_request(request, max_tokens_ceiling=self._limits.max_tokens_ceiling)
        resolution = self._resolver.resolve(request.model, request)
        return ChatStream(resolution, resolution.chosen.backend.stream(request, self._limits))

    async def complete(self, request: ChatRequest) -> Completion:
        chat = self.open_chat(request)
        parts: list[str] = []
        async with aclosing(chat.events) as events:
            async for event in events:
                if isinstance(event, Delta):
                    parts.append(event.text)
                else:
                    return Completion(chat.resolution, "".join(parts), event)
        raise AssertionError("a backend stream always ends with Finish")
