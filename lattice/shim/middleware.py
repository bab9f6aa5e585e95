"""The shim's ASGI middleware: what every REST response gets, whichever route (or none) answered it.

- `RequestContext`: a request id (the caller's `x-request-id`, or a new one)
  bound to the logs, forwarded to the server (lattice.shim.upstream) and
  returned as the `x-request-id` header; one log line and the HTTP metrics
  when the response ends; and the OpenAI envelope with status 500 for an
  exception that escapes a route, so that it too gets the headers below.
- `SecurityHeaders`: nosniff, no referrer, no framing, a Content-Security-Policy
  that allows nothing (JSON needs nothing), and no caching of API answers.
- `BodyTimeout`: a client that sends its body too slowly gets 408 and frees
  its connection, instead of holding it open for as long as it likes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import structlog
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lattice.observability import logs, metrics
from lattice.shim import errors
from lattice.wire.names import REQUEST_ID_KEY

log = structlog.get_logger("lattice.http")

CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
"""For JSON and SSE, which load nothing. A page the shim serves one day sets its own."""
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    # Answers are per caller and may hold their prompts: no shared or browser cache may keep them.
    "cache-control": "no-store",
}
UNMATCHED_ROUTE = "unmatched"
"""The metrics label for a path no route serves: the path itself came from the caller."""
QUIET_ROUTES = frozenset({"/healthz", "/metrics"})
"""Probed and scraped every few seconds: logged at debug, or they would drown the rest."""


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = logs.request_id_or_new(Headers(scope=scope).get(REQUEST_ID_KEY))
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_KEY.encode(), request_id.encode())]
            await send(message)

        began = time.perf_counter()
        with logs.bound_request_id(request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                log.exception("unexpected error in the REST shim")
                if started:
                    raise  # the status is gone; the connection closes mid-answer
                body = errors.envelope("internal error in the REST shim", type_="server_error", code="internal")
                await JSONResponse(body, 500)(scope, receive, send_with_id)
            finally:
                seconds = time.perf_counter() - began
                route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
                metrics.http_finished(route, scope["method"], status, seconds)
                log.log(
                    logging.DEBUG if route in QUIET_ROUTES else logging.INFO,
                    "http",
                    method=scope["method"],
                    route=route,
                    status=status,
                    duration_ms=round(seconds * 1000, 1),
                )


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _secured(message.get("headers", ()))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _secured(headers: Any) -> list[tuple[bytes, bytes]]:
    kept = [(k, v) for k, v in headers if k.lower().decode("latin-1") not in SECURITY_HEADERS]
    if not any(k.lower() == b"content-security-policy" for k, _ in kept):
        kept.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
    return kept + [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]


class BodyTooSlow(HTTPException):
    def __init__(self, seconds: float) -> None:
        # An HTTPException, so FastAPI's body parsing lets it through to the envelope handler.
        super().__init__(408, f"the request body did not arrive within {seconds:g} seconds")


class BodyTimeout:
    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.seconds
        body_done = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:  # later receives wait for the client to disconnect, as long as the answer takes
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTooSlow(self.seconds) from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, timed_receive, send)
