"""In-process fake agents for the swarm orchestration tests, whose timing the tests control (events,
not sleeps): `Fakes` plays a behaviour per model name (`answers`, `echoes`, `fails`), and `collect`,
`drain` and `of_type` read what the swarm streams."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TypeVar

from lattice.server.chat import ChatRequest, Delta, Finish, FinishReason, Message, Role, TextPart, Usage
from lattice.server.swarm import AgentEvent, Opened, Swarm, SwarmEvent, SwarmLimits

LIMITS = SwarmLimits(max_agents=4, max_rounds=3, max_total_tokens=10_000, agent_timeout_seconds=30)
QUESTION = "What is the capital of France?"


def user(text: str) -> Message:
    return Message(Role.USER, (TextPart(text),))


def base(**fields: object) -> ChatRequest:
    return ChatRequest("", (user(QUESTION),), max_tokens=50, **fields)  # type: ignore[arg-type]


Behaviour = Callable[[ChatRequest], AsyncGenerator[AgentEvent, None]]


@dataclass
class Fakes:
    """Agents by model name: each `run` records its request and plays the model's behaviour."""

    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    requests: list[ChatRequest] = field(default_factory=list)

    async def run(self, request: ChatRequest) -> AsyncGenerator[AgentEvent, None]:
        self.requests.append(request)
        async with aclosing(self.behaviours[request.model](request)) as events:
            async for event in events:
                yield event

    def asked(self, model: str) -> list[ChatRequest]:
        return [r for r in self.requests if r.model == model]

    def swarm(self, limits: SwarmLimits = LIMITS) -> Swarm:
        return Swarm(self.run, limits, max_tokens_ceiling=100, judge_max_tokens=64)


def answers(*texts: str, model: str = "fake") -> Behaviour:
    """Yields the texts as deltas, then finishes; each call takes the next text (the last repeats)."""
    calls = iter(range(1_000_000))

    async def behaviour(request: ChatRequest) -> AsyncGenerator[AgentEvent, None]:
        text = texts[min(next(calls), len(texts) - 1)]
        yield Opened(model)
        for word in text.split(" "):
            yield Delta(word + " ")
        yield Finish(FinishReason.STOP, Usage(10, len(text.split(" "))))

    return behaviour


def echoes(transform: Callable[[str], str]) -> Behaviour:
    """Answers `transform(last user message)`."""

    async def behaviour(request: ChatRequest) -> AsyncGenerator[AgentEvent, None]:
        yield Opened("echo")
        yield Delta(transform(request.messages[-1].text))
        yield Finish(FinishReason.STOP, Usage(1, 1))

    return behaviour


def fails(error: Exception) -> Behaviour:
    async def behaviour(request: ChatRequest) -> AsyncGenerator[AgentEvent, None]:
        raise error
        yield Opened("never")  # an async generator all the same

    return behaviour


async def collect(events: AsyncGenerator[SwarmEvent, None]) -> list[SwarmEvent]:
    seen: list[SwarmEvent] = []
    await drain(events, seen)
    return seen


async def drain(events: AsyncGenerator[SwarmEvent, None], seen: list[SwarmEvent]) -> None:
    """Appends each event to `seen` as it comes, so a test still has them when the swarm fails."""
    async with aclosing(events):
        async for event in events:
            seen.append(event)


T = TypeVar("T")


def of_type(events: list[SwarmEvent], kind: type[T]) -> list[T]:
    return [e for e in events if isinstance(e, kind)]
