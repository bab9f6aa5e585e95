"""The OpenAI routes: translate, call the server, translate back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from lattice.shim import convert, errors, refusals, responses, swarm_convert, swarm_routes
from lattice.shim.event_stream import DONE_EVENT, EventStream, data_event, first_answer
from lattice.shim.fast_json import FastJSONResponse
from lattice.shim.protocol import ChatCompletionRequest
from lattice.shim.upstream import Upstream, call_metadata
from lattice.v1 import chat_pb2, resolve_pb2
from lattice.wire.names import MODEL_METADATA_KEY

router = APIRouter()


def _upstream(request: Request) -> Upstream:
    upstream: Upstream = request.app.state.upstream
    return upstream


@router.get(
    "/healthz",
    response_model=None,
    responses={
        200: {"model": responses.Health, "description": "The server is serving."},
        503: {"model": responses.Health, "description": "The server is starting, or cannot be reached."},
    },
)
async def healthz(request: Request) -> JSONResponse:
    try:
        serving = await _upstream(request).serving()
    except grpc.aio.AioRpcError as error:
        return JSONResponse({"status": "unavailable", "detail": error.code().name}, 503)
    return JSONResponse({"status": "ok" if serving else "starting"}, 200 if serving else 503)


@router.get("/v1/models", response_model=responses.ModelList)
async def list_models(request: Request) -> dict[str, Any]:
    stub, metadata = _upstream(request).resolve, call_metadata(request)
    models: list[dict[str, Any]] = []
    page_token = ""
    while True:
        page = await stub.ListModels(resolve_pb2.ListModelsRequest(page_token=page_token), metadata=metadata)
        models += [
            {
                "id": m.id,
                "object": "model",
                "created": 0,
                "owned_by": m.owned_by,
                "lattice": {"context_window": m.context_window, "default_max_tokens": m.default_max_tokens},
            }
            for m in page.models
        ]
        if not (page_token := page.next_page_token):
            return {"object": "list", "data": models}


@router.post(
    "/v1/chat/completions",
    response_model=None,
    responses={
        200: {
            "model": responses.ChatCompletion,
            "description": "The answer; with `stream: true`, server-sent events.",
            "content": {
                "text/event-stream": {
                    "schema": {**responses.CHAT_EVENT_SCHEMA, "description": responses.STREAM_DESCRIPTION}
                }
            },
        }
    },
)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> JSONResponse | EventStream:
    if (lonely := body.missing_partner()) is not None:
        param, message = lonely
        raise refusals.InvalidRequest(message, param=param, code="invalid_value")
    if swarm_convert.is_swarm_chat(body):  # a `swarm` object or a `swarm:` model: answered by a Vote
        return await swarm_routes.swarm_chat(body, request)
    proto = convert.chat_request_to_proto(body)
    stub, metadata = _upstream(request).chat, call_metadata(request)
    if not body.stream:
        call = stub.Chat(proto, metadata=metadata)
        response = await call
        return FastJSONResponse(convert.chat_response_to_json(response), headers=await model_header(call))
    stream, first = await open_chat_stream(request, proto)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return EventStream(_sse(stream, first, include_usage), stream, await model_header(stream))


async def open_chat_stream(request: Request, proto: chat_pb2.ChatRequest) -> tuple[Any, Any]:
    """A StreamChat call and its first answer (`grpc.aio.EOF` for none), queue updates skipped."""
    stream = _upstream(request).chat.StreamChat(proto, metadata=call_metadata(request))
    return stream, await first_answer(stream)


async def model_header(call: Any) -> dict[str, str]:
    """The `x-lattice-model` header: the model that answers, from the call's initial metadata."""
    for key, value in await call.initial_metadata() or ():
        if key == MODEL_METADATA_KEY:
            return {MODEL_METADATA_KEY: str(value)}
    return {}


async def _sse(stream: Any, first: Any, include_usage: bool) -> AsyncIterator[str]:
    # The finish chunk waits for the end of the call (it follows at once) to go out with `[DONE]`: one write.
    finish = ""
    try:
        message: chat_pb2.StreamChatResponse | Any = first
        while message is not grpc.aio.EOF:
            if message.HasField("done"):
                finish = data_event(convert.chunk_to_json(message))
                if include_usage:
                    finish += data_event(convert.usage_chunk_to_json(message))
            elif not message.HasField("queued"):
                yield data_event(convert.chunk_to_json(message))
            message = await stream.read()
        yield finish + DONE_EVENT
    except grpc.aio.AioRpcError as error:
        # Headers are gone already: report in-band, as OpenAI does mid-stream.
        yield finish + data_event(errors.from_grpc(error).body)
