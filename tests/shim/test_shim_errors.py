"""Every error through the shim comes in OpenAI's envelope with the right HTTP status."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.gateway_process import GatewayProcess

pytestmark = pytest.mark.slow

HI = [{"role": "user", "content": "hi"}]


def post(gateway: GatewayProcess, body: Any = None, *, content: bytes | None = None) -> httpx.Response:
    return httpx.post(
        f"{gateway.http_url}/v1/chat/completions",
        json=body if content is None else None,
        content=content,
        headers={"content-type": "application/json"},
        timeout=120,
    )


def assert_envelope(response: httpx.Response, status: int, code: str, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    assert error["message"]
    if param is not None:
        assert error["param"] == param
    return dict(error)


def test_unknown_model_is_404(gateway: GatewayProcess) -> None:
    error = assert_envelope(post(gateway, {"model": "gpt-17", "messages": HI}), 404, "model_not_found")
    assert "gpt-17" in error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": []}, "messages"),
        ({"messages": HI, "temperature": 5}, "temperature"),
        ({"messages": HI, "max_tokens": -1}, "max_tokens"),
        ({"messages": HI, "top_p": 0}, "top_p"),
        ({"messages": HI, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": None}], "stream": True}, "messages[0].content"),
    ],
)
def test_bad_ranges_are_400_naming_the_field(gateway: GatewayProcess, body: dict[str, Any], param: str) -> None:
    assert_envelope(post(gateway, body), 400, "invalid_argument", param)


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "invalid_value", "messages[0].role"),
        ({"messages": [{}], "stream": True}, "missing_required_parameter", "messages[0].role"),
        ({"messages": HI, "temperature": "hot"}, "invalid_type", "temperature"),
        ({"messages": "hi"}, "invalid_type", "messages"),
        ({"model": 5, "messages": HI}, "invalid_type", "model"),
        ({}, "missing_required_parameter", "messages"),
        ({"messages": HI, "n": 2}, "invalid_value", "n"),
    ],
)
def test_wrong_types_are_400_naming_the_field(
    gateway: GatewayProcess, body: dict[str, Any], code: str, param: str
) -> None:
    # The shim's own refusals carry OpenAI's codes (tests/shim/test_strict_validation.py has the rest).
    error = assert_envelope(post(gateway, body), 400, code, param)
    assert param in error["message"]


def test_malformed_json_is_400(gateway: GatewayProcess) -> None:
    error = assert_envelope(post(gateway, content=b'{"messages": [}'), 400, "invalid_argument")
    assert "JSON" in error["message"]


def test_context_length_exceeded(gateway: GatewayProcess) -> None:
    body = {"messages": [{"role": "user", "content": "hello " * 9000}]}
    error = assert_envelope(post(gateway, body), 400, "context_length_exceeded", "messages")
    assert "8192" in error["message"]


def test_an_image_for_a_model_without_vision_is_400(gateway: GatewayProcess) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]}]
    error = assert_envelope(post(gateway, {"messages": messages}), 400, "no_model_satisfies")
    assert "vision" in error["message"]


def test_body_too_large_is_413(gateway: GatewayProcess) -> None:
    huge = {"messages": [{"role": "user", "content": "x" * (5 * 1024 * 1024)}]}
    assert_envelope(post(gateway, huge), 413, "request_too_large")


def test_streaming_errors_before_the_stream_get_their_status(gateway: GatewayProcess) -> None:
    assert_envelope(post(gateway, {"model": "nope", "messages": HI, "stream": True}), 404, "model_not_found")


def test_openai_sdk_raises_typed_errors(gateway: GatewayProcess) -> None:
    client = openai.OpenAI(base_url=f"{gateway.http_url}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="nope", messages=HI)  # type: ignore[arg-type]
    assert not_found.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="", messages=HI, temperature=9)  # type: ignore[arg-type]
    assert bad.value.param == "temperature"


def test_healthz(gateway: GatewayProcess) -> None:
    response = httpx.get(f"{gateway.http_url}/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_streaming_response_names_the_model(gateway: GatewayProcess) -> None:
    body = {"messages": HI, "max_tokens": 2, "stream": True}
    with httpx.stream("POST", f"{gateway.http_url}/v1/chat/completions", json=body, timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["x-lattice-model"] == "smollm2-135m-instruct"
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
