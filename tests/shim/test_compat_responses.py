"""`POST /v1/responses` (OpenAI's Responses API) driven by the real OpenAI SDK and the OpenAI Agents SDK
on its default model class (OpenAIResponsesModel), against a real gateway on the real default model.

Every answer is checked against the SDK's own types by validation (the SDK itself parses leniently):
the `response` object with `openai.types.responses.Response`, each stream event with
`ResponseStreamEvent`. Errors come in OpenAI's envelope, the credential judged before the body."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_default_openai_client,
    set_tracing_disabled,
)
from agents.exceptions import ModelBehaviorError
from agents.models.openai_provider import OpenAIProvider
from openai.types.responses import Response, ResponseOutputMessage, ResponseOutputText, ResponseStreamEvent
from pydantic import BaseModel, TypeAdapter

from tests.conftest import API_KEY
from tests.gateway_process import GatewayProcess

pytestmark = pytest.mark.slow

MODEL = "smollm2-135m-instruct"
PARIS = "What is the capital of France? Answer in one word."
WEATHER: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
EVENTS: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)


def client(gateway: GatewayProcess, api_key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.http_url}/v1", api_key=api_key, max_retries=0)


def create(gateway: GatewayProcess, **body: Any) -> tuple[Response, dict[str, Any]]:
    """A unary response through the SDK, validated strictly against the SDK's `Response` type; and its JSON."""
    raw = client(gateway).responses.with_raw_response.create(**body)
    assert raw.headers["x-lattice-model"] == MODEL
    answer: dict[str, Any] = raw.http_response.json()
    return Response.model_validate(answer), answer


def stream_events(gateway: GatewayProcess, **body: Any) -> list[ResponseStreamEvent]:
    """A streamed response's events, read off the wire and validated strictly against the SDK's types."""
    events: list[ResponseStreamEvent] = []
    with httpx.stream("POST", f"{gateway.http_url}/v1/responses", json={**body, "stream": True}, timeout=120) as r:
        assert r.status_code == 200, r.read()
        name = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                event = EVENTS.validate_python(json.loads(line.removeprefix("data: ")))
                assert event.type == name
                events.append(event)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    return events


def test_a_string_input_is_answered(gateway: GatewayProcess) -> None:
    response, answer = create(gateway, model=MODEL, input=PARIS, temperature=0, max_output_tokens=24)
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status == "completed" and response.incomplete_details is None
    assert response.model == MODEL
    assert "Paris" in response.output_text
    [message] = response.output
    assert message.type == "message" and message.role == "assistant" and message.status == "completed"
    assert message.id.startswith("msg_")
    usage = response.usage
    assert usage is not None and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert answer["store"] is False  # stateless: nothing is kept, whatever `store` asked


def test_the_stream_sends_the_typed_events_in_order(gateway: GatewayProcess) -> None:
    events = stream_events(gateway, model=MODEL, input=PARIS, temperature=0, max_output_tokens=24)
    types = [e.type for e in events]
    deltas = types.count("response.output_text.delta")
    assert deltas > 1
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    created, completed = events[0], events[-1]
    assert created.type == "response.created" and created.response.status == "in_progress"
    assert completed.type == "response.completed" and completed.response.status == "completed"
    assert completed.response.id == created.response.id
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert completed.response.output_text == text
    done = next(e for e in events if e.type == "response.output_text.done")
    assert done.type == "response.output_text.done" and done.text == text
    unary, _ = create(gateway, model=MODEL, input=PARIS, temperature=0, max_output_tokens=24)
    assert text == unary.output_text, "greedy decoding answers the same streamed or not"
    assert completed.response.usage is not None and completed.response.usage.output_tokens > 0


def test_the_sdk_streams_and_collects_the_final_response(gateway: GatewayProcess) -> None:
    with client(gateway).responses.stream(model=MODEL, input=PARIS, temperature=0, max_output_tokens=24) as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert "Paris" in text and final.output_text == text


def chat_prompt_tokens(gateway: GatewayProcess, messages: list[dict[str, Any]]) -> int:
    body = {"model": MODEL, "messages": messages, "max_tokens": 1}
    answer = httpx.post(f"{gateway.http_url}/v1/chat/completions", json=body, timeout=120)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["usage"]["prompt_tokens"])


