"""Anthropic's Messages API inbound (issue #18): the official `anthropic` SDK against a real gateway on the
real default model, through `POST /v1/messages`: answers stream and not, the SDK's stream helper, system
prompts, stop sequences, `max_tokens`, a tool round trip, images on a model without vision, and errors
in Anthropic's shape with Anthropic's status codes (the credential judged before the body)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import MessageParam, TextBlock, ToolParam, ToolUseBlock

from tests.conftest import API_KEY
from tests.gateway_process import GatewayProcess, start_gateway
from tests.text_api_gateway import text_api_gateway

pytestmark = pytest.mark.slow

MODEL = "smollm2-135m-instruct"
PARIS: list[MessageParam] = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
GREEDY: dict[str, Any] = {"temperature": 0}  # current SDKs send no temperature: said as older clients say it
WEATHER: ToolParam = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
# A 1x1 PNG.
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def client(gateway: GatewayProcess, api_key: str = "unused") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.http_url, api_key=api_key, max_retries=0)


def text_of(message: anthropic.types.Message) -> str:
    return "".join(b.text for b in message.content if isinstance(b, TextBlock))


def test_a_message_names_paris(gateway: GatewayProcess) -> None:
    raw = client(gateway).messages.with_raw_response.create(
        model=MODEL, max_tokens=24, messages=PARIS, extra_body=GREEDY
    )
    message = raw.parse()
    assert raw.headers["x-lattice-model"] == MODEL
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert message.model == MODEL
    assert "Paris" in text_of(message)
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


def test_a_capability_expression_answers(gateway: GatewayProcess) -> None:
    message = client(gateway).messages.create(model="smollm*,gpt-4o", max_tokens=4, messages=PARIS)
    assert message.model == MODEL


def test_a_streamed_message_has_anthropics_events_in_order(gateway: GatewayProcess) -> None:
    events = list(
        client(gateway).messages.create(model=MODEL, max_tokens=24, messages=PARIS, stream=True, extra_body=GREEDY)
    )
    kinds = [e.type for e in events]  # the SDK drops `ping` (see the raw stream's test)
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta")
    assert "Paris" in text
    delta = events[-2]
    assert delta.type == "message_delta"
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens > 0 and (delta.usage.input_tokens or 0) > 0


def test_the_sdks_stream_helper_collects_the_message(gateway: GatewayProcess) -> None:
    with client(gateway).messages.stream(model=MODEL, max_tokens=24, messages=PARIS, extra_body=GREEDY) as stream:
        streamed = "".join(stream.text_stream)
        message = stream.get_final_message()
    assert "Paris" in streamed and text_of(message) == streamed
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


def test_the_system_prompt_reaches_the_model_as_a_string_or_blocks(gateway: GatewayProcess) -> None:
    def answer(system: Any) -> str:
        extra = {} if system is None else {"system": system}
        return text_of(
            client(gateway).messages.create(model=MODEL, max_tokens=16, messages=PARIS, extra_body=GREEDY | extra)
        )

    plain = answer(None)
    french = answer("Answer in French.")
    assert french != plain
    assert answer([{"type": "text", "text": "Answer in French."}]) == french


def test_max_tokens_ends_with_stop_reason_max_tokens(gateway: GatewayProcess) -> None:
    message = client(gateway).messages.create(
        model=MODEL,
        max_tokens=3,
        messages=[{"role": "user", "content": "Write a long story about a dragon."}],
        extra_body=GREEDY,
    )
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 3


def test_a_stop_sequence_cuts_the_answer_and_is_named(gateway: GatewayProcess) -> None:
    free = client(gateway).messages.create(
        model=MODEL, max_tokens=24, messages=PARIS, stop_sequences=["Rome"], extra_body=GREEDY
    )
    answer = text_of(free)
    assert " is Paris" in answer, answer  # the stop sequence below must occur inside the greedy answer
    assert (free.stop_reason, free.stop_sequence) == ("end_turn", None)  # asked for, not met
    cut = client(gateway).messages.create(
        model=MODEL, max_tokens=24, messages=PARIS, stop_sequences=["Rome", "Paris"], extra_body=GREEDY
    )
    assert text_of(cut) == answer[: answer.index("Paris")]
    assert (cut.stop_reason, cut.stop_sequence) == ("stop_sequence", "Paris")
    assert 0 < cut.usage.output_tokens < free.usage.output_tokens
    assert cut.usage.input_tokens == free.usage.input_tokens


def test_a_streamed_stop_sequence_is_named_in_message_delta(gateway: GatewayProcess) -> None:
    whole = client(gateway).messages.create(
        model=MODEL, max_tokens=24, messages=PARIS, stop_sequences=["Paris"], extra_body=GREEDY
    )
    events = list(
        client(gateway).messages.create(
            model=MODEL, max_tokens=24, messages=PARIS, stop_sequences=["Paris"], stream=True, extra_body=GREEDY
        )
    )
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta")
    assert text == text_of(whole) and text.strip()
    delta = events[-2]
    assert delta.type == "message_delta"
    assert (delta.delta.stop_reason, delta.delta.stop_sequence) == ("stop_sequence", "Paris")
    assert delta.usage.output_tokens == whole.usage.output_tokens
    with client(gateway).messages.stream(
        model=MODEL, max_tokens=24, messages=PARIS, stop_sequences=["Paris"], extra_body=GREEDY
    ) as stream:
        message = stream.get_final_message()
    assert (message.stop_reason, message.stop_sequence, text_of(message)) == ("stop_sequence", "Paris", text)


@pytest.fixture(scope="module")
def echo_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The default model, and the echo provider as an OpenAI-compatible upstream (`echo-1`) that names the
    stop string that ended its answer, as vLLM does."""
    with text_api_gateway(tmp_path_factory.mktemp("echo")) as process:
        yield process


