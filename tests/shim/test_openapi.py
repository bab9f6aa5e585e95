"""The shim's OpenAPI document covers every route it serves and tells the truth: schemathesis
fuzzes a live gateway from it (bounded) and finds no 5xx, no hang, no error outside OpenAI's envelope,
no status, header or body the document does not describe."""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest
import schemathesis
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.checks import CheckContext

from lattice.shim import create_app
from tests.gateway_process import GatewayProcess, start_gateway

REQUEST_TIMEOUT_SECONDS = 60
"""Per request: a hang fails the test instead of stalling the run."""


def document() -> dict[str, Any]:
    return create_app("127.0.0.1:1").openapi()


def test_every_documented_operation_is_served() -> None:
    app = create_app("127.0.0.1:1")  # no server behind it: a route that calls one fails, but it answers
    operations = [(path, method) for path, ops in app.openapi()["paths"].items() for method in ops]
    assert {("/v1/chat/completions", "post"), ("/v1/models", "get"), ("/healthz", "get"), ("/metrics", "get")} <= set(
        operations
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        for path, method in operations:
            response = client.request(method, re.sub(r"\{[^}]+\}", "x", path), json={})
            unrouted = response.status_code in (404, 405) and "Invalid URL" in response.text
            assert not unrouted, (method, path)


def test_no_route_but_the_document_itself_is_left_out_of_it() -> None:
    hidden = [
        context.original_route
        for context in iter_route_contexts(create_app("127.0.0.1:1").routes)
        if not getattr(context.original_route, "include_in_schema", True)
    ]
    assert [getattr(route, "path", None) for route in hidden] == ["/openapi.json"]


def test_the_document_does_not_depend_on_the_process_that_serves_it() -> None:
    # A shim worker's app reads `/metrics` from the gateway (`metrics_url`) and carries its proxy secret;
    # the embedded shim's does neither. Clients read one document: whichever process answers, the same.
    worker = create_app("127.0.0.1:1", proxy_secret="secret", metrics_url="http://127.0.0.1:1/metrics")
    assert worker.openapi() == document()


def test_every_operation_documents_its_errors_in_the_openai_envelope() -> None:
    spec = document()
    envelope = spec["components"]["schemas"]["ErrorResponse"]
    assert envelope["properties"]["error"]["required"] == ["message", "type", "param", "code"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "422" not in responses, (path, method)  # FastAPI's guess; the shim answers 400
            anthropic = path.startswith("/v1/messages")  # Anthropic's API: Anthropic's error shape and 529
            for status in ("400", "401", "403", "404", "413", "429", "500", "529" if anthropic else "503", "504"):
                schema = responses[status]["content"]["application/json"]["schema"]
                if anthropic:
                    assert schema["title"] == "AnthropicError" and "503" not in responses, (path, method, status)
                elif (path, status) != ("/healthz", "503"):
                    assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (path, method, status)
            assert "retry-after" in responses["429"]["headers"]
            assert all("x-request-id" in r["headers"] for r in responses.values())


def test_the_chat_route_documents_its_answers_and_its_request() -> None:
    operation = document()["paths"]["/v1/chat/completions"]["post"]
    ok = operation["responses"]["200"]["content"]
    assert ok["application/json"]["schema"] == {"$ref": "#/components/schemas/ChatCompletion"}
    assert "text/event-stream" in ok
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ChatCompletionRequest"
    }


def test_the_chat_request_says_which_options_need_another() -> None:
    # stream_options only with "stream": true, tool_choice only with tools: what the shim refuses otherwise.
    components = document()["components"]
    request = components["schemas"]["ChatCompletionRequest"]
    assert set(request["dependentSchemas"]) == {"stream_options", "tool_choice"}
    validator = jsonschema.Draft202012Validator({**request, "components": components})  # its $refs resolve
    hi = {"messages": [{"role": "user", "content": "hi"}]}
    assert validator.is_valid({**hi, "stream": True, "stream_options": {"include_usage": True}})
    assert not validator.is_valid({**hi, "stream_options": {"include_usage": True}})
    assert validator.is_valid({**hi, "stream_options": None, "tool_choice": None})
    assert not validator.is_valid({**hi, "tool_choice": "auto", "tools": []})


CHUNK = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "smollm2-135m-instruct",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Paris"}, "finish_reason": None}],
}
ERROR_EVENT = {"error": {"message": "ran too long", "type": "server_error", "param": None, "code": "internal"}}


def sse(*events: str) -> bytes:
    return "".join(events).encode()


