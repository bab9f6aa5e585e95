"""The llama.cpp engine's plain parts: tool emulation, the request body, the GGUF header, engine choice."""

from __future__ import annotations

import json

import jsonschema
import pytest

from lattice.config import ModelProfile, Settings
from lattice.errors import BackendFailed, ContextLengthExceeded, InvalidArgument
from lattice.server.backends.default_model import default_gguf_path
from lattice.server.backends.engines import engine_of
from lattice.server.backends.llamacpp.engine import engine_error
from lattice.server.backends.llamacpp.gguf_metadata import NotAGgufFile, read_metadata
from lattice.server.backends.llamacpp.request import chat_body
from lattice.server.backends.llamacpp.tool_emulation import ToolEmulation, template_supports_tools
from lattice.server.chat import ChatRequest, Message, Role, TextPart, Tool, ToolCall, ToolChoice

WEATHER = Tool("get_weather", "The weather", {"type": "object", "properties": {"city": {"type": "string"}}})
TIME = Tool("get_time")


def user(text: str) -> Message:
    return Message(Role.USER, (TextPart(text),))


def request(**fields: object) -> ChatRequest:
    return ChatRequest("m", (user("weather in Paris?"),), **fields)  # type: ignore[arg-type]


def test_the_default_ggufs_template_has_no_tools() -> None:
    metadata = read_metadata(default_gguf_path())
    assert metadata["general.architecture"] == "llama"
    assert metadata["llama.context_length"] == 8192
    assert not template_supports_tools(metadata["tokenizer.chat_template"])
    assert template_supports_tools("{% if tools %}{{ tools | tojson }}{% endif %}")


def test_a_file_that_is_not_gguf_is_refused(tmp_path: object) -> None:
    import pathlib

    path = pathlib.Path(str(tmp_path)) / "x.gguf"
    path.write_bytes(b"not a gguf at all")
    with pytest.raises(NotAGgufFile):
        read_metadata(path)


@pytest.mark.parametrize(
    ("choice", "emulated"),
    [(None, True), (ToolChoice(mode="auto"), True), (ToolChoice(mode="required"), True), (ToolChoice("none"), False)],
)
def test_only_requests_that_may_call_tools_are_emulated(choice: ToolChoice | None, emulated: bool) -> None:
    assert (ToolEmulation.for_request(request(tools=(WEATHER,), tool_choice=choice)) is not None) is emulated


def test_required_schema_admits_exactly_calls_of_the_tools() -> None:
    emulation = ToolEmulation.for_request(request(tools=(WEATHER, TIME), tool_choice=ToolChoice(mode="required")))
    assert emulation is not None
    schema = emulation.schema()
    jsonschema.validate({"name": "get_weather", "arguments": {"city": "Paris"}}, schema)
    jsonschema.validate({"name": "get_time", "arguments": {}}, schema)
    for wrong in (
        {"name": "nope", "arguments": {}},
        {"content": "hi"},
        {"name": "get_weather", "arguments": {"city": 3}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(wrong, schema)


def test_a_named_function_is_the_only_call_and_auto_may_answer_in_text() -> None:
    named = ToolEmulation.for_request(request(tools=(WEATHER, TIME), tool_choice=ToolChoice(function_name="get_time")))
    assert named is not None
    jsonschema.validate({"name": "get_time", "arguments": {}}, named.schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "get_weather", "arguments": {}}, named.schema())
    auto = ToolEmulation.for_request(request(tools=(WEATHER,)))
    assert auto is not None
    jsonschema.validate({"content": "It is sunny."}, auto.schema())


def test_answers_are_read_as_a_call_or_as_text() -> None:
    emulation = ToolEmulation((WEATHER,))
    text, calls = emulation.parse('{"name": "get_weather", "arguments": {"city": "Paris"}}')
    assert text == ""
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("get_weather", {"city": "Paris"})]
    assert calls[0].id.startswith("call_")
    assert emulation.parse('{"content": "Sunny."}') == ("Sunny.", ())
    assert emulation.parse('{"name": "get_wea') == ('{"name": "get_wea', ())  # cut short by max_tokens


def test_the_body_carries_tools_as_text_and_the_schema_when_the_template_has_none() -> None:
    history = (
        user("weather in Paris?"),
        Message(Role.ASSISTANT, tool_calls=(ToolCall("call_1", "get_weather", '{"city": "Paris"}'),)),
        Message(Role.TOOL, (TextPart("Sunny"),), tool_call_id="call_1"),
    )
    body, emulation = chat_body(
        ChatRequest("m", (Message(Role.SYSTEM, (TextPart("Be brief."),)), *history), tools=(WEATHER,)),
        max_tokens=32,
        native_tools=False,
    )
    assert emulation is not None
    assert "tools" not in body and "tool_choice" not in body
    assert body["response_format"]["json_schema"]["schema"] == emulation.schema()
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert body["messages"][0]["content"].startswith("Be brief.") and "get_weather" in body["messages"][0]["content"]
    assert json.loads(body["messages"][2]["content"]) == {"name": "get_weather", "arguments": {"city": "Paris"}}
    assert body["messages"][3]["content"] == "Tool result (call_1): Sunny"
    native, none = chat_body(request(tools=(WEATHER,)), max_tokens=32, native_tools=True)
    assert none is None and native["tools"][0]["function"]["name"] == "get_weather"


def test_logprobs_always_ask_llamacpp_for_at_least_one_alternative() -> None:
    body, _ = chat_body(request(logprobs=True), max_tokens=8, native_tools=False)
    assert (body["logprobs"], body["top_logprobs"]) == (True, 1)
    assert "logprobs" not in chat_body(request(), max_tokens=8, native_tools=False)[0]


def test_llamacpp_errors_become_lattice_errors() -> None:
    assert isinstance(engine_error({"type": "exceed_context_size_error", "message": "too long"}), ContextLengthExceeded)
    refused = engine_error({"code": 400, "message": "Field 'n': Value must be between 1 <= value <= 1, but got 2"})
    assert isinstance(refused, InvalidArgument) and refused.metadata["field"] == "n"
    assert isinstance(engine_error({"code": 500, "message": "boom"}), BackendFailed)


@pytest.mark.parametrize(
    ("profile", "setting", "engine"),
    [
        (ModelProfile(id="a"), "llamacpp", "llamacpp"),
        (ModelProfile(id="a"), "mlx", "mlx"),
        (ModelProfile(id="a", engine="mlx"), "llamacpp", "mlx"),
        (ModelProfile(id="a", backend="mlx"), "llamacpp", "mlx"),
        (ModelProfile(id="a", engine="llamacpp"), "mlx", "llamacpp"),
    ],
)
def test_the_engine_a_model_runs_on(profile: ModelProfile, setting: str, engine: str) -> None:
    assert engine_of(profile, Settings(engine=setting)) == engine  # type: ignore[arg-type]
