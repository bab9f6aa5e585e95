"""Property tests (hypothesis): the model-expression grammar, and OpenAI JSON ⇄ proto ⇄ domain.

Unicode, empty and huge values included; the OpenAI SDK's own response models
are the oracle for what the shim answers.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from lattice.errors import InvalidArgument
from lattice.server import chat
from lattice.server.expressions import (
    CAPABILITY_TERMS,
    DEFAULT_TERMS,
    PERSONAL_RUNTIME_PREFIX,
    ROLE_PREFIX,
    AnyModel,
    Default,
    Exact,
    PersonalRuntime,
    Role,
    Selector,
    Wildcard,
    parse_expression,
)
from lattice.shim import convert, create_app
from lattice.shim.protocol import ChatCompletionRequest
from lattice.v1 import chat_pb2, common_pb2
from lattice.wire.convert import chat_request_from_proto

PROPERTIES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- the model-expression grammar --------------------------------------------------------------------

# Characters that are syntax: the separators, wildcards, and space (trimmed around terms).
SYNTAX = ",+*? \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0"
names = st.text(st.characters(exclude_characters=SYNTAX, exclude_categories=("Cs", "Zs", "Zl", "Zp")), min_size=1)
padding = st.text(" \t", max_size=2)


def plain_name(name: str) -> bool:
    """A name that means an exact model id, not one of the grammar's keywords."""
    lowered = name.lower()
    return (
        lowered not in DEFAULT_TERMS
        and lowered not in CAPABILITY_TERMS
        and not lowered.startswith(ROLE_PREFIX)
        and not name.startswith(PERSONAL_RUNTIME_PREFIX)
    )


@st.composite
def selectors(draw: st.DrawFn) -> tuple[str, Selector | None]:
    """A selector's text and what it must parse to (None: only capability terms)."""
    kind = draw(st.sampled_from(["exact", "role", "wildcard", "personal", "default", "none"]))
    if kind == "exact":
        name = draw(names.filter(plain_name))
        return name, Exact(name)
    if kind == "role":
        name = draw(names)
        prefix = draw(st.sampled_from(["role:", "ROLE:", "Role:"]))
        return prefix + name, Role(name.lower())
    if kind == "wildcard":
        left, right = draw(st.text(max_size=5).filter(lambda t: not set(t) & set(SYNTAX))), draw(names)
        pattern = f"{left}{draw(st.sampled_from('*?'))}{right}"
        if pattern.lower().startswith(ROLE_PREFIX) or pattern.startswith(PERSONAL_RUNTIME_PREFIX):
            pattern = "x" + pattern
        return pattern, Wildcard(pattern)
    if kind == "personal":
        lattice_id = draw(names)
        return PERSONAL_RUNTIME_PREFIX + lattice_id, PersonalRuntime(lattice_id)
    if kind == "default":
        return draw(st.sampled_from(["auto", "default", "AUTO"])), Default()
    return "", None


@st.composite
def alternatives(draw: st.DrawFn) -> tuple[str, Selector, frozenset[str]]:
    selector_text, selector = draw(selectors())
    capability_words = draw(st.lists(st.sampled_from(sorted(CAPABILITY_TERMS)), max_size=3))
    if selector is None and not capability_words:
        capability_words = ["vision"]
    words = [w.upper() if draw(st.booleans()) else w for w in capability_words]
    position = draw(st.integers(0, len(words)))
    terms = words[:position] + ([selector_text] if selector is not None else []) + words[position:]
    text = "+".join(draw(padding) + term + draw(padding) for term in terms)
    capabilities = frozenset(CAPABILITY_TERMS[w] for w in capability_words)
    return text, selector if selector is not None else AnyModel(), capabilities


@PROPERTIES
@given(st.lists(alternatives(), min_size=1, max_size=6), padding, padding)
def test_an_expression_parses_to_the_alternatives_it_was_written_from(
    written: list[tuple[str, Selector, frozenset[str]]], before: str, after: str
) -> None:
    expression = before + ",".join(text for text, _, _ in written) + after
    parsed = parse_expression(expression)
    assert [(a.selector, a.capabilities) for a in parsed] == [(s, c) for _, s, c in written]
    if len(parsed) > 1:
        assert [a.text for a in parsed] == [text.strip() for text, _, _ in written]


