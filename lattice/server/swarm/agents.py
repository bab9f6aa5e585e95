"""How a swarm runs one agent: an injectable runner (the gateway's is in `gateway_agents`; tests
inject in-process fakes with controlled timing)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

from lattice.server.chat import ChatRequest, Delta, Finish
from lattice.server.resolver import Resolution


@dataclass(frozen=True)
class Opened:
    """The agent's chat started: the model that answers (after any fallback), and why it was chosen."""

    model: str
    resolution: Resolution | None = None


AgentEvent = Opened | Delta | Finish

AgentRunner = Callable[[ChatRequest], AsyncGenerator[AgentEvent, None]]
"""Runs one agent's chat: yields `Opened`, then `Delta`s, then one `Finish`; failures are
`LatticeError`s. Closing or cancelling it must stop the chat and free whatever it held."""

RequestCheck = Callable[[ChatRequest], None]
"""Refuses, before a swarm starts, a request that would fail however often it ran."""