def test_instructions_and_input_items_are_the_chat_they_say(gateway: GatewayProcess) -> None:
    """The model sees the prompt the same conversation makes through chat completions, token for token."""
    instructions = "You are a geography teacher."
    instructed, answer = create(
        gateway, model=MODEL, instructions=instructions, input=PARIS, temperature=0, max_output_tokens=2
    )
    assert answer["instructions"] == instructions
    chat = [{"role": "system", "content": instructions}, {"role": "user", "content": PARIS}]
    assert instructed.usage is not None and instructed.usage.input_tokens == chat_prompt_tokens(gateway, chat)

    items: Any = [
        {"role": "developer", "content": "Answer briefly."},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Name a colour."}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Blue."}]},
        {"role": "user", "content": PARIS},
    ]
    answered, _ = create(gateway, model=MODEL, input=items, temperature=0, max_output_tokens=2)
    chat = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": PARIS},
    ]
    assert answered.usage is not None and answered.usage.input_tokens == chat_prompt_tokens(gateway, chat)


@pytest.mark.parametrize("stream", [False, True])
def test_max_output_tokens_makes_it_incomplete(gateway: GatewayProcess, stream: bool) -> None:
    body = {"model": MODEL, "input": "Tell me a long story about a dragon.", "temperature": 0, "max_output_tokens": 3}
    if stream:
        last = stream_events(gateway, **body)[-1]
        assert last.type == "response.incomplete"
        response = last.response
    else:
        response, _ = create(gateway, **body)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None and response.usage.output_tokens == 3
    assert response.output[0].type == "message" and response.output[0].status == "incomplete"


CITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
    "additionalProperties": False,
}


def test_a_json_schema_text_format_constrains_the_answer(gateway: GatewayProcess) -> None:
    text_format = {"type": "json_schema", "name": "place", "schema": CITY_SCHEMA, "strict": True}
    response, answer = create(
        gateway, model=MODEL, input=PARIS, text={"format": text_format}, temperature=0, max_output_tokens=48
    )
    jsonschema.validate(json.loads(response.output_text), CITY_SCHEMA)
    assert answer["text"]["format"] == text_format


class Place(BaseModel):
    city: str
    country: str


def test_responses_parse_gives_a_pydantic_object(gateway: GatewayProcess) -> None:
    parsed = client(gateway).responses.parse(
        model=MODEL, input=PARIS, text_format=Place, temperature=0, max_output_tokens=48
    )
    assert isinstance(parsed.output_parsed, Place)


def test_a_json_object_text_format_answers_json(gateway: GatewayProcess) -> None:
    response, _ = create(
        gateway,
        model=MODEL,
        input="What is the capital of France? Reply in JSON.",
        text={"format": {"type": "json_object"}},
        temperature=0,
        max_output_tokens=64,
    )
    assert response.status == "completed"
    assert isinstance(json.loads(response.output_text), dict)


@pytest.mark.parametrize("stream", [False, True])
def test_a_function_tool_round_trip(gateway: GatewayProcess, stream: bool) -> None:
    """A named tool choice makes SmolLM2 call (llama.cpp emulates tools by constrained decoding); the call
    and its output go back as `function_call` and `function_call_output` items, and the model answers."""
    ask: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
    body: dict[str, Any] = {
        "model": MODEL,
        "input": ask,
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "temperature": 0,
        "max_output_tokens": 64,
    }
    if stream:
        events = stream_events(gateway, **body)
        types = [e.type for e in events]
        assert "response.function_call_arguments.delta" in types
        done = next(e for e in events if e.type == "response.function_call_arguments.done")
        last = events[-1]
        assert last.type == "response.completed"
        response = last.response
        assert done.type == "response.function_call_arguments.done"
        assert types.index("response.function_call_arguments.done") < types.index("response.output_item.done")
    else:
        response, _ = create(gateway, **body)
    calls = [item for item in response.output if item.type == "function_call"]
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "get_weather" and call.call_id and call.id and call.id.startswith("fc_")
    jsonschema.validate(json.loads(call.arguments), WEATHER["parameters"])
    if stream:
        assert done.arguments == call.arguments
    assert response.status == "completed"

    history: Any = [
        *ask,
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"},
    ]
    follow_up, _ = create(
        gateway, model=MODEL, input=history, tools=[WEATHER], tool_choice="none", temperature=0, max_output_tokens=16
    )
    assert follow_up.output_text
    assert all(item.type == "message" for item in follow_up.output)


