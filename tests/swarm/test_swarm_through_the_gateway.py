"""Swarm agents admitted by a real Gateway with an in-process backend: the losers' slots freed at once,
queueing like any chat, an unknown model refused up front."""

from __future__ import annotations

from contextlib import aclosing

import pytest

from lattice.config import Escalation, ModelProfile
from lattice.errors import ModelNotFound
from lattice.server.admission import Admission, AdmissionLimits
from lattice.server.backends.base import GenerationLimits
from lattice.server.chat import ChatRequest, Delta, Finish, FinishReason, Usage
from lattice.server.gateway import Gateway
from lattice.server.registry import ModelRegistry, RegisteredModel
from lattice.server.resolver import Resolver
from lattice.server.swarm import Agent, FanoutSpec, Strategy, Swarm, SwarmResult, Verdict, VoteSpec
from lattice.server.swarm.gateway_agents import GatewayAgents
from tests.fake_backend import HOLD, FakeBackend, Step
from tests.swarm.swarm_fakes import LIMITS, base, collect, of_type, user

# --- through a real Gateway: agents are admitted chats ---


def held(model: ModelProfile, request: ChatRequest, limits: GenerationLimits) -> tuple[Step, ...]:
    """`quick` answers at once; the others hold their generation until cancelled."""
    return (
        Delta(f"{model.id} here"),
        *(() if model.id == "quick" else (HOLD,)),
        Finish(FinishReason.STOP, Usage(3, 2)),
    )


def held_gateway(admission: Admission) -> tuple[Gateway, FakeBackend]:
    backend = FakeBackend(held)
    registry = ModelRegistry([RegisteredModel(ModelProfile(id=i), backend) for i in ("quick", "slow", "slower")])
    resolver = Resolver(registry, default_model="quick", roles={}, escalation=Escalation())
    return Gateway(resolver, GenerationLimits(max_tokens_ceiling=100), admission=admission), backend


async def test_through_the_gateway_first_success_frees_the_losers_slots_at_once() -> None:
    admission = Admission(AdmissionLimits(8, 8, queue_size=8, queue_timeout_seconds=30))
    gateway, backend = held_gateway(admission)
    agents = GatewayAgents(gateway, max_tokens_ceiling=100)
    swarm = Swarm(agents.run, LIMITS, max_tokens_ceiling=100, judge_max_tokens=10, check=agents.check)
    spec = VoteSpec(
        base(), (Agent(model="slow"), Agent(model="slower"), Agent(model="quick")), strategy=Strategy.FIRST_SUCCESS
    )

    events = swarm.vote(spec)
    async with aclosing(events):
        async for event in events:
            if isinstance(event, Verdict):
                # When the verdict comes, the losers have let go of their models and slots.
                assert backend.cancelled == 2 and backend.running == 0
                assert [admission.running(m) for m in ("slow", "slower", "quick")] == [0, 0, 0]
                assert event.winner == "agent-3"
            if isinstance(event, SwarmResult):
                assert {a.model for a in event.answers} == {"slow", "slower", "quick"}
                assert event.answers[2].usage == Usage(3, 2)


async def test_through_the_gateway_agents_queue_like_any_chat() -> None:
    """One slot and no queue for `slow`: the second agent on it is refused by admission, alone."""
    admission = Admission(AdmissionLimits(1, 8, queue_size=0, queue_timeout_seconds=30), model_caps={"quick": 8})
    gateway, _ = held_gateway(admission)
    agents = GatewayAgents(gateway, max_tokens_ceiling=100)
    swarm = Swarm(agents.run, LIMITS, max_tokens_ceiling=100, judge_max_tokens=10, check=agents.check)
    holder = await gateway.open_chat(ChatRequest("slow", (user("hold"),)))
    try:
        events = await collect(swarm.fanout(FanoutSpec(base(), (Agent(model="slow"), Agent(model="quick")))))
    finally:
        await holder.aclose()
    refused, served = of_type(events, SwarmResult)[0].answers
    assert refused.failure is not None and refused.failure.reason == "QUEUE_FULL"
    assert served.succeeded and served.model == "quick"


async def test_through_the_gateway_an_unknown_model_is_refused_up_front_naming_the_agent() -> None:
    gateway, backend = held_gateway(Admission(AdmissionLimits(8, 8, queue_size=8, queue_timeout_seconds=30)))
    agents = GatewayAgents(gateway, max_tokens_ceiling=100)
    swarm = Swarm(agents.run, LIMITS, max_tokens_ceiling=100, judge_max_tokens=10, check=agents.check)
    with pytest.raises(ModelNotFound) as caught:
        await collect(swarm.fanout(FanoutSpec(base(), (Agent(model="quick"), Agent(model="nope")))))
    assert caught.value.metadata["field"] == "agents[1].model"
    assert caught.value.message.startswith("agents[1].model: no model matches 'nope'")
    assert backend.running == 0
