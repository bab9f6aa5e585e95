"""The shim's view of the server: stubs on one channel, and the caller's credentials passed along."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from starlette.requests import Request

from lattice.v1 import chat_pb2_grpc, resolve_pb2_grpc

# Credentials for the server to check, and Lattice's per-request hints.
CLIENT_ADDRESS_KEY = "x-forwarded-for"
FORWARDED_HEADERS = (
    "authorization",
    "x-api-key",
    "x-lattice-latency-tier",
    "x-lattice-escalate",
    "x-lattice-priority",
)


class Upstream:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.chat = chat_pb2_grpc.ChatServiceStub(channel)
        self.resolve = resolve_pb2_grpc.ResolveServiceStub(channel)
        self._health = health_pb2_grpc.HealthStub(channel)

    async def serving(self) -> bool:
        """The server's overall health; raises grpc.aio.AioRpcError when it cannot be reached."""
        reply = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=5)  # type: ignore[attr-defined]  # typeshed's HealthStub lists no methods
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def call_metadata(request: Request) -> tuple[tuple[str, str], ...]:
    """The caller's credentials and hints, passed to the server as metadata (the shim checks nothing),
    and the client's address, so the server can be fair between the shim's callers."""
    forwarded = tuple((h, request.headers[h]) for h in FORWARDED_HEADERS if h in request.headers)
    client = ((CLIENT_ADDRESS_KEY, request.client.host),) if request.client else ()
    return forwarded + client
