"""SwarmService: Fanout, Vote, Pipeline, Debate. Converts and streams; the orchestration is lattice.server.swarm."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

import grpc

from lattice.server.credentials import caller_identity
from lattice.server.gateway import Gateway
from lattice.server.services import swarm_convert
from lattice.server.services.auth import current_principal
from lattice.server.services.status import grpc_errors
from lattice.server.services.swarm_convert import Caller, SwarmResponse
from lattice.server.swarm import Swarm, SwarmEvent
from lattice.server.swarm.gateway_agents import SwarmConfig, gateway_swarm
from lattice.v1 import swarm_pb2, swarm_pb2_grpc
from lattice.wire import convert

Context = grpc.aio.ServicerContext[Any, Any]


class SwarmServicer(swarm_pb2_grpc.SwarmServiceServicer):
    def __init__(self, gateway: Gateway, config: SwarmConfig, *, proxy_secret: str | None = None) -> None:
        """`proxy_secret`: what the gateway's own shim sends to have its `x-forwarded-for` trusted."""
        self._gateway = gateway
        self._config = config
        self._proxy_secret = proxy_secret

    def _swarm(self) -> Swarm:
        """A swarm whose agents are chats on the gateway, each carrying the caller's principal (`Caller`)."""
        return gateway_swarm(self._gateway, self._config)

    async def Fanout(
        self, request: swarm_pb2.FanoutRequest, context: Context
    ) -> AsyncIterator[swarm_pb2.FanoutResponse]:
        run = self._swarm().fanout
        async for message in _stream(
            context, self._proxy_secret, swarm_pb2.FanoutResponse, lambda c: run(swarm_convert.fanout_spec(request, c))
        ):
            yield message

    async def Vote(self, request: swarm_pb2.VoteRequest, context: Context) -> AsyncIterator[swarm_pb2.VoteResponse]:
        run = self._swarm().vote
        async for message in _stream(
            context, self._proxy_secret, swarm_pb2.VoteResponse, lambda c: run(swarm_convert.vote_spec(request, c))
        ):
            yield message

    async def Pipeline(
        self, request: swarm_pb2.PipelineRequest, context: Context
    ) -> AsyncIterator[swarm_pb2.PipelineResponse]:
        run = self._swarm().pipeline
        async for message in _stream(
            context,
            self._proxy_secret,
            swarm_pb2.PipelineResponse,
            lambda c: run(swarm_convert.pipeline_spec(request, c)),
        ):
            yield message

    async def Debate(
        self, request: swarm_pb2.DebateRequest, context: Context
    ) -> AsyncIterator[swarm_pb2.DebateResponse]:
        run = self._swarm().debate
        async for message in _stream(
            context, self._proxy_secret, swarm_pb2.DebateResponse, lambda c: run(swarm_convert.debate_spec(request, c))
        ):
            yield message


async def _stream(
    context: Context,
    proxy_secret: str | None,
    response: type[SwarmResponse],
    events: Callable[[Caller], AsyncGenerator[SwarmEvent, None]],
) -> AsyncIterator[SwarmResponse]:
    """The swarm's events as stream messages. Refusals (limits, names, unknown models) come before
    the first message; a client that leaves closes the swarm, which cancels every running agent."""
    async with grpc_errors(context):
        metadata = convert.text_metadata(context.invocation_metadata())
        remaining = context.time_remaining()
        principal = current_principal()
        caller = Caller(
            metadata,
            caller_identity(metadata, context.peer(), principal, proxy_secret=proxy_secret),
            principal,
            None if remaining is None else time.monotonic() + remaining,
        )
        async with aclosing(events(caller)) as stream:
            async for event in stream:
                yield swarm_convert.event_to_proto(event, response)
