"""The llama.cpp engine on the real SmolLM2 GGUF, through the gateway's default setup (the OpenAI SDK on the shim).

llama.cpp is its own reference here: the gateway's greedy answers must be exactly what `xllamacpp`
answers when called directly in this process with the same options, and its token counts exactly
those of the GGUF's tokenizer (tests/data/smollm2_golden_tokens.json, made by llama-cpp-python).
"""

from __future__ import annotations

import asyncio
import json
import pathlib
from collections.abc import Iterator
from typing import Any

import jsonschema
import openai
import pydantic
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from lattice.config import Settings
from lattice.server.backends.default_model import default_gguf_path
from lattice.server.backends.llamacpp.cpu import default_threads
from lattice.server.backends.llamacpp.engine import EngineOptions, server_params
from tests.gateway_process import GatewayProcess, start_gateway

pytestmark = pytest.mark.slow

REPO = pathlib.Path(__file__).resolve().parents[2]
GOLDEN: dict[str, Any] = json.loads((REPO / "tests/data/smollm2_golden_tokens.json").read_text(encoding="utf-8"))
MODEL = "smollm2-135m-instruct"
PARIS: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "What is the capital of France? Answer in one word."}
]
WEATHER: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME: ChatCompletionToolParam = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}},
}
ASK_WEATHER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What's the weather in Paris?"}]


