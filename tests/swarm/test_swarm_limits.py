"""Swarm limits and agent names: a swarm over a limit or with a bad name is refused before anything runs."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import replace

import pytest

from lattice.errors import InvalidArgument, SwarmLimitExceeded
from lattice.server.swarm import (
    Agent,
    DebateSpec,
    FanoutSpec,
    PipelineSpec,
    RequestedLimits,
    Step,
    Swarm,
    SwarmEvent,
    SwarmLimits,
    VoteSpec,
)
from tests.swarm.swarm_fakes import Fakes, answers, base, collect

# --- limits and names, refused before anything runs ---


@pytest.mark.parametrize(
    ("run", "field", "limit"),
    [
        (lambda s: s.fanout(FanoutSpec(base(), (Agent(model="a"),) * 5)), "agents", "max_agents"),
        (
            lambda s: s.pipeline(PipelineSpec(base(), "x", tuple(Step(f"s{i}", "{{input}}") for i in range(5)))),
            "steps",
            "max_agents",
        ),
        (lambda s: s.debate(DebateSpec(base(), (Agent(model="a"),) * 2, rounds=4)), "rounds", "max_rounds"),
        (
            lambda s: s.fanout(FanoutSpec(base(), (Agent(model="a"),) * 3, RequestedLimits(max_agents=2))),
            "agents",
            "max_agents",
        ),
        (
            lambda s: s.fanout(FanoutSpec(base(), (Agent(model="a"),), RequestedLimits(max_agents=9))),
            "limits.max_agents",
            "max_agents",
        ),
        (
            lambda s: s.vote(VoteSpec(replace(base(), max_tokens=None), (Agent(model="a"),) * 4)),
            "max_tokens",
            "max_total_tokens",
        ),
        (
            lambda s: s.fanout(FanoutSpec(base(), (Agent(model="a"),) * 2, RequestedLimits(max_total_tokens=100))),
            "max_tokens",
            "max_total_tokens",
        ),
    ],
)
async def test_a_swarm_over_a_limit_is_refused_up_front_naming_it(
    run: Callable[[Swarm], AsyncGenerator[SwarmEvent, None]], field: str, limit: str
) -> None:
    fakes = Fakes({"a": answers("Paris"), "": answers("Paris")})
    tight = SwarmLimits(max_agents=4, max_rounds=3, max_total_tokens=400, agent_timeout_seconds=30)
    with pytest.raises(SwarmLimitExceeded) as caught:
        await collect(run(fakes.swarm(tight)))
    assert (caught.value.field, caught.value.limit) == (field, limit)
    assert caught.value.metadata == {"field": field, "limit": limit}
    assert caught.value.code == "INVALID_ARGUMENT" and caught.value.reason == "SWARM_LIMIT_EXCEEDED"
    assert limit in caught.value.message
    assert fakes.requests == []


@pytest.mark.parametrize(
    ("agents", "field"),
    [
        ((), "agents"),
        ((Agent("judge", "a"),), "agents[0].name"),
        ((Agent("agent-2", "a"), Agent(model="a")), "agents[1].name"),
    ],
)
async def test_agent_names_are_checked(agents: tuple[Agent, ...], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await collect(Fakes().swarm().fanout(FanoutSpec(base(), agents)))
    assert caught.value.field == field