@PROPERTIES
@given(st.text())
def test_any_text_parses_or_is_refused_as_an_invalid_model(expression: str) -> None:
    try:
        parsed = parse_expression(expression)
    except InvalidArgument as refused:
        field = refused.field
    else:
        assert parsed
        return
    assert field == "model"


@PROPERTIES
@given(st.lists(st.sampled_from(["a", "role:b", "c*", "vision", ""]), min_size=2, max_size=8))
def test_an_empty_entry_in_a_list_is_refused(entries: list[str]) -> None:
    expression = ",".join([*entries, ""])
    with pytest.raises(InvalidArgument):
        parse_expression(expression)


@pytest.mark.parametrize("blank", ["", " ", "\t\n", "auto", " Default "])
def test_blank_and_default_mean_the_default_model(blank: str) -> None:
    assert [a.selector for a in parse_expression(blank)] == [Default()]


def test_a_huge_priority_list_parses_in_full() -> None:
    expression = ",".join(f"model-{i}+tools" for i in range(20_000))
    parsed = parse_expression(expression)
    assert len(parsed) == 20_000
    assert parsed[-1].selector == Exact("model-19999")


def test_a_huge_single_id_is_kept_whole() -> None:
    name = "ж" * 100_000
    assert parse_expression(name)[0].selector == Exact(name)


# --- OpenAI JSON → proto → domain ---------------------------------------------------------------------

texts = st.text(max_size=200) | st.sampled_from(["", "ж" * 20_000, "🦜" * 5_000, "\x00\x01 nul and controls"])
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False, width=64)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=5)


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    role = draw(st.sampled_from(["system", "developer", "user", "assistant", "tool"]))
    message: dict[str, Any] = {"role": role}
    content = draw(
        st.one_of(
            st.none(),
            texts,
            st.lists(
                st.one_of(
                    st.builds(lambda t: {"type": "text", "text": t}, texts),
                    st.builds(lambda u: {"type": "image_url", "image_url": {"url": u}}, st.text(max_size=50)),
                ),
                max_size=3,
            ),
        )
    )
    if content is not None:
        message["content"] = content
    if role == "assistant" and draw(st.booleans()):
        message["tool_calls"] = [
            {"id": draw(st.text(max_size=10)), "type": "function", "function": {"name": n, "arguments": a}}
            for n, a in draw(st.lists(st.tuples(st.text(max_size=10), texts), max_size=2))
        ]
    if role == "tool":
        message["tool_call_id"] = draw(st.text(max_size=10))
    if draw(st.booleans()):
        message["name"] = draw(st.text(max_size=10))
    return message


@st.composite
def chat_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"model": draw(st.text(max_size=30)), "messages": draw(st.lists(messages(), max_size=5))}
    optional = {
        "max_tokens": st.integers(-(2**31), 2**31 - 1),
        "max_completion_tokens": st.integers(-(2**31), 2**31 - 1),
        "temperature": st.floats(-10, 10, allow_nan=False),
        "top_p": st.floats(0, 1),
        "seed": st.integers(-(2**63), 2**63 - 1),
        "stop": st.one_of(texts, st.lists(st.text(max_size=10), max_size=4)),
        "user": st.text(max_size=20),
        "tools": st.lists(
            st.builds(
                lambda n, d, p: {"type": "function", "function": {"name": n, "description": d, "parameters": p}},
                st.text(max_size=10),
                texts,
                json_objects,
            ),
            max_size=3,
        ),
        "tool_choice": st.sampled_from(["none", "auto", "required"])
        | st.builds(lambda n: {"type": "function", "function": {"name": n}}, st.text(max_size=10)),
        "response_format": st.sampled_from([{"type": "text"}, {"type": "json_object"}])
        | st.builds(lambda s: {"type": "json_schema", "json_schema": s}, json_objects),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            body[key] = draw(strategy)
    return body


def float32(value: float) -> float:
    result: float = struct.unpack("f", struct.pack("f", value))[0]
    return result


def expected_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part["text"] for part in content if part["type"] == "text")


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON numbers are in protobuf's Struct (every number a double)."""
    return json.dumps(a, sort_keys=True) == json.dumps(_as_doubles(b), sort_keys=True) or a == b


