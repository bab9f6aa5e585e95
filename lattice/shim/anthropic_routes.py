"""Anthropic's Messages API, inbound: `POST /v1/messages` as the contract's Chat / StreamChat.

The Messages API is another shape of the same operation as chat completions, so it grows no RPC of its
own: the request is translated to a `ChatRequest` (lattice.shim.anthropic_convert) and any Lattice model
expression answers. Credentials come as `x-api-key` (what older Anthropic SDKs send) or
`Authorization: Bearer` (what current ones send), both passed to the server as for every route;
`anthropic-version` is accepted and not needed: the shape answered is the current one. Errors are
Anthropic's (lattice.shim.anthropic_errors).

`POST /v1/messages/count_tokens` is answered 404 `not_found_error`: the contract has no way to count a
prompt's tokens without running it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from lattice.shim import anthropic_convert, anthropic_errors, refusals
from lattice.shim.anthropic_protocol import MessagesRequest
from lattice.shim.event_stream import EventStream
from lattice.shim.fast_json import FastJSONResponse
from lattice.shim.routes import model_header, open_chat_stream
from lattice.shim.upstream import Upstream, call_metadata

router = APIRouter(tags=["anthropic"], route_class=anthropic_errors.AnthropicRoute)

_MESSAGE_SCHEMA: dict[str, Any] = {
    "title": "AnthropicMessage",
    "type": "object",
    "required": ["id", "type", "role", "model", "content", "stop_reason", "usage"],
    "properties": {
        "id": {"type": "string"},
        "type": {"const": "message"},
        "role": {"const": "assistant"},
        "model": {"type": "string", "description": "The model that answered."},
        "content": {
            "type": "array",
            "items": {"type": "object", "description": "A `text` block or a `tool_use` block."},
        },
        "stop_reason": {"enum": ["end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal", None]},
        "stop_sequence": {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "description": "With `stop_reason: stop_sequence`: the request's stop sequence that ended the answer.",
        },
        "usage": {
            "type": "object",
            "properties": {"input_tokens": {"type": "integer"}, "output_tokens": {"type": "integer"}},
        },
    },
}
_EVENTS_DESCRIPTION = (
    "With `stream: true`: Anthropic's server-sent events, `message_start`, then per content block "
    "`content_block_start`, `content_block_delta` (`text_delta` or `input_json_delta`) and "
    "`content_block_stop` (a `ping` after the first block's start), then `message_delta` (stop reason, "
    "usage) and `message_stop`; a failure after the first event is an `error` event."
)


@router.post(
    "/v1/messages",
    response_model=None,
    summary="Anthropic's Messages API (ChatService.Chat / StreamChat)",
    responses={
        200: {
            "description": "The assistant's message.",
            "content": {
                "application/json": {"schema": _MESSAGE_SCHEMA},
                "text/event-stream": {"schema": {"type": "string", "description": _EVENTS_DESCRIPTION}},
            },
        },
        **anthropic_errors.ERROR_RESPONSES,
    },
)
async def messages(body: MessagesRequest, request: Request) -> JSONResponse | EventStream:
    if (unsupported := body.unsupported()) is not None:
        raise refusals.InvalidRequest(
            f"{unsupported} is not supported by this gateway", param=unsupported, code="invalid_value"
        )
    if body.misplaced_tool_choice():
        raise refusals.InvalidRequest("tool_choice may only be given with tools", param="tool_choice")
    if (param := anthropic_convert.misplaced_block(body)) is not None:
        raise refusals.InvalidRequest(
            f"{param}: a turn needs blocks; tool_use blocks belong in assistant turns, tool_result blocks in user "
            "turns",
            param=param,
        )
    proto = anthropic_convert.request_to_proto(body)
    if not body.stream:
        upstream: Upstream = request.app.state.upstream
        call = upstream.chat.Chat(proto, metadata=call_metadata(request))
        response = await call
        return FastJSONResponse(anthropic_convert.response_to_json(response), headers=await model_header(call))
    stream, first = await open_chat_stream(request, proto)
    return EventStream(_events(stream, first), stream, await model_header(stream))


async def _events(stream: Any, first: Any) -> AsyncIterator[str]:
    translation = anthropic_convert.StreamTranslation()
    try:
        if first is grpc.aio.EOF:
            return
        yield translation.start(first)
        message = first
        while message is not grpc.aio.EOF:
            if events := translation.read(message):
                yield events
            message = await stream.read()
    except grpc.aio.AioRpcError as error:
        # The 200 and the first events are gone already: report in-band, as Anthropic does.
        yield anthropic_errors.stream_error(error)


@router.post(
    "/v1/messages/count_tokens",
    status_code=404,
    response_model=None,
    summary="Anthropic's token counting: not supported (always 404 `not_found_error`)",
    responses=anthropic_errors.ERROR_RESPONSES,
)
async def count_tokens() -> JSONResponse:
    message = "count_tokens is not supported by this gateway: the contract has no way to count tokens"
    return JSONResponse(anthropic_errors.envelope("not_found_error", message), 404)
