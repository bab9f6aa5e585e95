"""CompletionService: Complete (unary) and StreamComplete (server-streaming), text completions.

A text completion is a chat with a raw `prompt` in the domain (`ChatRequest.prompt`): it goes through the
same gateway (limits, resolution to a model with the `completions` capability, admission, fallback,
metering) and only the backend treats it differently (no chat template).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import grpc

from lattice.server import chat as domain
from lattice.server.gateway import ChatStream, Gateway
from lattice.server.services.chat import CallInfo, open_reporting_queue
from lattice.server.services.status import grpc_errors
from lattice.timestamps import now_timestamp
from lattice.v1 import completions_pb2, completions_pb2_grpc
from lattice.wire import convert
from lattice.wire.names import MODEL_METADATA_KEY

Context = grpc.aio.ServicerContext[completions_pb2.CompleteRequest, Any]


class CompletionServicer(completions_pb2_grpc.CompletionServiceServicer):
    def __init__(self, gateway: Gateway, *, proxy_secret: str | None = None) -> None:
        """`proxy_secret`: what the gateway's own shim sends to have its `x-forwarded-for` trusted."""
        self._gateway = gateway
        self._proxy_secret = proxy_secret

    def _domain_request(self, request: completions_pb2.CompleteRequest, context: Context) -> domain.ChatRequest:
        call = CallInfo.of(context, self._proxy_secret)
        return convert.completion_request_from_proto(
            request, call.metadata, caller=call.caller, principal=call.principal, deadline=call.deadline
        )

    async def Complete(
        self, request: completions_pb2.CompleteRequest, context: Context
    ) -> completions_pb2.CompleteResponse:
        async with grpc_errors(context):
            completion = await self._gateway.complete(self._domain_request(request, context))
            await context.send_initial_metadata(((MODEL_METADATA_KEY, completion.resolution.model),))
            return completions_pb2.CompleteResponse(
                id=_completion_id(),
                model=completion.resolution.model,
                text=completion.text,
                finish_reason=convert.finish_reason_to_proto(completion.finish.reason),
                usage=convert.usage_to_proto(completion.finish.usage),
                resolution=convert.resolution_to_proto(completion.resolution),
                create_time=now_timestamp(),
            )
        raise AssertionError("grpc_errors aborts")

    async def StreamComplete(
        self, request: completions_pb2.CompleteRequest, context: Context
    ) -> AsyncIterator[completions_pb2.StreamCompleteResponse]:
        async with grpc_errors(context):
            stream: ChatStream | None = None
            async for update in open_reporting_queue(self._gateway, self._domain_request(request, context), context):
                if isinstance(update, domain.Queued):
                    queued = convert.queue_status_to_proto(update)
                    yield completions_pb2.StreamCompleteResponse(model=update.model, queued=queued)
                else:
                    stream = update
            assert stream is not None
            async with aclosing(stream):
                model = stream.resolution.model
                completion_id, created = _completion_id(), now_timestamp()
                async for event in stream:
                    if isinstance(event, domain.Delta):
                        if event.text:
                            yield completions_pb2.StreamCompleteResponse(
                                id=completion_id, model=model, create_time=created, text=event.text
                            )
                    else:
                        done = completions_pb2.CompletionDone(
                            finish_reason=convert.finish_reason_to_proto(event.reason),
                            usage=convert.usage_to_proto(event.usage),
                            resolution=convert.resolution_to_proto(stream.resolution),
                        )
                        yield completions_pb2.StreamCompleteResponse(
                            id=completion_id, model=model, create_time=created, done=done
                        )


def _completion_id() -> str:
    return f"cmpl-{uuid.uuid4().hex}"