def _as_doubles(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [_as_doubles(v) for v in value]
    return {k: _as_doubles(v) for k, v in value.items()}


@PROPERTIES
@given(chat_bodies())
def test_an_openai_request_reaches_the_domain_unchanged(body: dict[str, Any]) -> None:
    proto = convert.chat_request_to_proto(ChatCompletionRequest.model_validate(body))
    # Through the wire, as the server receives it.
    request = chat_request_from_proto(chat_pb2.ChatRequest.FromString(proto.SerializeToString()))
    assert request.model == body["model"]
    roles = {"developer": "system"}
    assert [m.role.value for m in request.messages] == [roles.get(m["role"], m["role"]) for m in body["messages"]]
    assert [m.text for m in request.messages] == [expected_text(m.get("content")) for m in body["messages"]]
    assert [m.name for m in request.messages] == [m.get("name", "") for m in body["messages"]]
    assert [[(c.name, c.arguments) for c in m.tool_calls] for m in request.messages] == [
        [(c["function"]["name"], c["function"]["arguments"]) for c in m.get("tool_calls", [])] for m in body["messages"]
    ]
    images = [[p for p in m.content if isinstance(p, chat.ImagePart)] for m in request.messages]
    assert [[i.url for i in m] for m in images] == [
        [p["image_url"]["url"] for p in m["content"] if p["type"] == "image_url"]
        if isinstance(m.get("content"), list)
        else []
        for m in body["messages"]
    ]
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    assert request.max_tokens == max_tokens
    assert request.sampling.temperature == (float32(body["temperature"]) if "temperature" in body else 1.0)
    assert request.sampling.top_p == (float32(body["top_p"]) if "top_p" in body else 1.0)
    assert request.sampling.seed == body.get("seed")
    stop = body.get("stop")
    assert list(request.stop) == ([stop] if isinstance(stop, str) else (stop or []))
    assert request.user == body.get("user", "")
    assert [(t.name, t.description) for t in request.tools] == [
        (t["function"]["name"], t["function"]["description"]) for t in body.get("tools", [])
    ]
    for tool, written in zip(request.tools, body.get("tools", []), strict=True):
        assert same_json(tool.parameters, written["function"]["parameters"])
    choice = body.get("tool_choice")
    if isinstance(choice, str):
        assert request.tool_choice is not None
        assert request.tool_choice.mode == choice
    elif choice is not None and choice["function"]["name"]:
        assert request.tool_choice == chat.ToolChoice(function_name=choice["function"]["name"])
    if "response_format" in body:
        assert request.response_format is not None
        assert request.response_format.type == body["response_format"]["type"]
        if "json_schema" in body["response_format"]:
            assert same_json(request.response_format.json_schema, body["response_format"]["json_schema"])


@PROPERTIES
# Low surrogates only: a high one followed by a low one would be a valid pair, i.e. one real character.
@given(st.text(st.characters(min_codepoint=0xDC00, max_codepoint=0xDFFF), min_size=1, max_size=3), st.text(max_size=5))
def test_text_with_an_unpaired_surrogate_is_refused_as_400(surrogates: str, text: str) -> None:
    # JSON can spell half a surrogate pair (\\ud800); UTF-8 and protobuf cannot carry it.
    body = json.dumps({"messages": [{"role": "user", "content": text + surrogates}]})
    response = CLIENT.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_argument"


# A shim with no server behind it: these requests are refused before any call would be made.
CLIENT = TestClient(create_app("127.0.0.1:1"))


# --- proto → OpenAI JSON --------------------------------------------------------------------------------

finish_reasons = st.sampled_from(
    [
        common_pb2.FINISH_REASON_STOP,
        common_pb2.FINISH_REASON_LENGTH,
        common_pb2.FINISH_REASON_TOOL_CALLS,
        common_pb2.FINISH_REASON_CONTENT_FILTER,
    ]
)
counts = st.integers(0, 2**30 - 1)  # two of them still add up to an int32
tool_calls = st.lists(
    st.builds(
        lambda i, n, a: common_pb2.ToolCall(
            id=i, type="function", function=common_pb2.FunctionCall(name=n, arguments=a)
        ),
        st.text(max_size=10),
        st.text(max_size=10),
        texts,
    ),
    max_size=3,
)


@PROPERTIES
@given(st.text(max_size=30), texts, tool_calls, finish_reasons, counts, counts)
def test_a_chat_response_is_an_openai_chat_completion(
    model: str, text: str, calls: list[common_pb2.ToolCall], finish: int, prompt: int, completion: int
) -> None:
    response = chat_pb2.ChatResponse(
        id="chatcmpl-1",
        model=model,
        message=common_pb2.Message(
            role=common_pb2.ROLE_ASSISTANT,
            content=[common_pb2.ContentPart(text=text)] if text else [],
            tool_calls=calls,
        ),
        finish_reason=finish,  # type: ignore[arg-type]
        usage=common_pb2.Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion),
    )
    body = json.loads(json.dumps(convert.chat_response_to_json(response)))  # as it goes over the wire
    completion_ = ChatCompletion.model_validate(body)
    choice = completion_.choices[0]
    assert completion_.model == model
    assert choice.message.content == (text or (None if calls else ""))  # OpenAI: null beside tool calls alone
    assert [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls or []] == [  # type: ignore[union-attr]
        (c.id, c.function.name, c.function.arguments) for c in calls
    ]
    assert choice.finish_reason == convert.FINISH_REASONS[finish]  # type: ignore[index]
    assert completion_.usage is not None
    assert (completion_.usage.prompt_tokens, completion_.usage.completion_tokens) == (prompt, completion)


