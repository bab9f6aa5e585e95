"""Swarm orchestration: several agents on one task (fanout, vote, pipeline, debate). Pure domain:
agents run through an injected runner, in the gateway an ordinary admitted chat each."""

from lattice.server.swarm.agents import AgentEvent, AgentRunner, Opened
from lattice.server.swarm.events import (
    AgentDelta,
    AgentFailure,
    AgentFinished,
    AgentStarted,
    RoundStarted,
    Score,
    SwarmEvent,
    SwarmResult,
    Verdict,
    VerdictMethod,
)
from lattice.server.swarm.limits import RequestedLimits, SwarmLimits
from lattice.server.swarm.orchestration import Swarm
from lattice.server.swarm.spec import Agent, Conclusion, DebateSpec, FanoutSpec, PipelineSpec, Step, Strategy, VoteSpec

__all__ = [
    "Agent",
    "AgentDelta",
    "AgentEvent",
    "AgentFailure",
    "AgentFinished",
    "AgentRunner",
    "AgentStarted",
    "Conclusion",
    "DebateSpec",
    "FanoutSpec",
    "Opened",
    "PipelineSpec",
    "RequestedLimits",
    "RoundStarted",
    "Score",
    "Step",
    "Strategy",
    "Swarm",
    "SwarmEvent",
    "SwarmLimits",
    "SwarmResult",
    "Verdict",
    "VerdictMethod",
    "VoteSpec",
]
