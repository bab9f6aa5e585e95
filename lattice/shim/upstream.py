"""The shim's view of the server: stubs on one channel, and the caller's credentials passed along."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from starlette.exceptions import HTTPException
from starlette.requests import Request

from lattice.observability.logs import current_request_id
from lattice.v1 import (
    chat_pb2_grpc,
    operations_pb2_grpc,
    personal_runtime_pb2_grpc,
    resolve_pb2_grpc,
    swarm_pb2_grpc,
    usage_pb2_grpc,
)
from lattice.wire.names import (
    CREDENTIAL_KEYS,
    FORWARDED_FOR_METADATA_KEY,
    HINT_KEYS,
    PROXY_SECRET_METADATA_KEY,
    REQUEST_ID_KEY,
)

# Credentials for the server to check, and Lattice's per-request hints.
FORWARDED_HEADERS = CREDENTIAL_KEYS + HINT_KEYS


class Upstream:
    def __init__(self, channel: grpc.aio.Channel, proxy_secret: str | None = None) -> None:
        """`proxy_secret`: sent with each call so the server trusts the client address the shim reports."""
        self.proxy_secret = proxy_secret
        self.chat = chat_pb2_grpc.ChatServiceStub(channel)
        self.resolve = resolve_pb2_grpc.ResolveServiceStub(channel)
        self.personal_runtimes = personal_runtime_pb2_grpc.PersonalRuntimeServiceStub(channel)
        self.swarm = swarm_pb2_grpc.SwarmServiceStub(channel)
        self.usage = usage_pb2_grpc.UsageServiceStub(channel)
        self.operations = operations_pb2_grpc.OperationsServiceStub(channel)
        self._health = health_pb2_grpc.HealthStub(channel)

    async def serving(self) -> bool:
        """The server's overall health; raises grpc.aio.AioRpcError when it cannot be reached."""
        reply = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=5)  # type: ignore[attr-defined]  # typeshed's HealthStub lists no methods
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def call_metadata(request: Request) -> tuple[tuple[str, str], ...]:
    """The caller's credentials and hints, passed to the server as metadata (the shim checks nothing),
    the client's address, so the server can be fair between the shim's callers (with the secret that has
    the server trust it), and the request id."""
    forwarded = tuple((h, _forwardable(h, request.headers[h])) for h in FORWARDED_HEADERS if h in request.headers)
    secret = request.app.state.upstream.proxy_secret
    client: tuple[tuple[str, str], ...] = ()
    if request.client:
        client = ((FORWARDED_FOR_METADATA_KEY, request.client.host),)
        if secret:
            client += ((PROXY_SECRET_METADATA_KEY, secret),)
    request_id = current_request_id()
    return forwarded + client + (((REQUEST_ID_KEY, request_id),) if request_id else ())


class UnforwardableHeader(HTTPException):
    """A header value gRPC metadata cannot carry; an HTTPException so the envelope handler answers it."""

    def __init__(self, name: str) -> None:
        super().__init__(400, f"the {name} header may hold only printable ASCII characters")
        self.code = "invalid_header"
        self.param = name


def _forwardable(name: str, value: str) -> str:
    # HTTP allows tabs and bytes above 0x7f in a value; gRPC metadata does not, and would fail the call.
    if not all(" " <= c <= "~" for c in value):
        raise UnforwardableHeader(name)
    return value
