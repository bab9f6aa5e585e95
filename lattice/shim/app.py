"""The shim's ASGI app: one gRPC channel to the server, OpenAI routes, OpenAI errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lattice import __version__
from lattice.shim import errors
from lattice.shim.routes import router
from lattice.shim.upstream import Upstream


def create_app(grpc_target: str, *, max_body_bytes: int = 4 * 1024 * 1024) -> FastAPI:
    """The shim, talking to the gRPC server at `grpc_target` (`host:port`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with grpc.aio.insecure_channel(
            grpc_target, options=[("grpc.max_send_message_length", max_body_bytes)]
        ) as channel:
            app.state.upstream = Upstream(channel)
            yield

    app = FastAPI(title="Lattice OpenAI-compatible shim", version=__version__, lifespan=lifespan)
    app.include_router(router)
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(grpc.aio.AioRpcError, _grpc_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    return app


async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {}
    location = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(location) or None
    if first.get("type") == "json_invalid":
        message, param = (
            f"the body is not valid JSON: {first.get('ctx', {}).get('error', 'parse error')}",
            None,
        )
    else:
        message = f"{param or 'body'}: {first.get('msg', 'invalid value')}"
    return JSONResponse(
        errors.envelope(message, type_="invalid_request_error", code="invalid_argument", param=param), 400
    )


async def _grpc_error(_request: Request, exc: grpc.aio.AioRpcError) -> JSONResponse:
    error = errors.from_grpc(exc)
    return JSONResponse(error.body, error.status, headers=error.headers)


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    # Starlette logs the traceback; the caller gets the envelope, never the trace.
    body = errors.envelope("internal error in the REST shim", type_="server_error", code="internal")
    return JSONResponse(body, 500)


class BodySizeLimit:
    """Answers 413 for bodies over `max_bytes`, by Content-Length or as they stream in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _BodyTooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _BodyTooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = errors.envelope(
            f"the request body is larger than {self.max_bytes} bytes",
            type_="invalid_request_error",
            code="request_too_large",
        )
        await JSONResponse(body, 413)(scope, receive, send)


class _BodyTooLarge(Exception):
    pass
