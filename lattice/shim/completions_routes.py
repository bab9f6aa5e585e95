"""`POST /v1/completions` (OpenAI's legacy text completions), passed to CompletionService.

The prompt goes to the model raw, with no chat template. Served as OpenAI serves it: `text_completion`
objects, SSE chunks of the same shape ending with `[DONE]`, `max_tokens` 16 when unset (OpenAI's
default for this API). `echo` is honoured (the prompt leads the text). What the contract cannot carry
is refused with a 400 naming it, never ignored: more than one prompt, `n`/`best_of` above 1 (as chat
refuses `n`), `logprobs` (this API's per-token shape is not served) and `suffix`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from pydantic import BaseModel, Field

from lattice.shim import errors, refusals
from lattice.shim.convert import FINISH_REASONS, usage_to_json
from lattice.shim.event_stream import DONE_EVENT, EventStream, data_event, first_answer
from lattice.shim.protocol import Int32, Int64, StreamOptions, _Lenient, options_without_stream
from lattice.shim.routes import model_header
from lattice.shim.upstream import Upstream, call_metadata
from lattice.v1 import completions_pb2

router = APIRouter()

OPENAI_DEFAULT_MAX_TOKENS = 16
"""What OpenAI generates for a completion that sets no `max_tokens`."""


class CompletionRequest(_Lenient):
    model: str = ""
    prompt: str | list[str] = Field(description="The text to continue (a list holding one text is served).")
    max_tokens: Int32 | None = Field(default=None, description="Unset: 16, as OpenAI.")
    temperature: float | None = None
    top_p: float | None = None
    stop: str | list[str] | None = None
    seed: Int64 | None = None
    n: int = Field(default=1, ge=1, le=1, description="Only one choice per request is supported.")
    best_of: int | None = Field(default=None, ge=1, le=1, description="Only one candidate per request.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    echo: bool = False
    logprobs: Int32 | None = Field(default=None, description="Not served: leave unset (refused otherwise).")
    suffix: str | None = Field(default=None, description="Not served: leave unset (refused otherwise).")
    user: str = ""

    def refusal(self) -> tuple[str, str] | None:
        """(param, message) for what the body asks that is not served; else None."""
        if isinstance(self.prompt, list) and len(self.prompt) != 1:
            return "prompt", "Only one prompt per request is supported: send a string (or a list of one)."
        if self.logprobs is not None:
            return "logprobs", (
                "'logprobs' is not supported on /v1/completions here: leave it unset, or ask "
                "/v1/chat/completions with 'logprobs': true"
            )
        if self.suffix is not None:
            return "suffix", "'suffix' (text insertion) is not supported: leave it unset."
        return options_without_stream(self.stream, self.stream_options)

    @property
    def text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


class CompletionChoice(BaseModel):
    text: str
    index: int
    logprobs: None = None
    finish_reason: Literal["stop", "length", "content_filter"] | None


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage | None = None
    lattice: dict[str, Any] | None = Field(
        default=None, description="Lattice's extension: `resolution`, the model chosen and why (not on chunks)."
    )


@router.post(
    "/v1/completions",
    response_model=None,
    responses={
        200: {
            "model": Completion,
            "description": "The completion; with `stream: true`, server-sent events of `text_completion` "
            "chunks, then `data: [DONE]`.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def create_completion(body: CompletionRequest, request: Request) -> JSONResponse | EventStream:
    if (refused := body.refusal()) is not None:
        param, message = refused
        raise refusals.InvalidRequest(message, param=param, code="invalid_value")
    upstream: Upstream = request.app.state.upstream
    proto, metadata = complete_request_to_proto(body), call_metadata(request)
    echoed = body.text if body.echo else ""
    if not body.stream:
        call = upstream.completions.Complete(proto, metadata=metadata)
        response = await call
        return JSONResponse(completion_to_json(response, echoed), headers=await model_header(call))
    stream = upstream.completions.StreamComplete(proto, metadata=metadata)
    first = await first_answer(stream)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return EventStream(_sse(stream, first, echoed, include_usage), stream, await model_header(stream))


def complete_request_to_proto(body: CompletionRequest) -> completions_pb2.CompleteRequest:
    request = completions_pb2.CompleteRequest(
        model=body.model,
        prompt=body.text,
        max_tokens=OPENAI_DEFAULT_MAX_TOKENS if body.max_tokens is None else body.max_tokens,
        user=body.user,
    )
    if body.temperature is not None:
        request.temperature = body.temperature
    if body.top_p is not None:
        request.top_p = body.top_p
    if body.seed is not None:
        request.seed = body.seed
    if body.stop is not None:
        request.stop.extend([body.stop] if isinstance(body.stop, str) else body.stop)
    return request


def completion_to_json(response: completions_pb2.CompleteResponse, echoed: str = "") -> dict[str, Any]:
    choice = {
        "text": echoed + response.text,
        "index": 0,
        "logprobs": None,
        "finish_reason": FINISH_REASONS.get(response.finish_reason),
    }
    return {
        "id": response.id,
        "object": "text_completion",
        "created": response.create_time.seconds,
        "model": response.model,
        "choices": [choice],
        "usage": usage_to_json(response.usage),
        "lattice": {"resolution": json_format.MessageToDict(response.resolution)},
    }


def _chunk(message: completions_pb2.StreamCompleteResponse, text: str, finish_reason: str | None) -> dict[str, Any]:
    return {
        "id": message.id,
        "object": "text_completion",
        "created": message.create_time.seconds,
        "model": message.model,
        "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}],
    }


async def _sse(stream: Any, first: Any, echoed: str, include_usage: bool) -> AsyncIterator[str]:
    try:
        message: completions_pb2.StreamCompleteResponse | Any = first
        while message is not grpc.aio.EOF:
            if message.HasField("done"):
                finish = FINISH_REASONS.get(message.done.finish_reason)
                events = data_event(_chunk(message, echoed, finish))
                if include_usage:
                    events += data_event(
                        {**_chunk(message, "", None), "choices": [], "usage": usage_to_json(message.done.usage)}
                    )
                yield events
            elif message.HasField("text"):
                yield data_event(_chunk(message, echoed + message.text, None))
            echoed = ""  # the prompt leads the first chunk only
            message = await stream.read()
        yield DONE_EVENT
    except grpc.aio.AioRpcError as error:
        # Headers are gone already: report in-band, as OpenAI does mid-stream.
        yield data_event(errors.from_grpc(error).body)
