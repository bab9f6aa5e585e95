"""What a caller asks a swarm to do: plain frozen dataclasses, built by the service from the proto."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from lattice.server.chat import ChatRequest
from lattice.server.swarm.limits import RequestedLimits


@dataclass(frozen=True)
class Agent:
    name: str = ""
    """Unset means `agent-1`, `agent-2`, … by position."""
    model: str = ""
    """A model id or capability expression, resolved like any chat's."""
    system_prompt: str = ""
    temperature: float | None = None
    """None means the request's temperature."""
    seed: int | None = None
    """None means the request's seed plus the agent's position (so identical agents differ, reproducibly)."""


class Strategy(enum.Enum):
    BEST_OF_N = "best-of-n"
    FIRST_SUCCESS = "first-success"
    LONGEST = "longest"
    FANOUT = "fanout"


class Conclusion(enum.Enum):
    JUDGE = "judge"
    SYNTHESIS = "synthesis"


@dataclass(frozen=True)
class FanoutSpec:
    base: ChatRequest
    """The caller's messages, sampling, `max_tokens` (per agent), priority, caller and deadline;
    each agent's chat is this request with the agent's model, system prompt and sampling."""
    agents: tuple[Agent, ...]
    limits: RequestedLimits = field(default_factory=RequestedLimits)


@dataclass(frozen=True)
class VoteSpec(FanoutSpec):
    strategy: Strategy = Strategy.BEST_OF_N
    judge: str = ""
    """The judge's model expression; empty means the default model."""
    criteria: str = ""
    judge_max_tokens: int | None = None


@dataclass(frozen=True)
class Step:
    name: str
    prompt: str
    """A template over `{{input}}`, `{{previous}}` and earlier steps' `{{name}}`."""
    model: str = ""
    system_prompt: str = ""


@dataclass(frozen=True)
class PipelineSpec:
    base: ChatRequest
    """Sampling, `max_tokens`, priority, caller and deadline; its messages are unused."""
    input: str
    steps: tuple[Step, ...]
    limits: RequestedLimits = field(default_factory=RequestedLimits)


@dataclass(frozen=True)
class DebateSpec(FanoutSpec):
    rounds: int = 2
    conclusion: Conclusion = Conclusion.JUDGE
    judge: str = ""
    """The judge's or synthesis's model expression; empty means the default model."""
    criteria: str = ""
    judge_max_tokens: int | None = None
