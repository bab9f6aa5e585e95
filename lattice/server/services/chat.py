"""ChatService: Chat (unary) and StreamChat (server-streaming)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import grpc

from lattice.errors import LatticeError
from lattice.server import chat as domain
from lattice.server.credentials import caller_identity
from lattice.server.gateway import ChatStream, Gateway
from lattice.server.principals import Principal
from lattice.server.services.auth import current_principal
from lattice.server.services.status import grpc_errors
from lattice.timestamps import now_timestamp
from lattice.v1 import chat_pb2, chat_pb2_grpc, common_pb2
from lattice.wire import convert
from lattice.wire.names import MODEL_METADATA_KEY

Context = grpc.aio.ServicerContext[chat_pb2.ChatRequest, Any]


class ChatServicer(chat_pb2_grpc.ChatServiceServicer):
    def __init__(self, gateway: Gateway, *, proxy_secret: str | None = None) -> None:
        """`proxy_secret`: what the gateway's own shim sends to have its `x-forwarded-for` trusted."""
        self._gateway = gateway
        self._proxy_secret = proxy_secret

    def _domain_request(self, request: chat_pb2.ChatRequest, context: Context) -> domain.ChatRequest:
        call = CallInfo.of(context, self._proxy_secret)
        return convert.chat_request_from_proto(
            request, call.metadata, caller=call.caller, principal=call.principal, deadline=call.deadline
        )

    async def Chat(self, request: chat_pb2.ChatRequest, context: Context) -> chat_pb2.ChatResponse:
        async with grpc_errors(context):
            completion = await self._gateway.complete(self._domain_request(request, context))
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
                create_time=now_timestamp(),
                logprobs=convert.logprobs_to_proto(completion.logprobs),
                stop_sequence=completion.finish.stop_sequence,
            )
        raise AssertionError("grpc_errors aborts")

    async def StreamChat(
        self, request: chat_pb2.ChatRequest, context: Context
    ) -> AsyncIterator[chat_pb2.StreamChatResponse]:
        async with grpc_errors(context):
            chat: ChatStream | None = None
            async for update in open_reporting_queue(self._gateway, self._domain_request(request, context), context):
                if isinstance(update, domain.Queued):
                    yield chat_pb2.StreamChatResponse(model=update.model, queued=convert.queue_status_to_proto(update))
                else:
                    chat = update
            assert chat is not None
            async with aclosing(chat):
                model = chat.resolution.model
                completion_id, created = _completion_id(), now_timestamp()
                first = True
                async for event in chat:
                    if isinstance(event, domain.Delta):
                        role = common_pb2.ROLE_ASSISTANT if first else common_pb2.ROLE_UNSPECIFIED
                        first = False
                        delta = convert.delta_to_proto(event, role)
                        yield chat_pb2.StreamChatResponse(
                            id=completion_id, model=model, create_time=created, delta=delta
                        )
                    else:
                        done = chat_pb2.ChatDone(
                            finish_reason=convert.finish_reason_to_proto(event.reason),
                            usage=convert.usage_to_proto(event.usage),
                            resolution=convert.resolution_to_proto(chat.resolution),
                            stop_sequence=event.stop_sequence,
                        )
                        yield chat_pb2.StreamChatResponse(id=completion_id, model=model, create_time=created, done=done)


async def open_reporting_queue(
    gateway: Gateway, request: domain.ChatRequest, context: grpc.aio.ServicerContext[Any, Any]
) -> AsyncIterator[domain.Queued | ChatStream]:
    """Opens the chat; while it waits in a queue, yields where it stands. The last item is the stream.
    The call's headers name the model before the first item goes out (the one it waits for, else the
    one that answers), so the caller sees it with the first message.

    One task and one queue: the opening task puts itself on the queue when it is done, so the common case
    (a slot at once) costs one wait, with no task per update."""
    updates: asyncio.Queue[domain.Queued | asyncio.Future[ChatStream]] = asyncio.Queue()
    opening = asyncio.ensure_future(gateway.open_chat(request, updates.put_nowait))
    opening.add_done_callback(updates.put_nowait)
    try:
        while not isinstance(update := await updates.get(), asyncio.Future):
            await _send_model_once(context, update.model)
            yield update
        stream = opening.result()
        try:
            await _send_model_once(context, stream.resolution.model)
        except BaseException:
            await stream.aclose()  # not the caller's yet: its slot is freed here
            raise
        yield stream
    finally:
        if not opening.done():
            opening.cancel()  # the caller left while queued: the request leaves the queue
            with contextlib.suppress(asyncio.CancelledError, LatticeError):
                await opening


@dataclass(frozen=True)
class CallInfo:
    """What every inference call's domain request takes from the call: its metadata, who calls (for fairness),
    the principal (whose account it is) and when the caller stops waiting."""

    metadata: dict[str, str]
    caller: str
    principal: Principal | None
    deadline: float | None

    @classmethod
    def of(cls, context: grpc.aio.ServicerContext[Any, Any], proxy_secret: str | None) -> CallInfo:
        """`proxy_secret`: what the gateway's own shim sends to have its `x-forwarded-for` trusted."""
        metadata = convert.text_metadata(context.invocation_metadata())
        remaining = context.time_remaining()
        principal = current_principal()
        return cls(
            metadata,
            caller_identity(metadata, context.peer(), principal, proxy_secret=proxy_secret),
            principal,
            None if remaining is None else time.monotonic() + remaining,
        )


async def _send_model_once(context: grpc.aio.ServicerContext[Any, Any], model: str) -> None:
    with contextlib.suppress(grpc.aio.UsageError):  # already sent with an earlier queue update
        await context.send_initial_metadata(((MODEL_METADATA_KEY, model),))


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"
