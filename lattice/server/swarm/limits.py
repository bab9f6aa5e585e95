"""A swarm's bounds: configured ones, tightened per request, checked before anything runs."""

from __future__ import annotations

from dataclasses import dataclass, fields

from lattice.errors import InvalidArgument, SwarmLimitExceeded


@dataclass(frozen=True)
class SwarmLimits:
    max_agents: int
    max_rounds: int
    max_total_tokens: int
    agent_timeout_seconds: float


@dataclass(frozen=True)
class RequestedLimits:
    """A request's own limits; None means the configured one."""

    max_agents: int | None = None
    max_rounds: int | None = None
    max_total_tokens: int | None = None
    agent_timeout_seconds: float | None = None


# The proto field each limit is set by, for errors that name it.
_FIELDS = {
    "max_agents": "limits.max_agents",
    "max_rounds": "limits.max_rounds",
    "max_total_tokens": "limits.max_total_tokens",
    "agent_timeout_seconds": "limits.agent_timeout",
}


def tightened(configured: SwarmLimits, requested: RequestedLimits) -> SwarmLimits:
    """The limits one swarm runs under. A request may lower a limit, never raise it: the configured
    ones are the operator's, and a request asking for more is refused rather than quietly clamped."""
    values: dict[str, float] = {}
    for limit in fields(SwarmLimits):
        ceiling = getattr(configured, limit.name)
        asked = getattr(requested, limit.name)
        if asked is None:
            values[limit.name] = ceiling
            continue
        field = _FIELDS[limit.name]
        if asked <= 0:
            raise InvalidArgument(f"{field} must be positive, got {asked:g}", field=field)
        if asked > ceiling:
            raise SwarmLimitExceeded(
                f"{field} ({asked:g}) may only tighten the configured {limit.name} ({ceiling:g})",
                field=field,
                limit=limit.name,
            )
        values[limit.name] = asked
    return SwarmLimits(
        max_agents=int(values["max_agents"]),
        max_rounds=int(values["max_rounds"]),
        max_total_tokens=int(values["max_total_tokens"]),
        agent_timeout_seconds=values["agent_timeout_seconds"],
    )


def check_agents(limits: SwarmLimits, count: int, *, field: str, what: str = "agents") -> None:
    if count > limits.max_agents:
        raise SwarmLimitExceeded(
            f"{count} {what} exceed the limit max_agents = {limits.max_agents}", field=field, limit="max_agents"
        )


def check_rounds(limits: SwarmLimits, rounds: int) -> None:
    if rounds > limits.max_rounds:
        raise SwarmLimitExceeded(
            f"{rounds} rounds exceed the limit max_rounds = {limits.max_rounds}", field="rounds", limit="max_rounds"
        )


def check_tokens(limits: SwarmLimits, estimate: int) -> None:
    if estimate > limits.max_total_tokens:
        raise SwarmLimitExceeded(
            f"the swarm could use ~{estimate} tokens (every chat's prompt plus its max_tokens), over the limit "
            f"max_total_tokens = {limits.max_total_tokens}: lower max_tokens, or use fewer agents or rounds",
            field="max_tokens",
            limit="max_total_tokens",
        )
