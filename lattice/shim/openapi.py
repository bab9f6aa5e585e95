"""The shim's OpenAPI document: FastAPI's, made true to what the shim really answers.

FastAPI documents each route's request and success from its signature; the
errors it would guess are wrong here: a bad body is 400 in OpenAI's error
envelope (not FastAPI's 422), and any route may be refused by the server
(401/403/404/429 …) or by the shim's middleware (408, 413). So every operation,
of every router included now or later, gets the statuses it can really answer
with, each with the envelope's schema, the `x-request-id` header, and
`Retry-After` where the server says when to retry. Routes keep whatever they
declare themselves (e.g. `/healthz`'s own 503).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from lattice.wire.names import API_KEY_METADATA_KEY, REQUEST_ID_KEY

ERROR_SCHEMA_NAME = "ErrorResponse"
ERROR_SCHEMA: dict[str, Any] = {
    "title": ERROR_SCHEMA_NAME,
    "description": "OpenAI's error envelope: every error the shim answers with has this shape.",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string", "description": "What went wrong, for people."},
                "type": {"type": "string", "description": "OpenAI's error type, e.g. `invalid_request_error`."},
                "param": {
                    "anyOf": [{"type": "string"}, {"type": "null"}],
                    "description": "The request field or header at fault, when there is one.",
                },
                "code": {
                    "anyOf": [{"type": "string"}, {"type": "null"}],
                    "description": "Stable and machine-readable: the server's reason in lower case "
                    "(`model_not_found`, `rate_limited`, `queue_full`, …).",
                },
            },
        }
    },
}

# Each status the shim can answer with on any route, from the server (lattice.shim.errors) or its middleware.
ERROR_STATUSES = {
    "400": "The request is invalid (`invalid_argument`, `too_many_messages`, `prompt_too_large`, "
    "`context_length_exceeded`, …); `param` names the field.",
    "401": "An API key is needed, or the one sent is not valid.",
    "403": "The key lacks the scope this call needs.",
    "404": "No such model, record or path.",
    "408": "The request body arrived too slowly (`request_timeout`).",
    "409": "The record exists already.",
    "413": "The request body is too large (`request_too_large`).",
    "429": "Over a limit: `rate_limited`, `too_many_streams`, `queue_full`, `queue_timeout`; "
    "`Retry-After` says when to try again, when the server knows.",
    "500": "An internal error; the gateway's log has the details (find them by `x-request-id`).",
    "501": "Not implemented by this gateway.",
    "503": "The server, model or upstream is unavailable for now.",
    "504": "The deadline passed, or the answer ran past `max_stream_seconds` (`stream_duration_exceeded`).",
}
RETRY_STATUSES = ("429", "503", "529")  # 529: Anthropic's overloaded_error
REQUEST_ID_HEADER = {
    REQUEST_ID_KEY: {
        "description": "The caller's `x-request-id`, or one the shim made: it is in every log line about "
        "this request, in the shim and in the server.",
        "schema": {"type": "string"},
    }
}
RETRY_AFTER_HEADER = {
    "retry-after": {"description": "Seconds to wait before retrying, when known.", "schema": {"type": "integer"}}
}
SECURITY_SCHEMES = {
    "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": API_KEY_METADATA_KEY},
    "BearerAuth": {"type": "http", "scheme": "bearer"},
}


def install(app: FastAPI) -> None:
    """Makes `app.openapi()` (and so `GET /openapi.json`) return the completed document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = complete(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas[ERROR_SCHEMA_NAME] = ERROR_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 body, which the shim never sends
        schemas.pop(name, None)
    components["securitySchemes"] = SECURITY_SCHEMES
    # Optional ({}): a gateway without a key takes calls without one; with a key, either header works.
    schema["security"] = [{}, {"ApiKeyHeader": []}, {"BearerAuth": []}]
    error_content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}}}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            # A route that documents its own 400 answers errors in its own API's shape (Anthropic's).
            if "400" not in responses:
                for status, description in ERROR_STATUSES.items():
                    responses.setdefault(status, {"description": description, "content": error_content})
            for status, response in responses.items():
                headers = response.setdefault("headers", {})
                headers.update(REQUEST_ID_HEADER)
                if status in RETRY_STATUSES:
                    headers.update(RETRY_AFTER_HEADER)
    return schema
