"""EmbeddingService: Embed, proto ⇄ the gateway's embedding requests."""

from __future__ import annotations

from typing import Any

import grpc

from lattice.errors import InvalidArgument
from lattice.server.embeddings import EmbedInput, EmbedRequest
from lattice.server.gateway import Gateway
from lattice.server.services.chat import CallInfo
from lattice.server.services.status import grpc_errors
from lattice.v1 import common_pb2, embeddings_pb2, embeddings_pb2_grpc
from lattice.wire import convert
from lattice.wire.names import MODEL_METADATA_KEY

Context = grpc.aio.ServicerContext[embeddings_pb2.EmbedRequest, Any]


class EmbeddingServicer(embeddings_pb2_grpc.EmbeddingServiceServicer):
    def __init__(self, gateway: Gateway, *, proxy_secret: str | None = None) -> None:
        """`proxy_secret`: what the gateway's own shim sends to have its `x-forwarded-for` trusted."""
        self._gateway = gateway
        self._proxy_secret = proxy_secret

    async def Embed(self, request: embeddings_pb2.EmbedRequest, context: Context) -> embeddings_pb2.EmbedResponse:
        async with grpc_errors(context):
            call = CallInfo.of(context, self._proxy_secret)
            domain = EmbedRequest(
                model=request.model,
                inputs=tuple(_input(item, i) for i, item in enumerate(request.inputs)),
                dimensions=request.dimensions if request.HasField("dimensions") else None,
                user=request.user,
                priority=request.priority or convert.priority_from_metadata(call.metadata),
                caller=call.caller,
                principal=call.principal,
                deadline=call.deadline,
            )
            resolution, embeddings = await self._gateway.embed(domain)
            await context.send_initial_metadata(((MODEL_METADATA_KEY, resolution.model),))
            return embeddings_pb2.EmbedResponse(
                model=resolution.model,
                embeddings=[
                    embeddings_pb2.Embedding(index=i, values=vector) for i, vector in enumerate(embeddings.vectors)
                ],
                usage=common_pb2.Usage(prompt_tokens=embeddings.prompt_tokens, total_tokens=embeddings.prompt_tokens),
                resolution=convert.resolution_to_proto(resolution),
            )
        raise AssertionError("grpc_errors aborts")


def _input(item: embeddings_pb2.EmbedInput, index: int) -> EmbedInput:
    kind = item.WhichOneof("input")
    if kind == "text":
        return item.text
    if kind == "tokens":
        return tuple(item.tokens.ids)
    raise InvalidArgument(f"inputs[{index}] needs text or tokens", field=f"inputs[{index}]")