# --- errors -----------------------------------------------------------------------------------------


def post(gateway: GatewayProcess, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{gateway.http_url}/v1/responses", json=body, headers=headers, timeout=120)


def refused(response: httpx.Response, code: str, param: str | None) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, param), error
    return str(error["message"])


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({}, "missing_required_parameter", "input"),
        ({"input": 5}, "invalid_type", "input"),
        ({"input": []}, "invalid_value", "input"),
        ({"input": "hi", "stream": "yes"}, "invalid_type", "stream"),
        ({"input": "hi", "max_output_tokens": "3"}, "invalid_type", "max_output_tokens"),
        ({"input": "hi", "temperature": "0.5"}, "invalid_type", "temperature"),
        ({"input": "hi", "metadata": {"a": 1}}, "invalid_type", "metadata.a"),
        ({"input": "hi", "metadata": {str(i): "v" for i in range(17)}}, "invalid_value", "metadata"),
        ({"input": [{"content": "hi"}]}, "missing_required_parameter", "input[0].role"),
        ({"input": [{"role": "wizard", "content": "hi"}]}, "invalid_value", "input[0].role"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "invalid_value",
            "input[0].content[0].type",
        ),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "invalid_value", "input[0].type"),
        (
            {"input": [{"type": "function_call_output", "output": "x"}]},
            "missing_required_parameter",
            "input[0].call_id",
        ),
        ({"input": "hi", "tools": [{"type": "function"}]}, "missing_required_parameter", "tools[0].name"),
        ({"input": "hi", "tool_choice": "required"}, "invalid_value", "tool_choice"),
        ({"input": "hi", "text": {"format": {"type": "yaml"}}}, "invalid_value", "text.format.type"),
        (
            {"input": "hi", "text": {"format": {"type": "json_schema", "name": "x"}}},
            "missing_required_parameter",
            "text.format.schema",
        ),
        ({"input": "hi", "truncation": "auto"}, "unsupported_value", "truncation"),
        ({"input": "hi", "reasoning": {"effort": "high"}}, "unsupported_parameter", "reasoning.effort"),
    ],
)
def test_bad_bodies_get_openai_errors_naming_the_parameter(
    gateway: GatewayProcess, body: dict[str, Any], code: str, param: str
) -> None:
    refused(post(gateway, body), code, param)


def test_built_in_tools_are_refused_by_name(gateway: GatewayProcess) -> None:
    body = {"input": "hi", "tools": [WEATHER, {"type": "web_search"}]}
    message = refused(post(gateway, body), "invalid_value", "tools[1].type")
    assert "web_search" in message


def test_previous_response_id_is_refused_by_name(gateway: GatewayProcess) -> None:
    with pytest.raises(openai.BadRequestError) as refusal:
        client(gateway).responses.create(model=MODEL, input="hi", previous_response_id="resp_123")
    assert refusal.value.param == "previous_response_id"
    assert refusal.value.code == "unsupported_parameter"
    assert "previous_response_id" in refusal.value.message


def test_an_unknown_model_is_404_in_the_openai_envelope(gateway: GatewayProcess) -> None:
    with pytest.raises(openai.NotFoundError) as refusal:
        client(gateway).responses.create(model="no-such-model", input="hi", max_output_tokens=2)
    assert refusal.value.code == "model_not_found"


@pytest.mark.parametrize("stream", [False, True])
def test_the_credential_is_judged_before_the_body(keyed_gateway: GatewayProcess, stream: bool) -> None:
    for bad in ({"input": 5, "stream": stream}, {"input": "hi", "previous_response_id": "r", "stream": stream}):
        response = post(keyed_gateway, bad, {"x-api-key": "wrong"})
        assert response.status_code == 401, response.text
        assert response.json()["error"]["type"] == "authentication_error"
        assert post(keyed_gateway, bad, {"x-api-key": API_KEY}).status_code == 400
    good = client(keyed_gateway, API_KEY).responses.create(model=MODEL, input="hi", max_output_tokens=2, stream=stream)
    assert good is not None


