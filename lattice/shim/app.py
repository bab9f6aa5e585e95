"""The shim's ASGI app: one gRPC channel to the server, OpenAI routes, OpenAI errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import grpc
import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from lattice import __version__
from lattice.observability import tracing
from lattice.observability.metrics import exposition
from lattice.shim import (
    anthropic_errors,
    anthropic_routes,
    completions_routes,
    dashboard_routes,
    embeddings_routes,
    errors,
    openapi,
    personal_runtime_routes,
    proto_json,
    refusals,
    responses_routes,
    swarm_routes,
    usage_routes,
)
from lattice.shim.middleware import ShimRequest
from lattice.shim.routes import router
from lattice.shim.upstream import Upstream
from lattice.wire.names import MODEL_METADATA_KEY, REQUEST_ID_KEY


def create_app(
    grpc_target: str,
    *,
    max_body_bytes: int = 4 * 1024 * 1024,
    body_timeout_seconds: float = 30.0,
    cors_origins: Sequence[str] = (),
    metrics: bool = True,
    proxy_secret: str | None = None,
    channel: grpc.aio.Channel | None = None,
    metrics_url: str | None = None,
) -> FastAPI:
    """The shim, talking to the gRPC server at `grpc_target` (`host:port`). Browsers may call it from
    `cors_origins` only; `metrics` serves the process's Prometheus metrics at `/metrics`. `proxy_secret`,
    the server's, has the server trust the client addresses the shim reports (else it sees one caller).
    `channel`, when given, is used instead of one to `grpc_target` (inside `lattice serve`: the in-process one).
    `metrics_url`: where `/metrics` comes from when it is not this process's (a shim worker's: the gateway's)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if channel is not None:
            app.state.upstream = Upstream(channel, proxy_secret)
            yield
            return
        async with grpc.aio.insecure_channel(
            grpc_target,
            options=[
                ("grpc.max_send_message_length", max_body_bytes),
                # The server bounds its own answers (2,048 vectors at most, …); gRPC's default 4 MiB would
                # refuse the largest ones here, as RESOURCE_EXHAUSTED, where the in-process channel passes them.
                ("grpc.max_receive_message_length", -1),
            ],
            interceptors=tracing.client_interceptors(),  # none unless tracing is configured
        ) as opened:
            app.state.upstream = Upstream(opened, proxy_secret)
            yield

    # No /docs or /redoc: their pages load scripts from a CDN, which the strict CSP (and no internet) forbid.
    app = FastAPI(
        title="Lattice OpenAI-compatible shim",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    # The chat routes first: FastAPI matches a request against the routes in order, and the later an
    # included router comes, the more it costs to reach (~40 µs for the last, bench/README.md "#19").
    app.include_router(router)
    app.include_router(anthropic_routes.router)
    app.include_router(responses_routes.router)
    app.include_router(embeddings_routes.router)
    app.include_router(completions_routes.router)
    app.include_router(swarm_routes.router)
    app.include_router(swarm_routes.local_router)
    app.include_router(personal_runtime_routes.router)
    app.include_router(usage_routes.router)
    app.include_router(dashboard_routes.router)
    app.add_exception_handler(proto_json.InvalidBody, proto_json.invalid_body)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, refusals.invalid_body)  # type: ignore[arg-type]
    app.add_exception_handler(refusals.InvalidRequest, refusals.invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(grpc.aio.AioRpcError, _grpc_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(UnicodeEncodeError, _not_unicode)  # type: ignore[arg-type]
    if metrics:
        # One endpoint whatever the process: FastAPI names an operation (its `operationId`) after the
        # function that serves it, so a worker's own function would have changed the document.
        app.state.metrics_url = metrics_url
        app.add_api_route(
            "/metrics",
            _metrics,
            methods=["GET"],
            response_class=PlainTextResponse,
            summary="Prometheus metrics of the gateway process (gRPC server and shim)",
            # Prometheus' text format, or OpenMetrics when the `Accept` header asks for it.
            responses={
                200: {
                    "content": {
                        "text/plain": {"schema": {"type": "string"}},
                        "application/openmetrics-text": {"schema": {"type": "string"}},
                    }
                }
            },
        )
    openapi.install(app)
    cors = (
        {
            "allow_origins": list(cors_origins),
            "allow_methods": ["GET", "POST", "DELETE"],
            "allow_headers": ["*"],
            "expose_headers": [REQUEST_ID_KEY, MODEL_METADATA_KEY, "retry-after"],
            "max_age": 600,
        }
        if cors_origins
        else None
    )
    # One layer for the request id, log, metrics, security headers and body limits (CORS inside it).
    app.add_middleware(ShimRequest, max_body_bytes=max_body_bytes, body_timeout_seconds=body_timeout_seconds, cors=cors)
    tracing.install_asgi(app)  # outermost: a request's span covers everything (when tracing is configured)
    return app


async def _grpc_error(_request: Request, exc: grpc.aio.AioRpcError) -> JSONResponse:
    error = errors.from_grpc(exc)
    return JSONResponse(error.body, error.status, headers=error.headers)


# Statuses Starlette and the middleware raise themselves → OpenAI's (type, code).
_HTTP_ERRORS = {
    400: ("invalid_request_error", "invalid_request"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    408: ("invalid_request_error", "request_timeout"),
    413: ("invalid_request_error", "request_too_large"),
}


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if anthropic_errors.is_anthropic_path(request.url.path):
        return anthropic_errors.http_error(request, exc)
    type_, code = _HTTP_ERRORS.get(exc.status_code, ("invalid_request_error", "invalid_request"))
    message = str(exc.detail)
    if exc.status_code in (404, 405) and message in ("Not Found", "Method Not Allowed"):
        message = f"Invalid URL ({request.method} {request.url.path})"  # what OpenAI says
    body = errors.envelope(message, type_=type_, code=getattr(exc, "code", code), param=getattr(exc, "param", None))
    return JSONResponse(body, exc.status_code, headers=exc.headers)


async def _not_unicode(request: Request, _exc: UnicodeEncodeError) -> JSONResponse:
    # JSON may escape half of a surrogate pair (\ud800); no UTF-8 text, and so no protobuf string, holds one.
    message = "the body holds text that is not valid Unicode (an unpaired surrogate escape such as \\ud800)"
    return await refusals.refuse(request, message, code="invalid_argument")


async def _metrics(request: Request) -> Response:
    """This process's metrics; a shim worker's (`metrics_url` set) are the gateway's, which count every
    worker's requests too."""
    url: str | None = request.app.state.metrics_url
    accept = request.headers.get("accept", "")  # a scraper may ask for OpenMetrics
    if url is None:
        body, content_type = exposition(accept)
        return Response(body, media_type=content_type)
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(url, headers={"accept": accept or "*/*"})
    return Response(answer.content, answer.status_code, media_type=answer.headers.get("content-type"))