def client(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.http_url}/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def mlx_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = start_gateway(tmp_path_factory.mktemp("mlx-engine"), LATTICE_ENGINE="mlx")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def twin_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway that serves only what `direct` is also asked. llama.cpp reuses a slot's cached prompt
    prefix, and a prefix computed in another batch gives slightly different numbers (llama-server's docs
    say so of `cache_prompt`), so a greedy answer can depend on the requests the engine saw before: after
    tests/api/test_grpc_api.py's stop-string chats, the session's gateway answered "What is the capital of
    France?" differently from a fresh engine. The comparison runs on a gateway whose engine sees the same
    requests in the same order as `direct`."""
    process = start_gateway(tmp_path_factory.mktemp("llamacpp-twin"))
    yield process
    process.stop()


@pytest.fixture(scope="module")
def direct() -> Any:
    """xllamacpp itself, in this process, with the options the gateway uses by default."""
    import xllamacpp

    settings = Settings()
    options = EngineOptions(
        threads=default_threads(mlx_also_runs=False),
        parallel=settings.llamacpp_parallel,
        context_tokens=2 * 8192,
        batch_tokens=settings.llamacpp_batch_tokens,
    )
    params = server_params(default_gguf_path(), options)
    return xllamacpp.Server(params)


def test_the_default_model_runs_on_llamacpp_and_says_so(gateway: GatewayProcess) -> None:
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="", messages=PARIS, temperature=0, max_tokens=16
    )
    completion = raw.parse()
    assert raw.headers["x-lattice-model"] == MODEL
    assert completion.model_extra is not None
    assert completion.model_extra["lattice"]["resolution"]["backend"] == "llamacpp"


@pytest.mark.parametrize("engine", ["llamacpp", "mlx"])
def test_paris_at_temperature_0_on_both_engines(
    engine: str, gateway: GatewayProcess, request: pytest.FixtureRequest
) -> None:
    target = gateway if engine == "llamacpp" else request.getfixturevalue("mlx_gateway")
    completion = client(target).chat.completions.create(model="", messages=PARIS, temperature=0, max_tokens=16)
    assert "Paris" in (completion.choices[0].message.content or "")
    assert completion.model_extra is not None
    assert completion.model_extra["lattice"]["resolution"]["backend"] == engine


@pytest.mark.parametrize("chat", GOLDEN["greedy_chats"], ids=lambda c: c["messages"][-1]["content"][:24])
def test_greedy_answers_and_token_counts_are_llamacpps_own(
    chat: dict[str, Any], twin_gateway: GatewayProcess, direct: Any
) -> None:
    body = {"messages": chat["messages"], "temperature": 0, "max_tokens": 24}
    expected = direct.handle_chat_completions(body)
    completion = client(twin_gateway).chat.completions.create(model=MODEL, **body)
    assert completion.choices[0].message.content == expected["choices"][0]["message"]["content"]
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == len(chat["prompt_ids"])  # the GGUF tokenizer's count, exactly
    assert completion.usage.completion_tokens == expected["usage"]["completion_tokens"]


CAPITALS = {
    "France": "Paris",
    "Italy": "Rome",
    "Japan": "Tokyo",
    "Germany": "Berlin",
    "Spain": "Madrid",
    "England": "London",
    "Russia": "Moscow",
    "Greece": "Athens",
}


async def test_eight_concurrent_streams_each_answer_their_own_question(gateway: GatewayProcess) -> None:
    """Decoded in one batch. llama.cpp's numbers depend on the batch's size, so a batched greedy answer
    may differ from the same question asked alone in its wording; each must still be its own right answer."""
    async_client = openai.AsyncOpenAI(base_url=f"{gateway.http_url}/v1", api_key="unused", max_retries=0)

    async def streamed(country: str) -> tuple[str, str | None]:
        stream = await async_client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": f"What is the capital of {country}? Answer in one word."}],
            temperature=0,
            max_tokens=16,
            stream=True,
        )
        chunks = [c async for c in stream if c.choices]
        return "".join(c.choices[0].delta.content or "" for c in chunks), chunks[-1].choices[0].finish_reason

    answers = await asyncio.gather(*(streamed(country) for country in CAPITALS))
    for (country, capital), (text, finish) in zip(CAPITALS.items(), answers, strict=True):
        assert capital in text, (country, text)
        assert finish == "stop"
        others = set(CAPITALS.values()) - {capital}
        assert not any(other in text for other in others), (country, text)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("choice", ["required", "named"])
def test_tool_call_round_trip(gateway: GatewayProcess, stream: bool, choice: str) -> None:
    """SmolLM2's template has no tools: the engine describes them and constrains the answer to a call."""
    tool_choice: Any = "required" if choice == "required" else {"type": "function", "function": {"name": "get_time"}}
    openai_client = client(gateway)
    arguments = dict(
        model=MODEL, messages=ASK_WEATHER, tools=[WEATHER, TIME], tool_choice=tool_choice, temperature=0, max_tokens=128
    )
    if stream:
        calls: dict[int, dict[str, str]] = {}
        finish = None
        for chunk in openai_client.chat.completions.create(**arguments, stream=True):
            for fragment in chunk.choices[0].delta.tool_calls or ():
                call = calls.setdefault(fragment.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += fragment.id or ""
                call["name"] += fragment.function.name or ""
                call["arguments"] += fragment.function.arguments or ""
            finish = chunk.choices[0].finish_reason or finish
        made = list(calls.values())
    else:
        completion = openai_client.chat.completions.create(**arguments)
        finish = completion.choices[0].finish_reason
        made = [
            {"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
            for c in completion.choices[0].message.tool_calls or ()
        ]
    assert finish == "tool_calls"
    assert len(made) == 1 and made[0]["id"].startswith("call_")
    assert made[0]["name"] in ("get_weather", "get_time") if choice == "required" else made[0]["name"] == "get_time"
    schema = (WEATHER if made[0]["name"] == "get_weather" else TIME)["function"]["parameters"]
    jsonschema.validate(json.loads(made[0]["arguments"]), schema)

    # The call and its result go back as history; the model answers with them in its context.
    function = {"name": made[0]["name"], "arguments": made[0]["arguments"]}
    history: list[ChatCompletionMessageParam] = [
        *ASK_WEATHER,
        {"role": "assistant", "tool_calls": [{"id": made[0]["id"], "type": "function", "function": function}]},  # type: ignore[typeddict-item]
        {"role": "tool", "tool_call_id": made[0]["id"], "content": "Sunny, 21 C"},
    ]
    follow_up = openai_client.chat.completions.create(
        model=MODEL, messages=history, tools=[WEATHER, TIME], tool_choice="none", temperature=0, max_tokens=16
    )
    assert follow_up.choices[0].finish_reason in ("stop", "length")
    assert follow_up.choices[0].message.content


def test_json_schema_answers_parse_and_validate(gateway: GatewayProcess) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
        "additionalProperties": False,
    }
    completion = client(gateway).chat.completions.create(
        model="json",
        messages=[{"role": "user", "content": "Describe Paris."}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema, "strict": True}},
        temperature=0,
        max_tokens=64,
    )
    jsonschema.validate(json.loads(completion.choices[0].message.content or ""), schema)


