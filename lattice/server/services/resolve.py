"""ResolveService: ListModels and Resolve."""

from __future__ import annotations

from typing import Any

import grpc

from lattice.errors import InvalidArgument
from lattice.server.gateway import Gateway
from lattice.server.services.auth import current_principal
from lattice.server.services.status import grpc_errors
from lattice.v1 import resolve_pb2, resolve_pb2_grpc
from lattice.wire import convert

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

Context = grpc.aio.ServicerContext[Any, Any]


class ResolveServicer(resolve_pb2_grpc.ResolveServiceServicer):
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def ListModels(
        self, request: resolve_pb2.ListModelsRequest, context: Context
    ) -> resolve_pb2.ListModelsResponse:
        async with grpc_errors(context):
            start = _page_start(request.page_token)
            size = _page_size(request.page_size)
            models = self._gateway.list_models()
            page = models[start : start + size]
            next_token = str(start + size) if start + size < len(models) else ""
            return resolve_pb2.ListModelsResponse(
                models=[
                    convert.model_to_proto(m, default_max_tokens=self._gateway.generation_cap(m.profile)) for m in page
                ],
                next_page_token=next_token,
            )
        raise AssertionError("grpc_errors aborts")

    async def Resolve(self, request: resolve_pb2.ResolveRequest, context: Context) -> resolve_pb2.ResolveResponse:
        async with grpc_errors(context):
            metadata = convert.text_metadata(context.invocation_metadata())
            chat = convert.chat_request_from_proto(request.request, metadata) if request.HasField("request") else None
            resolution = await self._gateway.resolve_for(request.model, chat, current_principal())
            return resolve_pb2.ResolveResponse(resolution=convert.resolution_to_proto(resolution))
        raise AssertionError("grpc_errors aborts")


def _page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument("page_size must not be negative", field="page_size")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _page_start(token: str) -> int:
    if not token:
        return 0
    if not token.isdigit():
        raise InvalidArgument("page_token is not one this server issued", field="page_token")
    return int(token)
