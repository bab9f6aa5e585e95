"""ChatService: Chat (unary) and StreamChat (server-streaming)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import grpc

from lattice.server.chat import Delta
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
            completion = await self._gateway.complete(convert.chat_request_from_proto(request))
            await context.send_initial_metadata(((MODEL_METADATA_KEY, completion.resolution.model),))
            return chat_pb2.ChatResponse(
                id=_completion_id(),
                model=completion.resolution.model,
                message=common_pb2.Message(
                    role=common_pb2.ROLE_ASSISTANT, content=[common_pb2.ContentPart(text=completion.text)]
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
            chat = self._gateway.open_chat(convert.chat_request_from_proto(request))
            model = chat.resolution.model
            await context.send_initial_metadata(((MODEL_METADATA_KEY, model),))
            completion_id, created = _completion_id(), convert.now_timestamp()
            first = True
            async with aclosing(chat.events) as events:
                async for event in events:
                    if isinstance(event, Delta):
                        role = common_pb2.ROLE_ASSISTANT if first else common_pb2.ROLE_UNSPECIFIED
                        first = False
                        delta = chat_pb2.ChatDelta(role=role, content=event.text)
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


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"
