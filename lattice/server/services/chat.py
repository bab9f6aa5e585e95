"""ChatService: Chat (unary) and StreamChat (server-streaming)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import grpc

from lattice.server import chat as domain
from lattice.server.credentials import caller_identity
from lattice.server.gateway import Gateway
from lattice.server.services import convert
from lattice.server.services.status import grpc_errors
from lattice.v1 import chat_pb2, chat_pb2_grpc, common_pb2
from lattice.wire import MODEL_METADATA_KEY

Context = grpc.aio.ServicerContext[chat_pb2.ChatRequest, Any]


class ChatServicer(chat_pb2_grpc.ChatServiceServicer):
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def Chat(self, request: chat_pb2.ChatRequest, context: Context) -> chat_pb2.ChatResponse:
        async with grpc_errors(context):
            completion = await self._gateway.complete(_domain_request(request, context))
            await context.send_initial_metadata(((MODEL_METADATA_KEY, completion.resolution.model),))
            return chat_pb2.ChatResponse(
                id=_completion_id(),
                model=completion.resolution.model,
                message=common_pb2.Message(
                    role=common_pb2.ROLE_ASSISTANT,
                    content=[common_pb2.ContentPart(text=completion.text)] if completion.text else [],
                    tool_calls=convert.tool_calls_to_proto(completion.tool_calls),
                ),
                finish_reason=convert.finish_reason_to_proto(completion.finish.reason),
                usage=convert.usage_to_proto(completion.finish.usage),
                resolution=convert.resolution_to_proto(completion.resolution),
                create_time=convert.now_timestamp(),
            )
        raise AssertionError("grpc_errors aborts")

    async def StreamChat(
        self, request: chat_pb2.ChatRequest, context: Context
    ) -> AsyncIterator[chat_pb2.StreamChatResponse]:
        async with grpc_errors(context):
            chat = await self._gateway.open_chat(_domain_request(request, context))
            async with aclosing(chat):
                model = chat.resolution.model
                await context.send_initial_metadata(((MODEL_METADATA_KEY, model),))
                completion_id, created = _completion_id(), convert.now_timestamp()
                first = True
                async for event in chat:
                    if isinstance(event, domain.Delta):
                        role = common_pb2.ROLE_ASSISTANT if first else common_pb2.ROLE_UNSPECIFIED
                        first = False
                        delta = chat_pb2.ChatDelta(
                            role=role,
                            content=event.text,
                            tool_calls=convert.tool_call_deltas_to_proto(event.tool_calls),
                        )
                        yield chat_pb2.StreamChatResponse(
                            id=completion_id, model=model, create_time=created, delta=delta
                        )
                    else:
                        done = chat_pb2.ChatDone(
                            finish_reason=convert.finish_reason_to_proto(event.reason),
                            usage=convert.usage_to_proto(event.usage),
                            resolution=convert.resolution_to_proto(chat.resolution),
                        )
                        yield chat_pb2.StreamChatResponse(id=completion_id, model=model, create_time=created, done=done)


def _domain_request(request: chat_pb2.ChatRequest, context: Context) -> domain.ChatRequest:
    metadata = convert.text_metadata(context.invocation_metadata())
    remaining = context.time_remaining()
    return convert.chat_request_from_proto(
        request,
        metadata,
        caller=caller_identity(metadata, context.peer()),
        deadline=None if remaining is None else time.monotonic() + remaining,
    )


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"