def test_the_stop_sequence_an_openai_compatible_upstream_names_is_passed_on(echo_gateway: GatewayProcess) -> None:
    said: list[MessageParam] = [{"role": "user", "content": "alpha beta gamma delta"}]
    stops = ["zeta", "gamma"]
    message = client(echo_gateway).messages.create(model="echo-1", max_tokens=16, messages=said, stop_sequences=stops)
    assert (text_of(message), message.stop_reason, message.stop_sequence) == ("alpha beta ", "stop_sequence", "gamma")
    events = list(
        client(echo_gateway).messages.create(
            model="echo-1", max_tokens=16, messages=said, stop_sequences=stops, stream=True
        )
    )
    delta = events[-2]
    assert delta.type == "message_delta"
    assert (delta.delta.stop_reason, delta.delta.stop_sequence) == ("stop_sequence", "gamma")
    echo = client(echo_gateway)
    natural = echo.messages.create(model="echo-1", max_tokens=16, messages=said, stop_sequences=["zeta"])
    assert text_of(natural) == "alpha beta gamma delta"
    assert (natural.stop_reason, natural.stop_sequence) == ("end_turn", None)


def test_a_tool_round_trip(gateway: GatewayProcess) -> None:
    question: MessageParam = {"role": "user", "content": "What is the weather in Paris?"}
    first = client(gateway).messages.create(
        model=MODEL,
        max_tokens=64,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[question],
        extra_body=GREEDY,
    )
    assert first.stop_reason == "tool_use"
    calls = [b for b in first.content if isinstance(b, ToolUseBlock)]
    assert [c.name for c in calls] == ["get_weather"]
    assert isinstance(calls[0].input, dict) and "city" in calls[0].input
    # The tiny model would call again if it may: `none` has it answer from the result.
    second = client(gateway).messages.create(
        model=MODEL,
        max_tokens=24,
        tools=[WEATHER],
        tool_choice={"type": "none"},
        messages=[
            question,
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": calls[0].id, "content": "Sunny, 24 degrees"}],
            },
        ],
        extra_body=GREEDY,
    )
    assert second.stop_reason in ("end_turn", "max_tokens")
    assert text_of(second)


