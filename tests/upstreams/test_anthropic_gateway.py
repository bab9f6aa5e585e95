"""Anthropic models through the whole gateway, with the OpenAI SDK as the client.

No real Anthropic endpoint is reachable from CI: `tests/anthropic_wire_server.py`
stands in for it over the Messages API wire protocol, and the gateway reaches it
through the real `anthropic` SDK (`ANTHROPIC_API_KEY` + `ANTHROPIC_BASE_URL`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from lattice.v1 import resolve_pb2, resolve_pb2_grpc
from tests import anthropic_wire_server as wire_server
from tests.anthropic_wire_server import AnthropicWireServer
from tests.gateway_process import GatewayProcess, start_gateway

pytestmark = pytest.mark.slow

KEY = "sk-ant-test-key"
LOCAL = "smollm2-135m-instruct"
PIXEL = (  # a 1x1 PNG
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
IMAGE_QUESTION: list[ChatCompletionMessageParam] = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": PIXEL}},
        ],
    }
]
WEATHER: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def wire() -> Iterator[AnthropicWireServer]:
    with wire_server.running(KEY) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, wire: AnthropicWireServer) -> Iterator[GatewayProcess]:
    log_dir = tmp_path_factory.mktemp("anthropic-gateway")
    config = log_dir / "lattice.toml"
    config.write_text(
        f"""
[[models]]
id = "{LOCAL}"
roles = ["fast", "chat"]
latency_tier = "fast"

[escalation]
target = "{wire_server.ECHO}"
"""
    )
    process = start_gateway(
        log_dir, LATTICE_CONFIG=str(config), ANTHROPIC_API_KEY=KEY, ANTHROPIC_BASE_URL=wire.base_url
    )
    yield process
    process.stop()


def client(gateway: GatewayProcess, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{gateway.http_url}/v1", api_key="unused", max_retries=0, default_headers=headers or None
    )


def test_anthropic_models_are_discovered_with_their_profiles(gateway: GatewayProcess) -> None:
    ids = [m.id for m in client(gateway).models.list().data]
    assert ids[0] == LOCAL
    assert set(wire_server.MODELS) <= set(ids)


def test_an_image_goes_to_a_vision_model(gateway: GatewayProcess, wire: AnthropicWireServer) -> None:
    raw = client(gateway).chat.completions.with_raw_response.create(model=f"{LOCAL},vision", messages=IMAGE_QUESTION)
    completion = raw.parse()
    assert completion.model.startswith("claude-")
    assert completion.choices[0].message.content
    candidates = raw.http_response.json()["lattice"]["resolution"]["candidates"]
    assert candidates[0] == {
        "model": LOCAL,
        "verdict": "CANDIDATE_VERDICT_MISSING_CAPABILITY",
        "detail": "lacks vision",
    }
    image = wire.message_bodies()[-1]["messages"][0]["content"][1]
    assert image["type"] == "image"
    assert image["source"]["type"] == "base64"
    assert image["source"]["media_type"] == "image/png"


def test_tools_pass_through_and_tool_calls_come_back(gateway: GatewayProcess, wire: AnthropicWireServer) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What's the weather in Paris?"}]
    completion = client(gateway).chat.completions.create(
        model=wire_server.ECHO, messages=messages, tools=[WEATHER], tool_choice="required"
    )
    sent = wire.message_bodies()[-1]
    assert sent["tools"][0]["name"] == "get_weather"
    assert sent["tools"][0]["input_schema"]["required"] == ["city"]
    assert sent["tool_choice"] == {"type": "any"}
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather"]  # type: ignore[union-attr]
    assert isinstance(json.loads(calls[0].function.arguments), dict)  # type: ignore[union-attr]


def test_streamed_tool_calls_arrive_as_openai_fragments(gateway: GatewayProcess) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Weather in Oslo?"}]
    stream = client(gateway).chat.completions.create(
        model=wire_server.ECHO, messages=messages, tools=[WEATHER], stream=True
    )
    fragments = [tc for chunk in stream if chunk.choices for tc in chunk.choices[0].delta.tool_calls or []]
    assert fragments[0].id
    assert fragments[0].function is not None
    assert fragments[0].function.name == "get_weather"
    arguments = "".join(f.function.arguments or "" for f in fragments if f.function)
    assert isinstance(json.loads(arguments), dict)


def test_rate_limits_come_back_as_429_with_retry_after(gateway: GatewayProcess) -> None:
    response = httpx.post(
        f"{gateway.http_url}/v1/chat/completions",
        json={"model": wire_server.RATE_LIMITED, "messages": [{"role": "user", "content": "hi"}]},
        timeout=60,
    )
    assert response.status_code == 429
    assert response.headers["retry-after"] == str(wire_server.RETRY_AFTER_SECONDS)
    assert response.json()["error"]["code"] == "upstream_rate_limited"


def test_a_failing_model_falls_back_to_the_next_in_the_list(gateway: GatewayProcess) -> None:
    raw = client(gateway).chat.completions.with_raw_response.create(
        model=f"{wire_server.BROKEN},{wire_server.ECHO}", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.parse().model == wire_server.ECHO
    first = raw.http_response.json()["lattice"]["resolution"]["candidates"][0]
    assert first["model"] == wire_server.BROKEN
    assert first["verdict"] == "CANDIDATE_VERDICT_FAILED"


def test_a_failure_after_the_first_token_is_an_error_event_not_a_switch(gateway: GatewayProcess) -> None:
    stream = client(gateway).chat.completions.create(
        model=f"{wire_server.BREAKS_MID_STREAM},{wire_server.ECHO}",
        messages=[{"role": "user", "content": "Tell me something."}],
        stream=True,
    )
    texts: list[str] = []

    def read_all() -> None:
        for chunk in stream:
            assert chunk.model == wire_server.BREAKS_MID_STREAM  # never silently another model
            texts.extend(c.delta.content or "" for c in chunk.choices)

    with pytest.raises(openai.APIError, match=r"failed|overloaded"):
        read_all()
    assert "".join(texts)


def test_escalation_only_when_allowed(gateway: GatewayProcess) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client(gateway).chat.completions.create(model=LOCAL, messages=IMAGE_QUESTION)
    assert refused.value.code == "no_model_satisfies"
    raw = client(gateway, **{"x-lattice-escalate": "allow"}).chat.completions.with_raw_response.create(
        model=LOCAL, messages=IMAGE_QUESTION
    )
    assert raw.parse().model == wire_server.ECHO
    assert raw.http_response.json()["lattice"]["resolution"]["escalated"] is True


def test_latency_tier_header_prefers_fast_models(gateway: GatewayProcess) -> None:
    fast = client(gateway, **{"x-lattice-latency-tier": "fast"}).chat.completions.create(
        model="*", messages=[{"role": "user", "content": "hi"}], max_tokens=3
    )
    assert fast.model == LOCAL
    bad = httpx.post(
        f"{gateway.http_url}/v1/chat/completions",
        json={"model": "*", "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-lattice-latency-tier": "warp"},
        timeout=60,
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "x-lattice-latency-tier"


def test_resolve_shows_the_anthropic_backend(gateway: GatewayProcess) -> None:
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        reply = resolve_pb2_grpc.ResolveServiceStub(channel).Resolve(resolve_pb2.ResolveRequest(model="role:reasoner"))
    assert reply.resolution.backend == "anthropic"
    assert reply.resolution.model.startswith("claude-")
