"""Swarm over REST: POST /v1/swarm/{fanout,vote,pipeline,debate} (and /swarm/…, Local Lattice's paths)
with the contract's own JSON (as Envoy's transcoding takes it) or Local Lattice's shapes
(lattice.shim.swarm_shapes), and the chat completion a `swarm` object turns into a Vote.

Non-streaming answers collect the stream: `{"result", "verdict", "events"}`, the events without
the deltas (each `agentFinished` holds its whole text). `"stream": true` answers server-sent
events named after the event (`agent.delta`, `agent.finished`, `verdict`, `result`, …) with the
event's JSON as `data`. Translation only: the server orchestrates.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from google.protobuf.message import Message

from lattice.shim import (
    convert,
    errors,
    protocol,
    refusals,
    responses,
    swarm_convert,
    swarm_local_answers,
    swarm_shapes,
)
from lattice.shim.event_stream import DONE_EVENT, EventStream, data_event
from lattice.shim.upstream import Upstream, call_metadata
from lattice.v1 import swarm_pb2
from lattice.wire.names import MODEL_METADATA_KEY

_STREAMING: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The collected events and the result; with `stream: true`, server-sent events.",
        "content": {"text/event-stream": {"schema": responses.SWARM_EVENT_SCHEMA}},
    }
}
_METHODS = {
    "fanout": swarm_pb2.FanoutRequest,
    "vote": swarm_pb2.VoteRequest,
    "pipeline": swarm_pb2.PipelineRequest,
    "debate": swarm_pb2.DebateRequest,
}


_LOCAL_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Local Lattice's answer (a `swarm.fanout`, or a `chat.completion` with a `swarm` object); "
        "with `stream: true`, server-sent events.",
        "content": {"text/event-stream": {"schema": responses.SWARM_EVENT_SCHEMA}},
    }
}


def _router(prefix: str, *, local_answers: bool) -> APIRouter:
    """The four swarm routes under `prefix`: `/v1/swarm` (Lattice's) or `/swarm` (Local Lattice's paths,
    answered in Local Lattice's shapes: `local_answers`); both take either request shape
    (lattice.shim.swarm_shapes)."""
    router = APIRouter(prefix=prefix, tags=["swarm"])
    for path, request_type in _METHODS.items():
        method = path.capitalize()
        router.add_api_route(
            f"/{path}",
            _endpoint(request_type, method, local_answers),
            methods=["POST"],
            response_model=None,
            responses=_LOCAL_ANSWERS if local_answers else _STREAMING,
            name=f"{prefix.strip('/').replace('/', '_')}_{path}",
            summary=f"SwarmService.{method}",
            description=f"A {request_type.__name__}'s JSON (or Local Lattice's shape: OpenAI-style `messages`, "
            "`models`), plus `stream`.",
        )
    return router


def _endpoint(
    request_type: type[Message], method: str, local_answers: bool
) -> Callable[..., Awaitable[JSONResponse | EventStream]]:
    async def endpoint(body: dict[str, Any], request: Request) -> JSONResponse | EventStream:
        return await _swarm(request, body, request_type(), method, local_answers=local_answers)

    return endpoint


router = _router("/v1/swarm", local_answers=False)
local_router = _router("/swarm", local_answers=True)


async def _swarm(
    request: Request, body: dict[str, Any], message: Message, method: str, *, local_answers: bool = False
) -> JSONResponse | EventStream:
    body = dict(body)
    stream = body.pop("stream", False)
    if not isinstance(stream, bool):
        raise refusals.InvalidRequest("stream must be true or false", param="stream", code="invalid_type")
    body = swarm_shapes.to_proto_json(body, method)
    try:
        json_format.ParseDict(body, message)
    except json_format.ParseError as error:
        raise refusals.InvalidRequest(f"the body does not match {message.DESCRIPTOR.name}: {error}") from error
    call = getattr(_upstream(request).swarm, method)(message, metadata=call_metadata(request))
    first = await _first(call)
    if not stream:
        try:
            events = [m async for m in _rest(call, first)]
        finally:
            call.cancel()
        if local_answers:
            answer, headers = swarm_local_answers.answer(message, events)
            return JSONResponse(answer, headers=headers)
        return JSONResponse(_collected(events))
    return EventStream(_sse(call, first), call)


async def swarm_chat(body: protocol.ChatCompletionRequest, request: Request) -> JSONResponse | EventStream:
    """A chat completion answered by a Vote: the winner's answer, every agent's usage summed."""
    try:
        vote_request = swarm_convert.vote_request_from_chat(body)
    except swarm_convert.Untranslatable as error:
        raise refusals.InvalidRequest(error.message, param=error.param, code="invalid_value") from error
    call = _upstream(request).swarm.Vote(vote_request, metadata=call_metadata(request))
    first = await _first(call)
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if not body.stream:
        try:
            outcome = _Outcome()
            async for event in _rest(call, first):
                outcome.add(event)
        finally:
            call.cancel()
        result = outcome.result
        completion = swarm_convert.swarm_completion_to_json(
            result, outcome.verdict, completion_id=completion_id, created=created
        )
        return JSONResponse(completion, headers={MODEL_METADATA_KEY: completion["model"]})
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return EventStream(_winner_sse(call, first, include_usage, completion_id=completion_id, created=created), call)


class _Outcome:
    """What a Vote stream comes to: each agent's deltas, the verdict, the result."""

    def __init__(self) -> None:
        self.deltas: dict[str, list[str]] = {}
        self.verdict: swarm_pb2.JudgeVerdict | None = None
        self._result: swarm_pb2.SwarmResult | None = None

    def add(self, event: swarm_pb2.VoteResponse) -> None:
        kind = event.WhichOneof("event")
        if kind == "agent_delta":
            self.deltas.setdefault(event.agent_delta.agent, []).append(event.agent_delta.text)
        elif kind == "verdict":
            self.verdict = event.verdict
        elif kind == "result":
            self._result = event.result

    @property
    def result(self) -> swarm_pb2.SwarmResult:
        assert self._result is not None, "a successful Vote stream ends with its result"
        return self._result


async def _winner_sse(
    call: Any, first: Any, include_usage: bool, *, completion_id: str, created: int
) -> AsyncIterator[str]:
    """OpenAI chunks of the winner's answer. The winner is known only when the vote ends, so until
    then the stream carries SSE comments (`: agent-1 finished`), which clients skip, as progress."""
    try:
        outcome = _Outcome()
        async for event in _rest(call, first):
            outcome.add(event)
            kind = event.WhichOneof("event")
            if kind != "agent_delta":
                yield f": {_progress(event, kind)}\n\n"
        result = outcome.result
        chunks = swarm_convert.winner_stream(
            result, outcome.deltas.get(result.winner, []), completion_id=completion_id, created=created
        )
        for chunk in chunks:
            yield data_event(convert.chunk_to_json(chunk))
        if include_usage:
            yield data_event(convert.usage_chunk_to_json(chunks[-1]))
        yield DONE_EVENT
    except grpc.aio.AioRpcError as error:
        yield data_event(errors.from_grpc(error).body)


async def _sse(call: Any, first: Any) -> AsyncIterator[str]:
    try:
        async for message in _rest(call, first):
            kind = message.WhichOneof("event")
            yield f"event: {kind.replace('_', '.')}\n" + data_event(_json(getattr(message, kind)))
    except grpc.aio.AioRpcError as error:
        # Headers are gone already: report in-band.
        yield "event: error\n" + data_event(errors.from_grpc(error).body)


async def _first(call: Any) -> Any:
    """The first event, awaited before answering, so that a refused swarm gets its real HTTP status."""
    try:
        return await call.read()
    except BaseException:
        call.cancel()
        raise


async def _rest(call: Any, first: Any) -> AsyncIterator[Any]:
    message = first
    while message is not grpc.aio.EOF:
        yield message
        message = await call.read()


def _collected(events: list[Any]) -> dict[str, Any]:
    collected: dict[str, Any] = {"events": [_json(e) for e in events if e.WhichOneof("event") != "agent_delta"]}
    for event in events:
        kind = event.WhichOneof("event")
        if kind in ("verdict", "result"):
            collected[kind] = _json(getattr(event, kind))
    return collected


def _progress(event: swarm_pb2.VoteResponse, kind: str | None) -> str:
    if kind == "agent_started":
        return f"{event.agent_started.agent} started on {event.agent_started.model}"
    if kind == "agent_finished":
        failed = event.agent_finished.error.message if event.agent_finished.HasField("error") else ""
        return f"{event.agent_finished.agent} {'failed: ' + failed if failed else 'finished'}"
    return f"{kind}"


def _upstream(request: Request) -> Upstream:
    upstream: Upstream = request.app.state.upstream
    return upstream


def _json(message: Message) -> dict[str, Any]:
    return dict(json_format.MessageToDict(message))