def test_a_streamed_tool_call_arrives_as_input_json_deltas(gateway: GatewayProcess) -> None:
    with client(gateway).messages.stream(
        model=MODEL,
        max_tokens=64,
        tools=[WEATHER],
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        extra_body=GREEDY,
    ) as stream:
        events = list(stream)
        message = stream.get_final_message()
    assert any(e.type == "content_block_delta" and e.delta.type == "input_json_delta" for e in events)
    calls = [b for b in message.content if isinstance(b, ToolUseBlock)]
    assert [c.name for c in calls] == ["get_weather"] and "city" in calls[0].input
    assert message.stop_reason == "tool_use"


def test_an_image_is_refused_clearly_on_a_model_without_vision(gateway: GatewayProcess) -> None:
    sources: list[Any] = [
        {"type": "base64", "media_type": "image/png", "data": PIXEL},
        {"type": "url", "url": "https://example.com/cat.png"},
    ]
    for source in sources:
        with pytest.raises(anthropic.BadRequestError) as refused:
            client(gateway).messages.create(
                model=MODEL,
                max_tokens=8,
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "image", "source": source},
                            {"type": "text", "text": "What is this?"},
                        ],
                    }
                ],
            )
        assert refused.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
        assert "vision" in refused.value.message.lower() or "image" in refused.value.message.lower()


# --- errors --------------------------------------------------------------------------------------------


def post(gateway: GatewayProcess, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{gateway.http_url}/v1/messages", json=body, headers=headers, timeout=120)


def anthropic_error(response: httpx.Response, status: int, type_: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error" and set(body["error"]) == {"type", "message"}, body
    assert body["error"]["type"] == type_, body
    assert body["error"]["message"]
    return str(body["error"]["message"])


def test_missing_max_tokens_is_refused_by_the_sdk_and_the_route(gateway: GatewayProcess) -> None:
    message = anthropic_error(post(gateway, {"model": MODEL, "messages": PARIS}), 400, "invalid_request_error")
    assert "max_tokens" in message


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"messages": []}, "messages"),
        ({"max_tokens": "3"}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"stream": "true"}, "stream"),
        ({"temperature": "0.5"}, "temperature"),
        ({"temperature": 1.5}, "temperature"),
        ({"stop_sequences": "x"}, "stop_sequences"),
        ({"system": 5}, "system"),
        ({"messages": [{"role": "system", "content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": [{"type": "video"}]}]}, "messages[0].content[0].type"),
        ({"tools": [{"name": "f"}]}, "tools[0].input_schema"),
        ({"tool_choice": {"type": "maybe"}}, "tool_choice.type"),
        ({"tool_choice": {"type": "any"}}, "tool_choice"),
        ({"top_k": 5}, "top_k"),
        ({"messages": [{"role": "user", "content": []}]}, "messages[0].content"),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "thinking"),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}]},
            "messages[0].content[0]",
        ),
    ],
)
def test_invalid_bodies_are_invalid_request_errors(gateway: GatewayProcess, extra: dict[str, Any], param: str) -> None:
    body = {"model": MODEL, "max_tokens": 8, "messages": PARIS, **extra}
    assert param in anthropic_error(post(gateway, body), 400, "invalid_request_error")


def test_not_json_is_an_invalid_request_error(gateway: GatewayProcess) -> None:
    response = httpx.post(f"{gateway.http_url}/v1/messages", content=b"{", headers={"content-type": "application/json"})
    anthropic_error(response, 400, "invalid_request_error")


def test_an_unknown_model_is_not_found(gateway: GatewayProcess) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        client(gateway).messages.create(model="claude-no-such-model", max_tokens=8, messages=PARIS)
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


