"""Agents as ordinary chats of the gateway: the same validation, resolution, per-caller limits,
admission, queue and fallback as any chat. A swarm gets no private bypass."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing, suppress
from dataclasses import dataclass

from lattice.config import Settings
from lattice.errors import LatticeError, NoModelSatisfies
from lattice.server.chat import ChatRequest
from lattice.server.gateway import Gateway
from lattice.server.relay import PERSONAL_PREFIX
from lattice.server.swarm.agents import AgentEvent, Opened
from lattice.server.swarm.limits import SwarmLimits
from lattice.server.swarm.orchestration import Swarm
from lattice.server.validation import validate_chat_request


@dataclass(frozen=True)
class SwarmConfig:
    limits: SwarmLimits
    max_tokens_ceiling: int
    judge_max_tokens: int

    @classmethod
    def from_settings(cls, settings: Settings) -> SwarmConfig:
        limits = SwarmLimits(
            max_agents=settings.swarm_max_agents,
            max_rounds=settings.swarm_max_rounds,
            max_total_tokens=settings.swarm_max_total_tokens,
            agent_timeout_seconds=settings.swarm_agent_timeout_seconds,
        )
        return cls(limits, settings.max_tokens_ceiling, settings.swarm_judge_max_tokens)


def gateway_swarm(gateway: Gateway, config: SwarmConfig) -> Swarm:
    """A swarm whose agents are chats on `gateway`, as the principal their requests carry."""
    agents = GatewayAgents(gateway, max_tokens_ceiling=config.max_tokens_ceiling)
    return Swarm(
        agents.run,
        config.limits,
        max_tokens_ceiling=config.max_tokens_ceiling,
        judge_max_tokens=config.judge_max_tokens,
        check=agents.check,
        constrains=agents.constrains,
    )


class GatewayAgents:
    def __init__(self, gateway: Gateway, *, max_tokens_ceiling: int) -> None:
        self._gateway = gateway
        self._max_tokens_ceiling = max_tokens_ceiling

    def check(self, request: ChatRequest) -> None:
        """A malformed request, or an expression that names no model, would fail every time.
        Whether a matching model can serve *now* is left to the run, so that one agent whose
        model is down fails alone instead of refusing the whole swarm (personal runtimes, whose
        owner decides who may use them, are resolved only then too)."""
        validate_chat_request(request, max_tokens_ceiling=self._max_tokens_ceiling)
        if request.model.startswith(PERSONAL_PREFIX):
            return
        with suppress(NoModelSatisfies):
            self._gateway.resolve(request.model, request)

    def constrains(self, request: ChatRequest) -> bool:
        """Whether a model `request.model` names can serve `request` with its JSON `response_format`."""
        if request.model.startswith(PERSONAL_PREFIX):
            return False  # what a daemon's provider can do is not known here
        try:
            self._gateway.resolve(request.model, request)
        except LatticeError:
            return False
        return True

    async def run(self, request: ChatRequest) -> AsyncGenerator[AgentEvent, None]:
        chat = await self._gateway.open_chat(request)
        async with aclosing(chat):  # closing the generator (a cancelled agent) frees the slot at once
            yield Opened(chat.resolution.model, chat.resolution)
            async for event in chat:
                yield event
