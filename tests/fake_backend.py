"""One scriptable fake backend for the domain's tests (gateway, fallback, limits, swarm, resolution).

A script is the steps of one stream, in order: a generation event is yielded, an exception raised, and
`HOLD` waits until the stream is cancelled (a stuck upstream, a slow model). It may be a function of the
model, request and limits, for answers that name the model, differ by model or run to the limit.
The counters say what ran."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Final

from lattice.config import ModelProfile
from lattice.server.backends.base import Backend, GenerationLimits
from lattice.server.chat import ChatRequest, Delta, Finish, FinishReason, GenerationEvent, Usage


class Hold:
    """Waits until the stream is cancelled."""


HOLD: Final = Hold()

Step = GenerationEvent | BaseException | Hold
Script = Sequence[Step] | Callable[[ModelProfile, ChatRequest, GenerationLimits], Sequence[Step]]

ANSWER: Final[Sequence[Step]] = (Delta("hello"), Finish(FinishReason.STOP, Usage(1, 1)))


class FakeBackend(Backend):
    name = "fake"

    def __init__(self, script: Script = ANSWER, *, up: bool = True) -> None:
        """`up`: what the backend's health says (`available`)."""
        self.script = script
        self.up = up
        self.calls = 0
        """Streams started."""
        self.running = 0
        """Streams started and not yet closed."""
        self.cancelled = 0
        """Streams cancelled while they held."""
        self.closed = 0
        """Streams closed, however they ended."""

    @property
    def available(self) -> bool:
        return self.up

    async def stream(
        self, model: ModelProfile, request: ChatRequest, limits: GenerationLimits
    ) -> AsyncGenerator[GenerationEvent, None]:
        self.calls += 1
        self.running += 1
        try:
            for step in self.script(model, request, limits) if callable(self.script) else self.script:
                if isinstance(step, Hold):
                    try:
                        await asyncio.Event().wait()
                    except asyncio.CancelledError:
                        self.cancelled += 1
                        raise
                elif isinstance(step, BaseException):
                    raise step
                else:
                    yield step
        finally:
            self.running -= 1
            self.closed += 1
