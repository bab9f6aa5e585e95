"""Swarm agents with fake models: interleaved streams with their own seed and sampling, one or every agent
failing, timeouts, and closing the stream cancelling them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from lattice.errors import BackendUnavailable, SwarmFailed
from lattice.server.chat import ChatRequest, Delta, Finish, FinishReason, Message, Role, Sampling, TextPart, Usage
from lattice.server.swarm import (
    Agent,
    AgentDelta,
    AgentEvent,
    AgentFinished,
    AgentStarted,
    FanoutSpec,
    Opened,
    RequestedLimits,
    SwarmResult,
)
from tests.swarm.swarm_fakes import Behaviour, Fakes, answers, base, collect, fails, of_type


async def test_agents_stream_interleaved_and_get_their_own_seed_and_sampling() -> None:
    turn = asyncio.Condition()
    order = iter(["a", "b", "a", "b"])
    whose_turn = [next(order)]

    def taking_turns(name: str) -> Behaviour:
        async def behaviour(request: ChatRequest) -> AsyncGenerator[AgentEvent, None]:
            yield Opened(name)
            for i in range(2):
                async with turn:
                    await turn.wait_for(lambda: whose_turn[0] == name)
                    whose_turn[0] = next(order, "")
                    turn.notify_all()
                yield Delta(f"{name}{i}")
            yield Finish(FinishReason.STOP, Usage(1, 2))

        return behaviour

    fakes = Fakes({"a": taking_turns("a"), "b": taking_turns("b")})
    agents = (Agent(model="a", system_prompt="You are terse."), Agent(model="b", temperature=0.2, seed=99))
    events = await collect(fakes.swarm().fanout(FanoutSpec(base(sampling=Sampling(0.7, 1.0, 7)), agents)))
    assert [(e.agent, e.text) for e in of_type(events, AgentDelta)] == [
        ("agent-1", "a0"),
        ("agent-2", "b0"),
        ("agent-1", "a1"),
        ("agent-2", "b1"),
    ]
    [a], [b] = fakes.asked("a"), fakes.asked("b")
    assert a.messages[0] == Message(Role.SYSTEM, (TextPart("You are terse."),)) and a.messages[1:] == base().messages
    assert (a.sampling.temperature, a.sampling.seed) == (0.7, 7)
    assert (b.sampling.temperature, b.sampling.seed) == (0.2, 99)
    result = events[-1]
    assert isinstance(result, SwarmResult) and result.usage == Usage(2, 4)


# --- failures: one agent alone, or all of them ---


async def test_one_failing_agent_does_not_fail_the_swarm() -> None:
    fakes = Fakes({"down": fails(BackendUnavailable("down is down")), "up": answers("Paris")})
    events = await collect(fakes.swarm().fanout(FanoutSpec(base(), (Agent(model="down"), Agent(model="up")))))
    result = events[-1]
    assert isinstance(result, SwarmResult)
    down, up = result.answers
    assert down.failure is not None and (down.failure.code, down.failure.reason) == (
        "UNAVAILABLE",
        "BACKEND_UNAVAILABLE",
    )
    assert up.succeeded


async def test_the_swarm_fails_when_every_agent_does_with_their_own_status() -> None:
    fakes = Fakes({"down": fails(BackendUnavailable("down is down", retry_after_seconds=3))})
    with pytest.raises(SwarmFailed) as caught:
        await collect(fakes.swarm().fanout(FanoutSpec(base(), (Agent(model="down"), Agent(model="down")))))
    assert caught.value.code == "UNAVAILABLE" and caught.value.reason == "BACKEND_UNAVAILABLE"
    assert caught.value.retry_after_seconds == 3
    assert "agent-1: down is down" in caught.value.message


async def test_an_agent_past_its_timeout_fails_alone() -> None:
    async def never(request: ChatRequest) -> AsyncGenerator[AgentEvent, None]:
        yield Opened("never")
        await asyncio.Event().wait()

    fakes = Fakes({"never": never, "up": answers("Paris")})
    spec = FanoutSpec(base(), (Agent(model="never"), Agent(model="up")), RequestedLimits(agent_timeout_seconds=0.05))
    events = await collect(fakes.swarm().fanout(spec))
    late = next(e for e in of_type(events, AgentFinished) if e.agent == "agent-1")
    assert late.failure is not None and (late.failure.code, late.failure.reason) == (
        "DEADLINE_EXCEEDED",
        "AGENT_TIMEOUT",
    )
    assert isinstance(events[-1], SwarmResult)


async def test_closing_the_stream_cancels_every_running_agent() -> None:
    cancelled: list[str] = []

    async def stays(request: ChatRequest) -> AsyncGenerator[AgentEvent, None]:
        yield Opened("stays")
        yield Delta("hello")
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.append(request.model)

    fakes = Fakes({"stays": stays})
    events = fakes.swarm().fanout(FanoutSpec(base(), (Agent(model="stays"), Agent(model="stays"))))
    seen = [await anext(events) for _ in range(4)]  # both started and said hello
    assert {type(e) for e in seen} == {AgentStarted, AgentDelta}
    await events.aclose()
    assert cancelled == ["stays", "stays"]