def test_json_object_answers_parse(gateway: GatewayProcess) -> None:
    completion = client(gateway).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Give me a JSON object about a cat."}],
        response_format={"type": "json_object"},
        temperature=0,
        max_tokens=48,
    )
    if completion.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)


class Person(pydantic.BaseModel):
    # Bounded, so the grammar closes the object within max_tokens whatever name greedy decoding picks
    # (unbounded, a name once ran past 48 tokens when the slot's cache held another test's prompt).
    name: str = pydantic.Field(max_length=40)
    age: int


def test_the_sdks_parse_with_a_pydantic_model(gateway: GatewayProcess) -> None:
    completion = client(gateway).chat.completions.parse(
        model=MODEL,
        messages=[{"role": "user", "content": "Invent a person."}],
        response_format=Person,
        temperature=0,
        max_tokens=96,
    )
    assert isinstance(completion.choices[0].message.parsed, Person)


@pytest.mark.parametrize("stream", [False, True])
def test_logprobs_come_back(gateway: GatewayProcess, stream: bool) -> None:
    arguments: dict[str, Any] = dict(
        model=MODEL, messages=PARIS, temperature=0, max_tokens=4, logprobs=True, top_logprobs=2
    )
    if stream:
        chunks = list(client(gateway).chat.completions.create(**arguments, stream=True))
        tokens = [t for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content or ()]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        completion = client(gateway).chat.completions.create(**arguments)
        assert completion.choices[0].logprobs is not None
        tokens = list(completion.choices[0].logprobs.content or ())
        text = completion.choices[0].message.content or ""
    assert len(tokens) == 4
    assert "".join(t.token for t in tokens) == text
    for token in tokens:
        assert token.logprob <= 0
        assert len(token.top_logprobs) == 2
        assert token.top_logprobs[0].logprob >= token.top_logprobs[1].logprob


def test_same_seed_same_text(gateway: GatewayProcess) -> None:
    def sample() -> str | None:
        completion = client(gateway).chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Tell me a story."}],
            temperature=1,
            seed=42,
            max_tokens=24,
        )
        return completion.choices[0].message.content

    assert sample() == sample()


def test_stop_and_max_tokens(gateway: GatewayProcess) -> None:
    stopped = client(gateway).chat.completions.create(
        model=MODEL, messages=PARIS, temperature=0, max_tokens=16, stop=["Paris"]
    )
    assert stopped.choices[0].finish_reason == "stop"
    assert "Paris" not in (stopped.choices[0].message.content or "")
    capped = client(gateway).chat.completions.create(model=MODEL, messages=PARIS, temperature=0, max_tokens=2)
    assert capped.choices[0].finish_reason == "length"
    assert capped.usage is not None and capped.usage.completion_tokens == 2


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": "not an object"}}},
            "response_format.json_schema.schema",
        ),
        ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(gateway: GatewayProcess, body: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client(gateway).chat.completions.create(model=MODEL, messages=PARIS, max_tokens=4, **body)
    error = refused.value.body
    assert isinstance(error, dict)
    assert error["param"] == param


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({"tools": [WEATHER], "tool_choice": "required"}, "tools"),
        ({"response_format": {"type": "json_object"}}, "json_mode"),
        ({"logprobs": True}, "logprobs"),
    ],
)
def test_mlx_refuses_what_it_cannot_do(mlx_gateway: GatewayProcess, body: dict[str, Any], missing: str) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client(mlx_gateway).chat.completions.create(model=MODEL, messages=PARIS, max_tokens=4, **body)
    error = refused.value.body
    assert isinstance(error, dict)
    assert error["code"] == "no_model_satisfies"
    assert missing in error["message"]


def test_tool_history_alone_needs_no_tool_capable_model(mlx_gateway: GatewayProcess) -> None:
    history: list[ChatCompletionMessageParam] = [
        *ASK_WEATHER,
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
    ]
    completion = client(mlx_gateway).chat.completions.create(
        model=MODEL, messages=history, tools=[WEATHER], tool_choice="none", max_tokens=4
    )
    assert completion.choices[0].finish_reason in ("stop", "length")
