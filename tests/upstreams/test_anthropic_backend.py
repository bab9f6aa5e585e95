"""The Anthropic backend: the real `anthropic` SDK, over real HTTP, against a local Messages API server.

No real Anthropic endpoint is reachable from this machine, so `tests/anthropic_wire_server.py`
stands in for it, speaking the documented wire protocol (JSON, SSE event sequence, error
shapes); nothing here mocks the SDK. The last part tests the domain ⇄ Anthropic mapping alone.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import pytest
from pydantic import SecretStr

from lattice.config import ModelProfile, Upstream
from lattice.errors import BackendRejected, BackendUnavailable, ResourceExhausted
from lattice.server.backends.base import GenerationLimits
from lattice.server.backends.upstream.anthropic import AnthropicUpstream
from lattice.server.chat import (
    ChatRequest,
    Delta,
    Finish,
    FinishReason,
    GenerationEvent,
    Message,
    Role,
    Sampling,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
    Usage,
)
from tests import anthropic_wire_server as wire_server
from tests.anthropic_wire_server import AnthropicWireServer, words
from tests.upstreams.test_anthropic_wire import chat, user

API_KEY = "sk-ant-test-0123456789"
WEATHER = Tool("get_weather", "Current weather", {"type": "object", "properties": {"city": {"type": "string"}}})
TIME = Tool("get_time")
PNG = "data:image/png;base64,iVBORw0KGgo="


@pytest.fixture(scope="module")
def wire() -> Iterator[AnthropicWireServer]:
    with wire_server.running(API_KEY) as server:
        yield server


def upstream_at(base_url: str, **overrides: Any) -> Upstream:
    return Upstream(name="anthropic", kind="anthropic", base_url=base_url, connect_timeout_seconds=2, **overrides)


@pytest.fixture
async def backend(wire: AnthropicWireServer) -> AsyncIterator[AnthropicUpstream]:
    upstream = AnthropicUpstream(upstream_at(wire.base_url), SecretStr(API_KEY), lambda ids: None)
    await upstream.start()
    yield upstream
    await upstream.close()


async def run(
    backend: AnthropicUpstream, request: ChatRequest, model: str = wire_server.ECHO, ceiling: int = 256
) -> tuple[list[Delta], Finish]:
    events = [
        e async for e in backend.stream(ModelProfile(id=model, backend="anthropic"), request, GenerationLimits(ceiling))
    ]
    *deltas, finish = events
    assert all(isinstance(d, Delta) for d in deltas) and isinstance(finish, Finish)
    return [d for d in deltas if isinstance(d, Delta)], finish


async def drain(stream: AsyncIterator[GenerationEvent], into: list[GenerationEvent]) -> None:
    async for event in stream:
        into.append(event)


def text_of(deltas: list[Delta]) -> str:
    return "".join(d.text for d in deltas)


# --- discovery and health ---------------------------------------------------------------------


async def test_discovery_reports_the_model_list_and_marks_it_available(wire: AnthropicWireServer) -> None:
    seen: list[list[str]] = []
    upstream = AnthropicUpstream(upstream_at(wire.base_url), SecretStr(API_KEY), seen.append)
    assert not upstream.available
    await upstream.start()
    try:
        assert upstream.available
        assert seen == [list(wire_server.MODELS)]
        listed = [r for r in wire.requests if r.path == "/v1/models"][-1]
        assert listed.headers["authorization"] == f"Bearer {API_KEY}"
        assert listed.headers["anthropic-version"]
    finally:
        await upstream.close()


async def test_configured_models_are_what_it_serves(wire: AnthropicWireServer) -> None:
    seen: list[list[str]] = []
    configured = upstream_at(wire.base_url, models=(wire_server.ECHO,))
    upstream = AnthropicUpstream(configured, SecretStr(API_KEY), seen.append)
    await upstream.start()
    await upstream.close()
    assert upstream.available and seen == [[wire_server.ECHO]]


async def test_the_upstream_key_wins_over_the_global_one(wire: AnthropicWireServer) -> None:
    upstream = AnthropicUpstream(
        upstream_at(wire.base_url, api_key=SecretStr(API_KEY)), SecretStr("sk-wrong"), lambda ids: None
    )
    await upstream.start()
    await upstream.close()
    assert upstream.available


async def test_a_model_list_that_stops_answering_makes_it_unavailable_until_it_answers(
    wire: AnthropicWireServer,
) -> None:
    seen: list[list[str]] = []
    upstream = AnthropicUpstream(upstream_at(wire.base_url, refresh_seconds=0.05), SecretStr(API_KEY), seen.append)
    await upstream.start()
    try:
        assert upstream.available
        wire.models_failing = True
        for _ in range(200):  # the background refresh notices; bounded wait, not a timing assertion
            if not upstream.available:
                break
            await asyncio.sleep(0.05)
        assert not upstream.available
        wire.models_failing = False
        answered = len(seen)
        for _ in range(200):
            if upstream.available:
                break
            await asyncio.sleep(0.05)
        assert upstream.available and len(seen) > answered
    finally:
        wire.models_failing = False
        await upstream.close()


async def test_wrong_key_is_an_auth_failure_not_a_rejection(wire: AnthropicWireServer) -> None:
    upstream = AnthropicUpstream(upstream_at(wire.base_url), SecretStr("sk-wrong"), lambda ids: None)
    await upstream.start()
    try:
        assert not upstream.available
        with pytest.raises(BackendUnavailable) as raised:
            await run(upstream, chat(user("hi")))
        assert raised.value.reason == "UPSTREAM_AUTH_FAILED"
    finally:
        await upstream.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_connection_refused_is_unavailable_and_start_does_not_raise() -> None:
    upstream = AnthropicUpstream(upstream_at(f"http://127.0.0.1:{closed_port()}"), SecretStr(API_KEY), lambda ids: None)
    await upstream.start()
    try:
        assert not upstream.available
        with pytest.raises(BackendUnavailable):
            await run(upstream, chat(user("hi")))
    finally:
        await upstream.close()


# --- answers ------------------------------------------------------------------------------------


async def test_text_streams_as_deltas_and_finishes_with_stop_and_usage(backend: AnthropicUpstream) -> None:
    deltas, finish = await run(backend, chat(user("hello there Claude")))
    assert len(deltas) > 1 and all(not d.tool_calls for d in deltas)
    assert text_of(deltas) == "You said: hello there Claude"
    assert finish.reason is FinishReason.STOP
    assert finish.usage == Usage(prompt_tokens=3, completion_tokens=len(words("You said: hello there Claude")))


async def test_a_streamed_tool_call_joins_into_name_and_json_arguments(
    backend: AnthropicUpstream, wire: AnthropicWireServer
) -> None:
    request = chat(user("weather in Paris"), tools=(WEATHER, TIME), tool_choice=ToolChoice(mode="required"))
    deltas, finish = await run(backend, request)
    assert finish.reason is FinishReason.TOOL_CALLS
    fragments = [c for d in deltas for c in d.tool_calls]
    assert {f.index for f in fragments} == {0, 1}
    calls = []
    for index in (0, 1):
        mine = [f for f in fragments if f.index == index]
        assert mine[0].id and mine[0].name and all(not f.id and not f.name for f in mine[1:])
        assert len(mine) > 2  # arguments really arrive in pieces
        calls.append((mine[0].name, json.loads("".join(f.arguments for f in mine))))
    assert calls == [("get_weather", {"query": "weather in Paris"}), ("get_time", {"query": "weather in Paris"})]
    body = wire.message_bodies()[-1]
    assert body["tool_choice"] == {"type": "any"}
    assert body["tools"] == [
        {"name": "get_weather", "description": "Current weather", "input_schema": WEATHER.parameters},
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ]


async def test_tool_choice_none_answers_in_text(backend: AnthropicUpstream, wire: AnthropicWireServer) -> None:
    deltas, finish = await run(backend, chat(user("hi"), tools=(WEATHER,), tool_choice=ToolChoice(mode="none")))
    assert (text_of(deltas), finish.reason) == ("You said: hi", FinishReason.STOP)
    assert wire.message_bodies()[-1]["tool_choice"] == {"type": "none"}


async def test_max_tokens_reached_finishes_with_length(backend: AnthropicUpstream, wire: AnthropicWireServer) -> None:
    deltas, finish = await run(backend, chat(user("one two three four"), max_tokens=3))
    assert (text_of(deltas), finish.reason) == ("You said: one ", FinishReason.LENGTH)
    assert wire.message_bodies()[-1]["max_tokens"] == 3


async def test_max_tokens_defaults_to_and_is_bounded_by_the_ceiling(
    backend: AnthropicUpstream, wire: AnthropicWireServer
) -> None:
    await run(backend, chat(user("hi")), ceiling=77)
    assert wire.message_bodies()[-1]["max_tokens"] == 77
    await run(backend, chat(user("hi"), max_tokens=5000), ceiling=77)
    assert wire.message_bodies()[-1]["max_tokens"] == 77


async def test_stop_sequences_arrive_and_end_the_answer(backend: AnthropicUpstream, wire: AnthropicWireServer) -> None:
    deltas, finish = await run(backend, chat(user("alpha beta gamma"), stop=("gamma", "zeta")))
    assert (text_of(deltas), finish.reason) == ("You said: alpha beta ", FinishReason.STOP)
    assert finish.stop_sequence == "gamma"  # as the API says it
    assert wire.message_bodies()[-1]["stop_sequences"] == ["gamma", "zeta"]
    _, natural = await run(backend, chat(user("alpha beta"), stop=("zeta",)))
    assert (natural.reason, natural.stop_sequence) == (FinishReason.STOP, "")


async def test_sampling_parameters_are_not_sent(backend: AnthropicUpstream, wire: AnthropicWireServer) -> None:
    # API version 2026-10-21 (what the SDK speaks) answers 400 to any of them; the stand-in does too.
    _, finish = await run(backend, chat(user("hi"), sampling=Sampling(temperature=1.7, top_p=0.5, seed=3)))
    assert finish.reason is FinishReason.STOP
    sent = wire.requests[-1]
    assert sent.headers["anthropic-version"] == wire_server.LATEST_VERSION
    assert not {"temperature", "top_p", "top_k", "seed"} & sent.body.keys()


async def test_a_conversation_arrives_in_anthropic_shape(backend: AnthropicUpstream, wire: AnthropicWireServer) -> None:
    request = chat(
        Message(Role.SYSTEM, (TextPart("You are terse."),)),
        user("What is the weather?"),
        user("In Paris, please."),
        Message(
            Role.ASSISTANT,
            (TextPart("Checking."),),
            tool_calls=(ToolCall("toolu_a", "get_weather", '{"city": "Paris"}'), ToolCall("toolu_b", "get_time", "")),
        ),
        Message(Role.TOOL, (TextPart("18C, sunny"),), tool_call_id="toolu_a"),
        Message(Role.TOOL, (TextPart("14:05"),), tool_call_id="toolu_b"),
        Message(Role.SYSTEM, (TextPart("Answer in French."),)),
        tools=(WEATHER, TIME),
        tool_choice=ToolChoice(function_name="get_weather"),
        user="user-42",
    )
    deltas, _ = await run(backend, request)
    assert text_of(deltas) == "Tool results: toolu_a=18C, sunny; toolu_b=14:05"
    body = wire.message_bodies()[-1]
    assert body["system"] == "You are terse.\n\nAnswer in French."
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is the weather?"},
                {"type": "text", "text": "In Paris, please."},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_a", "content": "18C, sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_b", "content": "14:05"},
            ],
        },
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert body["metadata"] == {"user_id": "user-42"}


async def test_images_arrive_as_base64_and_url_sources(backend: AnthropicUpstream, wire: AnthropicWireServer) -> None:
    deltas, _ = await run(backend, chat(user("Compare these", PNG, "https://example.com/cat.jpg")))
    assert text_of(deltas) == "You said: Compare these [2 image(s)]"
    assert wire.message_bodies()[-1]["messages"][0]["content"][1:] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


# --- failures -----------------------------------------------------------------------------------


async def test_rate_limit_is_resource_exhausted_with_retry_after(backend: AnthropicUpstream) -> None:
    with pytest.raises(ResourceExhausted) as raised:
        await run(backend, chat(user("hi")), model=wire_server.RATE_LIMITED)
    assert raised.value.retry_after_seconds == wire_server.RETRY_AFTER_SECONDS


@pytest.mark.parametrize("model", [wire_server.BROKEN, wire_server.OVERLOADED])
async def test_server_errors_are_unavailable_before_any_event(backend: AnthropicUpstream, model: str) -> None:
    events: list[GenerationEvent] = []
    with pytest.raises(BackendUnavailable):
        await drain(backend.stream(ModelProfile(id=model), chat(user("hi")), GenerationLimits(64)), events)
    assert events == []  # so the gateway may still fall back to another candidate


async def test_a_failure_mid_stream_is_unavailable_after_the_first_delta(backend: AnthropicUpstream) -> None:
    events: list[GenerationEvent] = []
    stream = backend.stream(ModelProfile(id=wire_server.BREAKS_MID_STREAM), chat(user("hi")), GenerationLimits(64))
    with pytest.raises(BackendUnavailable):
        await drain(stream, events)
    assert events == [Delta("You ")]


async def test_a_request_the_api_refuses_is_rejected(backend: AnthropicUpstream) -> None:
    with pytest.raises(BackendRejected):
        await run(backend, chat(user("hi"), tools=(WEATHER,), tool_choice=ToolChoice(function_name="missing")))


async def test_closing_the_stream_early_disconnects_from_the_server(
    backend: AnthropicUpstream, wire: AnthropicWireServer
) -> None:
    wire.disconnected.clear()
    stream = backend.stream(ModelProfile(id=wire_server.SLOW), chat(user("go on")), GenerationLimits(64))
    assert await anext(stream) == Delta("word0 ")
    await stream.aclose()
    assert await asyncio.to_thread(wire.disconnected.wait, 10)
    assert backend.available  # the caller leaving is not the upstream failing


async def test_the_stand_in_answers_the_same_without_streaming(wire: AnthropicWireServer) -> None:
    async with anthropic.AsyncAnthropic(base_url=wire.base_url, api_key=API_KEY, max_retries=0) as client:
        message = await client.messages.create(
            model=wire_server.ECHO, max_tokens=64, messages=[{"role": "user", "content": "hello there"}]
        )
    assert message.stop_reason == "end_turn"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "You said: hello there"  # type: ignore[union-attr]
