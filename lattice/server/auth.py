"""The static API key, checked once for every gRPC call in a server interceptor.

The key may come as `x-api-key: K` or `authorization: Bearer K`; comparison is
constant-time. The standard health service stays open so load balancers and
orchestrators can probe a locked-down gateway.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc

from lattice.errors import Unauthenticated
from lattice.server.credentials import api_key_from_metadata, check_api_key
from lattice.server.services.status import abort_with_error

OPEN_METHOD_PREFIXES = ("/grpc.health.v1.Health/",)

# Generic in the stubs only, so the alias is a string.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


class ApiKeyInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(OPEN_METHOD_PREFIXES):
            return handler
        try:
            check_api_key(self._api_key, api_key_from_metadata(handler_call_details.invocation_metadata or ()))
        except Unauthenticated as error:
            return _refusing(handler, error)
        return handler


def _refusing(handler: Handler, error: Unauthenticated) -> Handler:
    """A handler of the same shape as `handler` that only aborts with `error`."""

    async def refuse(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await abort_with_error(context, error)

    async def refuse_stream(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await abort_with_error(context, error)
        yield  # pragma: no cover - makes this an async generator, as streaming handlers are

    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(refuse, **kwargs)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(refuse_stream, **kwargs)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(refuse, **kwargs)
    return grpc.stream_stream_rpc_method_handler(refuse_stream, **kwargs)
