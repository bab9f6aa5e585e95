"""Errors in Anthropic's shape, `{"type": "error", "error": {"type", "message"}}`, with Anthropic's
status codes, for the Anthropic routes.

The shim's error handling (the server's statuses, strict validation, the credential judged before the
body) is the OpenAI routes'; `AnthropicRoute` runs it as they do and re-says its answer in Anthropic's
words. An overloaded gateway (a full or slow queue, an unavailable backend) is Anthropic's
529 `overloaded_error`, which its SDKs retry; a caller over its own limits is 429 `rate_limit_error`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import grpc
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from lattice.shim import errors, refusals
from lattice.shim.fast_json import compact

OVERLOADED = 529
# HTTP status of the OpenAI-shaped answer → Anthropic's (status, error type).
_STATUSES = {
    400: (400, "invalid_request_error"),
    401: (401, "authentication_error"),
    403: (403, "permission_error"),
    404: (404, "not_found_error"),
    408: (408, "timeout_error"),
    409: (409, "invalid_request_error"),
    413: (413, "request_too_large"),
    429: (429, "rate_limit_error"),
    501: (400, "invalid_request_error"),
    503: (OVERLOADED, "overloaded_error"),
    504: (504, "timeout_error"),
}
_OVERLOADED_CODES = frozenset({"queue_full", "queue_timeout"})
"""429s of the gateway's own capacity (not the caller's limits): overloaded, for Anthropic."""

ERROR_SCHEMA: dict[str, Any] = {
    "title": "AnthropicError",
    "description": "Anthropic's error shape: every error the Anthropic routes answer with has it.",
    "type": "object",
    "required": ["type", "error"],
    "properties": {
        "type": {"const": "error"},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {
                "type": {
                    "type": "string",
                    "description": "`invalid_request_error`, `authentication_error`, `permission_error`, "
                    "`not_found_error`, `request_too_large`, `rate_limit_error`, `api_error`, "
                    "`timeout_error` or `overloaded_error`.",
                },
                "message": {"type": "string"},
            },
        },
    },
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    str(status): {
        "description": description,
        "content": {"application/json": {"schema": ERROR_SCHEMA}},
    }
    for status, description in {
        400: "`invalid_request_error`: the body is invalid, or the server refused it.",
        401: "`authentication_error`: an API key is needed, or the one sent is not valid.",
        403: "`permission_error`: the key lacks the inference scope.",
        404: "`not_found_error`: no model matches the expression.",
        408: "`timeout_error`: the body arrived too slowly.",
        409: "`invalid_request_error`.",
        413: "`request_too_large`.",
        429: "`rate_limit_error`: over the caller's limits; `retry-after` says when to try again.",
        500: "`api_error`: an internal error.",
        504: "`timeout_error`: the deadline passed.",
        529: "`overloaded_error`: the gateway or the model is busy or unavailable; retry later.",
    }.items()
}


def envelope(type_: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "message": message}}


def from_openai(status: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """An OpenAI-shaped error answer (lattice.shim.errors) as Anthropic's (status, body)."""
    error = body.get("error", {})
    if status == 429 and error.get("code") in _OVERLOADED_CODES:
        status_, type_ = OVERLOADED, "overloaded_error"
    else:
        status_, type_ = _STATUSES.get(status, (status, "api_error" if status >= 500 else "invalid_request_error"))
    return status_, envelope(type_, str(error.get("message") or type_))


def stream_error(error: grpc.aio.AioRpcError) -> str:
    """An `event: error` for a failure after the answer has begun, as Anthropic sends one."""
    refusal = errors.from_grpc(error)
    _status, body = from_openai(refusal.status, refusal.body)
    return f"event: error\ndata: {compact(body)}\n\n"


PATH_PREFIX = "/v1/messages"


def is_anthropic_path(path: str) -> bool:
    """Whether `path` is Anthropic's API (where even a wrong method or an unknown path is its error)."""
    return path == PATH_PREFIX or path.startswith(PATH_PREFIX + "/")


def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """An HTTP error of Starlette's or the shim's own (405, 404, a bad header) in Anthropic's shape."""
    message = str(exc.detail)
    if exc.status_code in (404, 405) and message in ("Not Found", "Method Not Allowed"):
        message = f"{request.method} {request.url.path} is not served"
    status, body = from_openai(exc.status_code, {"error": {"message": message}})
    return JSONResponse(body, status, headers=exc.headers)


def _reshaped(response: Response) -> JSONResponse:
    assert isinstance(response, JSONResponse)
    status, body = from_openai(response.status_code, json.loads(bytes(response.body)))
    headers = {k: v for k, v in response.headers.items() if k == "retry-after"}
    return JSONResponse(body, status, headers=headers)


class AnthropicRoute(APIRoute):
    """A route whose errors are answered in Anthropic's shape (FastAPI's documented way to wrap a route's
    handling: validation errors are raised inside it)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as exc:
                return _reshaped(await refusals.invalid_body(request, exc))
            except refusals.InvalidRequest as exc:
                return _reshaped(await refusals.invalid_request(request, exc))
            except grpc.aio.AioRpcError as exc:
                refusal = errors.from_grpc(exc)
                return _reshaped(JSONResponse(refusal.body, refusal.status, headers=refusal.headers))
            except HTTPException as exc:
                return http_error(request, exc)

        return route
