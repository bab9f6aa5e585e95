"""The shim's ASGI middleware: what every REST response gets, whichever route (or none) answered it.

One pure-ASGI layer, `ShimRequest`, does it all (four layers did it before; each wrapped `send` and
`receive` again for every request, a noticeable share of the shim's CPU, bench/README.md "#19"):

- a request id (the caller's `x-request-id`, or a new one) bound to the logs, forwarded to the server
  (lattice.shim.upstream) and returned as the `x-request-id` header; one log line and the HTTP
  metrics when the response ends; and the OpenAI envelope with status 500 for an exception that
  escapes a route, so that it too gets the headers below;
- security headers: nosniff, no referrer, no framing, a Content-Security-Policy that allows nothing
  (JSON needs nothing), and no caching of API answers;
- a body timeout: a client that sends its body too slowly gets 408 and frees its connection, instead
  of holding it open for as long as it likes;
- a body size limit: 413 for bodies over the limit, by Content-Length or as they stream in.

CORS, when configured, stays Starlette's and sits just inside, where it was: the id, the headers and
the log cover its preflight answers, and the limits' refusals carry its headers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import structlog
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
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

# Encoded once: these run for every response.
_REQUEST_ID_HEADER = REQUEST_ID_KEY.encode()
_CSP = b"content-security-policy"
_SECURED = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
_REPLACED = frozenset(k for k, _ in _SECURED)


class BodyTooSlow(HTTPException):
    def __init__(self, seconds: float) -> None:
        # An HTTPException, so FastAPI's body parsing lets it through to the envelope handler.
        super().__init__(408, f"the request body did not arrive within {seconds:g} seconds")


class BodyTooLarge(HTTPException):
    # An HTTPException, so FastAPI's body parsing lets it through to the envelope handler as a 413.
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body is larger than {max_bytes} bytes")


class ShimRequest:
    """The layer around the app (module docstring). `cors`: CORSMiddleware's arguments, or None for none."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, body_timeout_seconds: float, cors: Mapping[str, Any] | None
    ) -> None:
        self.max_bytes = max_body_bytes
        self.seconds = body_timeout_seconds
        refuse = _too_large(max_body_bytes)
        self.app: ASGIApp = app if cors is None else CORSMiddleware(app, **cors)
        self.refuse_too_large: ASGIApp = refuse if cors is None else CORSMiddleware(refuse, **cors)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = declared = None
        for key, value in scope["headers"]:
            if key == _REQUEST_ID_HEADER:
                offered = value.decode("latin-1")
            elif key == b"content-length":
                declared = value
        request_id = logs.request_id_or_new(offered)
        id_header = (_REQUEST_ID_HEADER, request_id.encode())
        status = 500
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message["headers"] = _secured(message.get("headers", ()), id_header)
            await send(message)

        deadline = asyncio.get_running_loop().time() + self.seconds
        seen = 0
        body_done = False

        async def limited_receive() -> Message:
            nonlocal body_done, seen
            if body_done:  # later receives wait for the client to disconnect, as long as the answer takes
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTooSlow(self.seconds) from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)
            return message

        began = time.perf_counter()
        with logs.bound_request_id(request_id):
            try:
                if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
                    await self.refuse_too_large(scope, receive, send_with_headers)
                else:
                    try:
                        await self.app(scope, limited_receive, send_with_headers)
                    except BodyTooLarge:
                        if started:
                            raise
                        await self.refuse_too_large(scope, receive, send_with_headers)
            except Exception:
                log.exception("unexpected error in the REST shim")
                if started:
                    raise  # the status is gone; the connection closes mid-answer
                body = errors.envelope("internal error in the REST shim", type_="server_error", code="internal")
                await JSONResponse(body, 500)(scope, receive, send_with_headers)
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


def _secured(headers: Any, id_header: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    # A route's own values of the security headers give way to ours; its own CSP stays (a page sets one).
    kept = [(k, v) for k, v in headers if k.lower() not in _REPLACED]
    kept.append(id_header)
    if not any(k.lower() == _CSP for k, _ in kept):
        kept.append((_CSP, CONTENT_SECURITY_POLICY.encode()))
    kept += _SECURED
    return kept


def _too_large(max_bytes: int) -> ASGIApp:
    body = errors.envelope(
        f"the request body is larger than {max_bytes} bytes", type_="invalid_request_error", code="request_too_large"
    )

    async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
        await JSONResponse(body, 413)(scope, receive, send)

    return refuse
