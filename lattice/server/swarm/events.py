"""What a swarm reports as it runs: plain frozen dataclasses, mapped to proto events by the service."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from lattice.errors import LatticeError
from lattice.server.chat import Finish, Usage
from lattice.server.resolver import Resolution


@dataclass(frozen=True)
class AgentStarted:
    """An agent's chat was admitted and its model answers (after any fallback)."""

    agent: str
    model: str
    round: int = 0
    prompt: str = ""
    """The message the swarm wrote for this agent, when it wrote one (pipeline step, debate round, judge)."""
    resolution: Resolution | None = None


@dataclass(frozen=True)
class AgentDelta:
    agent: str
    text: str
    round: int = 0


@dataclass(frozen=True)
class AgentFailure:
    """Why an agent failed, in a failed call's terms: a gRPC code name, a stable reason, a message."""

    code: str
    reason: str
    message: str
    retry_after_seconds: float | None = None

    @classmethod
    def from_error(cls, error: LatticeError) -> AgentFailure:
        return cls(error.code, error.reason, error.message, error.retry_after_seconds)


@dataclass(frozen=True)
class AgentFinished:
    """An agent is done: its whole answer and how it ended, or its failure."""

    agent: str
    model: str
    text: str
    round: int = 0
    finish: Finish | None = None
    failure: AgentFailure | None = None

    @property
    def succeeded(self) -> bool:
        return self.failure is None and self.finish is not None

    @property
    def usage(self) -> Usage:
        return self.finish.usage if self.finish is not None else Usage()


@dataclass(frozen=True)
class RoundStarted:
    round: int
    rounds: int


class VerdictMethod(enum.Enum):
    JUDGE = "judge"
    FIRST_SUCCESS = "first_success"
    LONGEST = "longest"
    """The `longest` strategy, and the fallback when a judge or synthesis cannot be used."""
    SOLE_CANDIDATE = "sole_candidate"


@dataclass(frozen=True)
class Score:
    agent: str
    label: str
    score: float


@dataclass(frozen=True)
class Verdict:
    winner: str
    label: str
    method: VerdictMethod
    scores: tuple[Score, ...] = ()
    reasoning: str = ""
    fallback_reason: str = ""
    """Why the judge's answer was not used, when it was not."""


@dataclass(frozen=True)
class SwarmResult:
    """The end of a successful swarm."""

    text: str
    winner: str
    answers: tuple[AgentFinished, ...]
    usage: Usage


SwarmEvent = AgentStarted | AgentDelta | AgentFinished | RoundStarted | Verdict | SwarmResult