tool_call_deltas = st.lists(
    st.builds(
        lambda index, i, n, a: chat_pb2.ToolCallDelta(
            index=index, id=i, type="function" if i else "", function_name=n, function_arguments=a
        ),
        st.integers(0, 100),
        st.text(max_size=10),
        st.text(max_size=10),
        texts,
    ),
    max_size=3,
)


@PROPERTIES
@given(texts, tool_call_deltas, st.booleans())
def test_a_stream_delta_is_an_openai_chunk(text: str, deltas: list[chat_pb2.ToolCallDelta], first: bool) -> None:
    role = common_pb2.ROLE_ASSISTANT if first else common_pb2.ROLE_UNSPECIFIED
    message = chat_pb2.StreamChatResponse(
        id="c", model="m", delta=chat_pb2.ChatDelta(role=role, content=text, tool_calls=deltas)
    )
    chunk = ChatCompletionChunk.model_validate(json.loads(json.dumps(convert.chunk_to_json(message))))
    delta = chunk.choices[0].delta
    assert (delta.content or "") == text
    assert delta.role == ("assistant" if first else None)
    assert [(c.index, c.id or "", c.function.name or "", c.function.arguments) for c in delta.tool_calls or []] == [  # type: ignore[union-attr]
        (d.index, d.id, d.function_name, d.function_arguments) for d in deltas
    ]
    assert chunk.choices[0].finish_reason is None


@PROPERTIES
@given(finish_reasons, counts, counts)
def test_the_end_of_a_stream_is_an_openai_chunk_with_its_finish_reason_and_usage(
    finish: int, prompt: int, completion: int
) -> None:
    usage = common_pb2.Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)
    done = chat_pb2.StreamChatResponse(
        id="c",
        model="m",
        done=chat_pb2.ChatDone(finish_reason=finish, usage=usage),  # type: ignore[arg-type]
    )
    last = ChatCompletionChunk.model_validate(convert.chunk_to_json(done))
    assert last.choices[0].finish_reason == convert.FINISH_REASONS[finish]  # type: ignore[index]
    usage_chunk = ChatCompletionChunk.model_validate(convert.usage_chunk_to_json(done))
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    assert usage_chunk.usage.total_tokens == prompt + completion


def test_a_schemas_whole_numbers_cross_the_wire_as_integers() -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 40},
            "tags": {"type": "array", "minItems": 1, "maxItems": 3, "items": {"type": "number", "minimum": 0.5}},
        },
        "required": ["name"],
    }
    tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [tool],
        "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}},
    }
    proto = convert.chat_request_to_proto(ChatCompletionRequest.model_validate(body))
    request = chat_request_from_proto(chat_pb2.ChatRequest.FromString(proto.SerializeToString()))
    assert request.response_format is not None
    # As JSON text, not ==: 40.0 == 40 in Python, but llama.cpp refuses `"maxLength": 40.0`.
    wrapped = {"name": "s", "schema": schema}
    assert json.dumps(request.response_format.json_schema, sort_keys=True) == json.dumps(wrapped, sort_keys=True)
    assert json.dumps(request.tools[0].parameters, sort_keys=True) == json.dumps(schema, sort_keys=True)