def test_count_tokens_is_not_found_in_anthropics_shape(gateway: GatewayProcess) -> None:
    with pytest.raises(anthropic.NotFoundError):
        client(gateway).messages.count_tokens(model=MODEL, messages=PARIS)


def test_keys_come_as_x_api_key_or_bearer(keyed_gateway: GatewayProcess) -> None:
    # The SDK sends `Authorization: Bearer`; older clients and curl examples send `x-api-key`.
    assert text_of(client(keyed_gateway, API_KEY).messages.create(model=MODEL, max_tokens=4, messages=PARIS))
    headers = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
    response = post(keyed_gateway, {"model": MODEL, "max_tokens": 4, "messages": PARIS}, headers)
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "message"


def test_a_wrong_key_is_an_authentication_error_before_the_body(keyed_gateway: GatewayProcess) -> None:
    with pytest.raises(anthropic.AuthenticationError) as refused:
        client(keyed_gateway, "wrong-key").messages.create(model=MODEL, max_tokens=4, messages=PARIS)
    assert refused.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    for headers in ({}, {"x-api-key": "wrong-key"}):
        anthropic_error(post(keyed_gateway, {"model": MODEL, "messages": "hi"}, headers), 401, "authentication_error")
    # With the right key, the same body is the 400 it is.
    anthropic_error(
        post(keyed_gateway, {"model": MODEL, "messages": "hi"}, {"x-api-key": API_KEY}), 400, "invalid_request_error"
    )


def test_a_wrong_method_or_path_is_answered_in_anthropics_shape(gateway: GatewayProcess) -> None:
    anthropic_error(httpx.get(f"{gateway.http_url}/v1/messages"), 405, "invalid_request_error")
    anthropic_error(httpx.post(f"{gateway.http_url}/v1/messages/batches", json={}), 404, "not_found_error")


def test_a_streamed_refusal_gets_its_status_not_a_stream(gateway: GatewayProcess) -> None:
    body = {"model": "no-such-model", "max_tokens": 4, "messages": PARIS, "stream": True}
    anthropic_error(post(gateway, body), 404, "not_found_error")


def test_stream_events_are_named_as_their_type(gateway: GatewayProcess) -> None:
    body = {"model": MODEL, "max_tokens": 4, "messages": PARIS, "stream": True}
    with httpx.stream("POST", f"{gateway.http_url}/v1/messages", json=body, timeout=120) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    names = [line.removeprefix("event: ") for line in lines[0::2]]
    payloads = [json.loads(line.removeprefix("data: ")) for line in lines[1::2]]
    assert names == [p["type"] for p in payloads]
    assert names[:3] == ["message_start", "content_block_start", "ping"] and names[-1] == "message_stop"


@pytest.fixture(scope="module")
def one_slot_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The default model with one slot and no queue: a second request while one runs is refused at once."""
    process = start_gateway(tmp_path_factory.mktemp("one-slot"), LATTICE_LLAMACPP_PARALLEL="1", LATTICE_QUEUE_SIZE="0")
    yield process
    process.stop()


def test_a_full_gateway_is_overloaded_529_while_a_stream_holds_the_slot(one_slot_gateway: GatewayProcess) -> None:
    counting: list[MessageParam] = [{"role": "user", "content": "Count from 1 to 200, separated by commas."}]
    with client(one_slot_gateway).messages.stream(
        model=MODEL, max_tokens=256, messages=counting, extra_body=GREEDY
    ) as busy:
        next(iter(busy.text_stream))  # the one slot is taken: the answer has begun
        with pytest.raises(anthropic.APIStatusError) as refused:
            client(one_slot_gateway).messages.create(model=MODEL, max_tokens=4, messages=PARIS)
    assert isinstance(refused.value, anthropic.OverloadedError) and refused.value.status_code == 529
    assert refused.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    assert refused.value.response.headers["retry-after"]
