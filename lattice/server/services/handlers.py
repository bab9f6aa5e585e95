"""Rebuilding a gRPC method handler around its behaviour: what the server interceptors (auth,
observability) do to every call, written once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import grpc

# Generic in the stubs only, so the alias is a string.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Behavior = Callable[..., Any]


def rebuilt(handler: Handler, wrap: Callable[[Behavior, bool], Behavior]) -> Handler:
    """A handler of the same kind and (de)serializers as `handler` whose behaviour is
    `wrap(behavior, response_streaming)`."""
    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(wrap(handler.unary_unary, False), **kwargs)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(wrap(handler.unary_stream, True), **kwargs)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(wrap(handler.stream_unary, False), **kwargs)
    assert handler.stream_stream is not None
    return grpc.stream_stream_rpc_method_handler(wrap(handler.stream_stream, True), **kwargs)
