"""`POST /v1/responses`, OpenAI's Responses API: another shape of a chat, answered by the contract's
ChatService (Chat, or StreamChat with `stream: true`), as chat completions are.

Stateless: no response is kept (every answer says `store: false`), so `previous_response_id` is
refused; the caller sends the whole conversation as `input` items, which is what the OpenAI Agents
SDK does when it is told not to store.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from lattice.shim import errors, refusals, responses, routes
from lattice.shim.event_stream import EventStream
from lattice.shim.fast_json import FastJSONResponse
from lattice.shim.responses_convert import chat_request, response_from_chat
from lattice.shim.responses_protocol import ResponsesRequest
from lattice.shim.responses_stream import ResponseEvents, sse
from lattice.shim.upstream import Upstream, call_metadata
from lattice.v1 import chat_pb2

router = APIRouter()


class ResponseUsage(BaseModel):
    input_tokens: int
    input_tokens_details: dict[str, int]
    output_tokens: int
    output_tokens_details: dict[str, int]
    total_tokens: int


class ResponseObject(BaseModel):
    """OpenAI's `response` object (the fields the shim fills; the request's options are echoed)."""

    id: str = Field(description="`resp_…`; not stored: it cannot be fetched or continued.")
    object: Literal["response"] = "response"
    created_at: int
    status: str = Field(description="`completed`, `incomplete` (see `incomplete_details`), `in_progress` or `failed`.")
    error: dict[str, Any] | None
    incomplete_details: dict[str, Any] | None = Field(
        description='`{"reason": "max_output_tokens"}` when the answer reached its token limit.'
    )
    model: str
    output: list[dict[str, Any]] = Field(
        description="Items: a `message` (`output_text` content) and/or `function_call`s "
        "(`call_id`, `name`, `arguments`)."
    )
    store: bool = False
    usage: ResponseUsage | None


EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.output_item.done",
    "response.completed",
    "response.incomplete",
    "response.failed",
    "error",
]
EVENT_SCHEMA = responses.event_schema(
    {
        "type": "object",
        "required": ["type", "sequence_number"],
        "properties": {"type": {"enum": EVENTS}, "sequence_number": {"type": "integer"}},
        "description": "A Responses stream event (OpenAI's shape), named by its `type`.",
    },
    EVENTS,
)
STREAM_DESCRIPTION = (
    "With `stream: true`: server-sent events named after their `type`, each numbered by `sequence_number`: "
    "`response.created`, `response.in_progress`, per output item `response.output_item.added` … "
    "`response.output_item.done`, then `response.completed` or `response.incomplete`; a failure after the start "
    "is an `error` event and `response.failed`."
)


@router.post(
    "/v1/responses",
    response_model=None,
    responses={
        200: {
            "model": ResponseObject,
            "description": "The response; with `stream: true`, server-sent events.",
            "content": {"text/event-stream": {"schema": {**EVENT_SCHEMA, "description": STREAM_DESCRIPTION}}},
        }
    },
)
async def create_response(body: ResponsesRequest, request: Request) -> JSONResponse | EventStream:
    if (refused := body.refusal()) is not None:
        param, message, code = refused
        raise refusals.InvalidRequest(message, param=param, code=code)
    proto = chat_request(body)
    if not body.stream:
        upstream: Upstream = request.app.state.upstream
        call = upstream.chat.Chat(proto, metadata=call_metadata(request))
        answer = await call
        return FastJSONResponse(response_from_chat(body, answer), headers=await routes.model_header(call))
    stream, first = await routes.open_chat_stream(request, proto)
    return EventStream(_events(body, stream, first), stream, await routes.model_header(stream))


async def _events(body: ResponsesRequest, stream: Any, first: Any) -> AsyncIterator[str]:
    if first is grpc.aio.EOF:  # the server always ends with `done`; say so rather than hang up mute
        first = chat_pb2.StreamChatResponse()
        first.create_time.seconds = int(time.time())
    events = ResponseEvents(body, first)
    for event in events.start():
        yield sse(event)
    message = first
    try:
        while message is not grpc.aio.EOF:
            if message.HasField("delta"):
                batch = events.delta(message.delta)
            elif message.HasField("done"):
                batch = events.done(message.done)
            else:
                batch = []
            if batch:
                yield "".join(sse(event) for event in batch)
            message = await stream.read()
    except grpc.aio.AioRpcError as error:
        # Headers are gone already: report in-band, as OpenAI does.
        yield "".join(sse(event) for event in events.failed(errors.from_grpc(error)))
        return
    if not events.finished:
        ended = errors.HttpError(502, errors.envelope("the answer ended early", type_="server_error", code="internal"))
        yield "".join(sse(event) for event in events.failed(ended))
