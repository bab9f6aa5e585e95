"""Strict OpenAI validation of chat completions (issue #18): what OpenAI refuses, the shim refuses, in
OpenAI's envelope with OpenAI's codes (`invalid_type`, `invalid_value`, `missing_required_parameter`)
and `param` naming the field; what OpenAI accepts (an integer for a number) is still accepted; and on a
gateway with a key, the credential is judged before the body (401 before 400)."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.conftest import API_KEY
from tests.gateway_process import GatewayProcess

pytestmark = pytest.mark.slow

HI: Any = [{"role": "user", "content": "hi"}]
WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


def post(gateway: GatewayProcess, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{gateway.http_url}/v1/chat/completions", json=body, headers=headers, timeout=120)


def refused(response: httpx.Response, status: int, code: str | None, param: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, param), error
    assert error["message"]
    return dict(error)


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"stream": "yes"}, "stream"),
        ({"stream": "true"}, "stream"),
        ({"stream": 1}, "stream"),
        ({"temperature": "0.5"}, "temperature"),
        ({"top_p": "1"}, "top_p"),
        ({"max_tokens": "3"}, "max_tokens"),
        ({"max_tokens": 3.5}, "max_tokens"),
        ({"max_completion_tokens": True}, "max_completion_tokens"),
        ({"seed": "7"}, "seed"),
        ({"n": True}, "n"),
        ({"logprobs": "true"}, "logprobs"),
        ({"top_logprobs": "2"}, "top_logprobs"),
        ({"user": 5}, "user"),
        ({"stop": 5}, "stop"),
        ({"stream_options": {"include_usage": "yes"}, "stream": True}, "stream_options.include_usage"),
        ({"tools": {"type": "function"}}, "tools"),
        ({"tools": [{**WEATHER, "function": {**WEATHER["function"], "strict": "no"}}]}, "tools[0].function.strict"),
        ({"response_format": "json_object"}, "response_format"),
        ({"swarm": {"models": "a,b"}}, "swarm.models"),
    ],
)
def test_wrong_json_types_are_invalid_type(gateway: GatewayProcess, extra: dict[str, Any], param: str) -> None:
    error = refused(post(gateway, {"messages": HI, **extra}), 400, "invalid_type", param)
    assert param in error["message"]


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ("hi", "messages"),
        ([{"role": "user", "content": 5}], "messages[0].content"),
        ([{"role": 1, "content": "hi"}], "messages[0].role"),
        (
            [{"role": "user", "content": [{"type": "text", "text": ["a"]}]}],
            "messages[0].content[0].text",
        ),
        ([{"role": "user", "content": "hi", "name": False}], "messages[0].name"),
    ],
)
def test_wrong_types_inside_messages_name_the_path(gateway: GatewayProcess, messages: Any, param: str) -> None:
    refused(post(gateway, {"messages": messages}), 400, "invalid_type", param)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ({"messages": HI, "n": 2}, "n"),
        ({"messages": HI, "tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice"),
        ({"messages": HI, "response_format": {"type": "yaml"}}, "response_format.type"),
        ({"messages": [{"role": "user", "content": [{"type": "audio", "text": "hi"}]}]}, "messages[0].content[0].type"),
    ],
)
def test_values_outside_the_allowed_ones_are_invalid_value(
    gateway: GatewayProcess, body: dict[str, Any], param: str
) -> None:
    refused(post(gateway, body), 400, "invalid_value", param)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "messages"),
        ({"messages": [{"content": "hi"}]}, "messages[0].role"),
        ({"messages": HI, "tools": [{"type": "function", "function": {}}]}, "tools[0].function.name"),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages[0].content[0].text"),
    ],
)
def test_missing_fields_are_missing_required_parameter(
    gateway: GatewayProcess, body: dict[str, Any], param: str
) -> None:
    error = refused(post(gateway, body), 400, "missing_required_parameter", param)
    assert param in error["message"]


def test_what_openai_accepts_is_still_accepted(gateway: GatewayProcess) -> None:
    body = {"messages": HI, "max_tokens": 1, "temperature": 0, "top_p": 1, "seed": 3, "stream": False, "n": 1}
    assert post(gateway, body).status_code == 200, "an integer where a number is expected is a number"
    assert post(gateway, {**body, "stream_options": None}).status_code == 200
    assert post(gateway, {**body, "tool_choice": None}).status_code == 200


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"stream_options": {"include_usage": True}, "stream": False}, "stream_options"),
        ({"tool_choice": "auto"}, "tool_choice"),
        ({"tool_choice": "none", "tools": []}, "tool_choice"),
        ({"tool_choice": {"type": "function", "function": {"name": "get_weather"}}}, "tool_choice"),
    ],
)
def test_options_that_need_another_are_refused_without_it(
    gateway: GatewayProcess, extra: dict[str, Any], param: str
) -> None:
    refused(post(gateway, {"messages": HI, **extra}), 400, "invalid_value", param)


def test_a_tool_message_needs_its_tool_call_id(gateway: GatewayProcess) -> None:
    client = openai.OpenAI(base_url=f"{gateway.http_url}/v1", api_key="unused", max_retries=0)
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    history: Any = [
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "content": "sunny"},
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="", messages=history, max_tokens=2)
    assert caught.value.param == "messages[2].tool_call_id"


def test_the_openai_sdk_sees_the_codes(gateway: GatewayProcess) -> None:
    client = openai.OpenAI(base_url=f"{gateway.http_url}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError) as wrong_type:
        client.chat.completions.create(model="", messages=HI, max_tokens=2, extra_body={"stream": "yes"})
    assert (wrong_type.value.code, wrong_type.value.param) == ("invalid_type", "stream")
    with pytest.raises(openai.BadRequestError) as lonely:
        client.chat.completions.create(
            model="",
            messages=HI,
            max_tokens=2,
            stream_options={"include_usage": True},
        )
    assert (lonely.value.code, lonely.value.param) == ("invalid_value", "stream_options")


# --- the credential before the body ------------------------------------------------------------------

BAD_BODIES: list[Any] = [
    {"messages": HI, "stream": "yes"},
    {"messages": HI, "tool_choice": "auto"},
    {},
    "not an object",
]


@pytest.mark.parametrize("body", BAD_BODIES)
@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}, {"authorization": "Bearer wrong"}])
def test_a_bad_body_without_a_good_key_is_401(
    keyed_gateway: GatewayProcess, body: Any, headers: dict[str, str]
) -> None:
    response = post(keyed_gateway, body, headers)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["type"] == "authentication_error"


def test_malformed_json_without_a_good_key_is_401(keyed_gateway: GatewayProcess) -> None:
    response = httpx.post(
        f"{keyed_gateway.http_url}/v1/chat/completions",
        content=b'{"messages": [}',
        headers={"content-type": "application/json", "x-api-key": "wrong"},
        timeout=60,
    )
    assert response.status_code == 401, response.text


def test_a_bad_swarm_body_without_a_good_key_is_401(keyed_gateway: GatewayProcess) -> None:
    response = httpx.post(f"{keyed_gateway.http_url}/v1/swarm/vote", json={"stream": "yes"}, timeout=60)
    assert response.status_code == 401, response.text
    response = httpx.post(f"{keyed_gateway.http_url}/v1/swarm/vote", json={"nonsense": 1}, timeout=60)
    assert response.status_code == 401, response.text


@pytest.mark.parametrize("body", BAD_BODIES)
def test_a_bad_body_with_the_key_is_still_400(keyed_gateway: GatewayProcess, body: Any) -> None:
    response = post(keyed_gateway, body, {"x-api-key": API_KEY})
    assert response.status_code == 400, response.text


def test_the_openai_sdk_with_a_wrong_key_and_a_bad_body(keyed_gateway: GatewayProcess) -> None:
    client = openai.OpenAI(base_url=f"{keyed_gateway.http_url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="", messages=HI, max_tokens=2, extra_body={"temperature": "0.5"})