# --- the OpenAI Agents SDK, on its default model class (OpenAIResponsesModel) ------------------------


@pytest.fixture
def agents_on_the_gateway(gateway: GatewayProcess) -> None:
    """The Agents SDK's default client pointed at the gateway; no tracing (it would export to OpenAI)."""
    set_tracing_disabled(True)
    set_default_openai_client(
        openai.AsyncOpenAI(base_url=f"{gateway.http_url}/v1", api_key="unused", max_retries=0), use_for_tracing=False
    )


GREEDY = ModelSettings(temperature=0, max_tokens=24)


@pytest.mark.usefixtures("agents_on_the_gateway")
async def test_an_agent_answers_a_question() -> None:
    assert isinstance(OpenAIProvider().get_model(MODEL), OpenAIResponsesModel), "the SDK's default model class"
    agent = Agent(name="geographer", instructions="Answer in one word.", model=MODEL, model_settings=GREEDY)
    result = await Runner.run(agent, "What is the capital of France?")
    assert "Paris" in result.final_output
    streamed = Runner.run_streamed(agent, "What is the capital of France?")
    async for _event in streamed.stream_events():
        pass
    assert streamed.final_output == result.final_output


@pytest.mark.usefixtures("agents_on_the_gateway")
async def test_an_agent_calls_a_function_tool() -> None:
    cities: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        cities.append(city)
        return f"Sunny, 21 C in {city}"

    # A named choice makes the small model call; the run stops at the tool's result (with `auto` after the
    # call, a 135M model may keep calling instead of answering).
    agent = Agent(
        name="forecaster",
        instructions="Use the tools.",
        model=MODEL,
        tools=[get_weather],
        model_settings=ModelSettings(temperature=0, max_tokens=64, tool_choice="get_weather"),
        tool_use_behavior="stop_on_first_tool",
    )
    result = await Runner.run(agent, "What is the weather in Paris?")
    assert len(cities) == 1
    assert result.final_output == f"Sunny, 21 C in {cities[0]}"
    streamed = Runner.run_streamed(agent, "What is the weather in Paris?")
    async for _event in streamed.stream_events():
        pass
    assert cities == [cities[0]] * 2, "greedy decoding calls the same way streamed"
    assert streamed.final_output == result.final_output


@pytest.mark.usefixtures("agents_on_the_gateway")
async def test_an_agent_sees_a_truncated_answer_as_incomplete() -> None:
    # The SDK raises on `status: incomplete`, as on OpenAI: the status reaches it as OpenAI would send it.
    agent = Agent(name="rambler", model=MODEL, model_settings=ModelSettings(temperature=0, max_tokens=2))
    with pytest.raises(ModelBehaviorError, match="max_output_tokens"):
        await Runner.run(agent, "Tell me a long story about a dragon.")


@pytest.mark.parametrize("stream", [False, True])
def test_output_text_logprobs_are_given_when_included(gateway: GatewayProcess, stream: bool) -> None:
    body: dict[str, Any] = {
        "model": MODEL,
        "input": PARIS,
        "temperature": 0,
        "max_output_tokens": 4,
        "include": ["message.output_text.logprobs"],
        "top_logprobs": 2,
    }
    if stream:
        events = stream_events(gateway, **body)
        deltas = [e for e in events if e.type == "response.output_text.delta"]
        assert deltas and all(len(e.logprobs) == 1 for e in deltas)
        last = events[-1]
        assert last.type == "response.incomplete"
        response = last.response
    else:
        response, _ = create(gateway, **body)
    message = response.output[0]
    assert isinstance(message, ResponseOutputMessage)
    part = message.content[0]
    assert isinstance(part, ResponseOutputText) and part.logprobs is not None and len(part.logprobs) == 4
    assert all(len(p.top_logprobs) == 2 and p.logprob <= 0 for p in part.logprobs)
    assert "".join(p.token for p in part.logprobs) == part.text


def test_an_image_for_a_model_without_vision_is_refused_by_the_server(gateway: GatewayProcess) -> None:
    image = {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}
    body = {"model": MODEL, "input": [{"role": "user", "content": [image]}], "max_output_tokens": 2}
    response = post(gateway, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "no_model_satisfies"