def data(payload: dict[str, Any] | str, event: str = "") -> str:
    return (
        f"event: {event}\n" if event else ""
    ) + f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", sse(data(CHUNK), data({**CHUNK, "usage": None}), data("[DONE]"))),
        ("/v1/chat/completions", sse(": agent-1 finished\n\n", data(CHUNK), data("[DONE]"))),  # a swarm chat
        ("/v1/chat/completions", sse(data(CHUNK), data(ERROR_EVENT))),  # an error after the first chunk
        (
            "/v1/swarm/vote",
            sse(
                data({"agent": "agent-1", "model": "smollm2"}, "agent.started"),
                data({"agent": "agent-1", "text": "Blue"}, "agent.delta"),
                data({"text": "Blue"}, "result"),
                data(ERROR_EVENT, "error"),
            ),
        ),
    ],
)
def test_the_event_streams_the_shim_sends_match_the_document(path: str, body: bytes) -> None:
    # schemathesis validates each server-sent event ({"event", "data"}) against the documented schema (ST108).
    assert schema[path]["POST"].is_valid_response(event_stream(path, body))


@pytest.mark.parametrize(
    "body",
    [
        sse(data({"hello": "world"})),  # neither a chunk nor an error
        sse("data: not json\n\n"),
    ],
)
def test_an_event_stream_the_shim_does_not_send_is_refused_by_the_document(body: bytes) -> None:
    path = "/v1/chat/completions"
    assert not schema[path]["POST"].is_valid_response(event_stream(path, body))


def event_stream(path: str, body: bytes) -> httpx.Response:
    """A 200 event stream of `body`, as if the shim had answered a POST to `path`."""
    response = httpx.Response(
        200,
        headers={"content-type": "text/event-stream", "x-request-id": "r"},
        content=body,
        request=httpx.Request("POST", f"http://127.0.0.1{path}"),
    )
    response.elapsed = datetime.timedelta(0)
    return response


def test_the_docs_pages_that_need_a_cdn_are_not_served() -> None:
    paths = {getattr(route, "path", None) for route in create_app("127.0.0.1:1").routes}
    assert "/openapi.json" in paths
    assert not {"/docs", "/redoc"} & paths


# --- fuzzing a live gateway ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """Short answers (8 tokens at most) and small prompts, so that the valid requests the fuzzer makes
    run quickly on the real model; no rate limit, so that every example reaches the server."""
    process = start_gateway(
        tmp_path_factory.mktemp("fuzzed"),
        LATTICE_MAX_TOKENS_CEILING="8",
        LATTICE_MAX_PROMPT_CHARS="2000",
        LATTICE_RATE_LIMIT_PER_MINUTE="0",
        LATTICE_MAX_STREAM_SECONDS="30",
    )
    yield process
    process.stop()


# The document the app builds is the one the live gateway serves (checked below), so the fuzzer's operations
# are known when tests are collected, and its cases are sent to the live gateway.
schema = schemathesis.openapi.from_dict(document())


def in_the_apis_envelope(ctx: CheckContext, response: Any, case: Any) -> bool | None:
    if response.status_code < 400:
        return None
    if case.operation.path.startswith("/v1/messages"):  # Anthropic's API answers in Anthropic's shape
        body = response.json()
        assert body.get("type") == "error" and set(body["error"]) == {"type", "message"}, response.text
        assert isinstance(body["error"]["message"], str) and body["error"]["message"], response.text
        return True
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"], response.text
    assert isinstance(error["type"], str) and error["type"], response.text
    assert error["code"] is None or isinstance(error["code"], str), response.text
    return True


def no_server_error(ctx: CheckContext, response: Any, case: Any) -> bool | None:
    # 503 (529, Anthropic's overloaded_error) is the documented "unavailable for now" of a reachable gateway;
    # anything else 5xx is a bug.
    assert response.status_code < 500 or response.status_code in (503, 529), f"{response.status_code}: {response.text}"
    return None


CHECKS = [
    no_server_error,
    in_the_apis_envelope,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzzing_finds_no_server_error_and_only_documented_answers(
    fuzzed: GatewayProcess, case: schemathesis.Case[Any]
) -> None:
    if aimed_at_the_model(case) and isinstance(case.body, dict):
        # A random `model` is almost always unknown (404): send valid chats to the default model instead,
        # so that the fuzzer's messages, tools and sampling parameters reach the real model.
        case.body["model"] = ""
    case.call_and_validate(base_url=fuzzed.http_url, checks=CHECKS, timeout=REQUEST_TIMEOUT_SECONDS)


def aimed_at_the_model(case: schemathesis.Case[Any]) -> bool:
    positive = case.meta is not None and not case.meta.generation.mode.is_negative
    return positive and case.operation.path in ("/v1/chat/completions", "/v1/messages") and isinstance(case.body, dict)


@pytest.mark.slow
def test_the_live_document_is_the_one_the_app_builds(fuzzed: GatewayProcess) -> None:
    live = httpx.get(f"{fuzzed.http_url}/openapi.json").json()
    assert live == document()
