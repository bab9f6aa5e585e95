"""Server-sent events fed by a gRPC stream, stopped when the HTTP client leaves.

Starlette's `StreamingResponse` watches for the client leaving with an anyio task group: two tasks and
their cancel scopes for every answer, about a tenth of the shim's CPU per streamed chat. Here the
events are sent from the request's own task and one plain task waits for `http.disconnect`; when it
comes, the gRPC call is cancelled, which stops generation on the server and ends the events.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import grpc
from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from lattice.shim.fast_json import compact


class EventStream(Response):
    media_type = "text/event-stream"

    def __init__(self, events: AsyncIterator[str], call: grpc.aio.Call, headers: Mapping[str, str] | None = None):
        """`events` are whole SSE events (`data: …\\n\\n`), read from `call`; the response owns the call and
        cancels it when the client leaves (and when the events end, which is then a no-op)."""
        self._events = events
        self._call = call
        self.status_code = 200
        self.background: BackgroundTask | None = None
        self.init_headers({"cache-control": "no-cache", **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher = asyncio.ensure_future(self._watch(receive))  # done (not cancelled) only when the client left
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            async for event in self._events:
                await send({"type": "http.response.body", "body": event.encode(), "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not watcher.done() or (task is not None and task.cancelling()):
                raise
            # The client left and its call was cancelled for it: no one is there to read the rest.
        finally:
            watcher.cancel()
            self._call.cancel()
        if self.background is not None:  # as Starlette's responses do
            await self.background()

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self._call.cancel()


DONE_EVENT = "data: [DONE]\n\n"
"""The end of an OpenAI-style stream."""


async def first_answer(stream: Any) -> Any:
    """The stream's first message past queue updates (which no OpenAI shape has a place for), read before
    answering so that a refused request gets its real HTTP status, not a 200 stream; the call is cancelled
    when that read fails."""
    try:
        first = await stream.read()
        while first is not grpc.aio.EOF and first.HasField("queued"):
            first = await stream.read()
    except BaseException:
        stream.cancel()
        raise
    return first


def data_event(payload: dict[str, Any]) -> str:
    """One SSE event carrying `payload` as compact JSON."""
    return f"data: {compact(payload)}\n\n"
