"""The Anthropic mapping alone: domain requests → Messages API arguments, stream events → deltas."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.types import (
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawContentBlockStopEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStreamEvent,
)

from lattice.errors import InvalidArgument
from lattice.server.backends.upstream.anthropic_wire import StreamState, request_kwargs
from lattice.server.chat import (
    ChatRequest,
    Delta,
    Finish,
    FinishReason,
    ImagePart,
    Message,
    Role,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    Usage,
)

API_KEY = "sk-ant-test-0123456789"
WEATHER = Tool("get_weather", "Current weather", {"type": "object", "properties": {"city": {"type": "string"}}})
TIME = Tool("get_time")
PNG = "data:image/png;base64,iVBORw0KGgo="


def user(text: str, *images: str) -> Message:
    return Message(Role.USER, (TextPart(text), *(ImagePart(url) for url in images)))


def chat(*messages: Message, **fields: Any) -> ChatRequest:
    return ChatRequest(model="anthropic", messages=messages, **fields)


def kwargs(*messages: Message, **fields: Any) -> dict[str, Any]:
    return request_kwargs("claude-x", chat(*messages, **fields), 100)


def test_a_minimal_request() -> None:
    assert kwargs(user("hi")) == {
        "model": "claude-x",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (ToolChoice(mode="auto"), {"type": "auto"}),
        (ToolChoice(mode="none"), {"type": "none"}),
        (ToolChoice(mode="required"), {"type": "any"}),
        (ToolChoice(function_name="get_time"), {"type": "tool", "name": "get_time"}),
        (ToolChoice(), None),
        (None, None),
    ],
)
def test_tool_choice(choice: ToolChoice | None, expected: dict[str, str] | None) -> None:
    assert kwargs(user("hi"), tools=(TIME,), tool_choice=choice).get("tool_choice") == expected


def test_no_tool_choice_without_tools() -> None:
    assert "tool_choice" not in kwargs(user("hi"), tool_choice=ToolChoice(mode="required"))


def test_strict_tools_stay_strict() -> None:
    assert kwargs(user("hi"), tools=(Tool("t", parameters={"type": "object"}, strict=True),))["tools"] == [
        {"name": "t", "input_schema": {"type": "object"}, "strict": True}
    ]


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        (  # empty text is dropped: an assistant turn may be tool calls alone
            (user("q"), Message(Role.ASSISTANT, (TextPart(""),), tool_calls=(ToolCall("t1", "f", "{}"),))),
            [
                {"role": "user", "content": [{"type": "text", "text": "q"}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
            ],
        ),
        (  # a user's words after a tool result share its turn, the result first
            (Message(Role.TOOL, (TextPart("42"),), tool_call_id="t1"), user("and?")),
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "t1", "content": "42"},
                        {"type": "text", "text": "and?"},
                    ],
                }
            ],
        ),
        (  # ...even when the user spoke first
            (user("and?"), Message(Role.TOOL, (TextPart("42"),), tool_call_id="t1")),
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "t1", "content": "42"},
                        {"type": "text", "text": "and?"},
                    ],
                }
            ],
        ),
        (  # a tool result with an image keeps its blocks
            (Message(Role.TOOL, (TextPart("chart"), ImagePart(PNG)), tool_call_id="t1"),),
            [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t1",
                            "content": [
                                {"type": "text", "text": "chart"},
                                {
                                    "type": "image",
                                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                                },
                            ],
                        }
                    ],
                }
            ],
        ),
    ],
)
def test_turns(messages: tuple[Message, ...], expected: list[dict[str, Any]]) -> None:
    assert kwargs(*messages)["messages"] == expected


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (user("x", "data:image/bmp;base64,Qk0="), "messages[0].content[1].image_url"),
        (user("x", "ftp://example.com/a.png"), "messages[0].content[1].image_url"),
        (
            Message(Role.ASSISTANT, tool_calls=(ToolCall("t", "f", "[1]"),)),
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            Message(Role.ASSISTANT, tool_calls=(ToolCall("t", "f", "{oops"),)),
            "messages[0].tool_calls[0].function.arguments",
        ),
    ],
)
def test_what_anthropic_cannot_take_is_an_invalid_argument(message: Message, field: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        kwargs(message)
    assert raised.value.field == field


def message_start(input_tokens: int, **cache: int) -> RawMessageStartEvent:
    usage = {"input_tokens": input_tokens, "output_tokens": 1, **cache}
    message = {"id": "m", "type": "message", "role": "assistant", "model": "c", "content": [], "usage": usage}
    return RawMessageStartEvent.model_validate({"type": "message_start", "message": message})


def block_start(index: int, block: dict[str, Any]) -> RawContentBlockStartEvent:
    return RawContentBlockStartEvent.model_validate(
        {"type": "content_block_start", "index": index, "content_block": block}
    )


def block_delta(index: int, delta: dict[str, Any]) -> RawContentBlockDeltaEvent:
    return RawContentBlockDeltaEvent.model_validate({"type": "content_block_delta", "index": index, "delta": delta})


def block_stop(index: int) -> RawContentBlockStopEvent:
    return RawContentBlockStopEvent.model_validate({"type": "content_block_stop", "index": index})


def message_delta(
    stop_reason: str | None, output_tokens: int, stop_sequence: str | None = None, **usage: int
) -> RawMessageDeltaEvent:
    return RawMessageDeltaEvent.model_validate(
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
            "usage": {"output_tokens": output_tokens, **usage},
        }
    )


def read_all(events: list[RawMessageStreamEvent]) -> tuple[list[Delta], Finish]:
    state = StreamState()
    deltas = [d for d in (state.read_event(e) for e in events) if d is not None]
    return deltas, state.finish()


@pytest.mark.parametrize(
    ("stop_reason", "reason"),
    [
        ("end_turn", FinishReason.STOP),
        ("stop_sequence", FinishReason.STOP),
        ("max_tokens", FinishReason.LENGTH),
        ("model_context_window_exceeded", FinishReason.LENGTH),
        ("tool_use", FinishReason.TOOL_CALLS),
        ("refusal", FinishReason.CONTENT_FILTER),
        (None, FinishReason.STOP),
    ],
)
def test_stop_reasons(stop_reason: str | None, reason: FinishReason) -> None:
    _, finish = read_all([message_start(5), message_delta(stop_reason, 9)])
    assert finish == Finish(reason, Usage(5, 9))


def test_the_stop_sequence_anthropic_names_is_passed_on() -> None:
    _, finish = read_all([message_start(5), message_delta("stop_sequence", 9, stop_sequence="\n\nHuman:")])
    assert finish == Finish(FinishReason.STOP, Usage(5, 9), "\n\nHuman:")


def test_usage_counts_cached_input_and_takes_the_final_counts() -> None:
    _, finish = read_all([message_start(5, cache_read_input_tokens=100), message_delta("end_turn", 9)])
    assert finish.usage == Usage(105, 9)
    _, finish = read_all([message_start(5), message_delta("end_turn", 9, input_tokens=7)])
    assert finish.usage == Usage(7, 9)


def test_tool_calls_are_numbered_among_tool_blocks_only() -> None:
    deltas, finish = read_all(
        [
            message_start(3),
            block_start(0, {"type": "text", "text": ""}),
            block_delta(0, {"type": "text_delta", "text": "Let me look."}),
            block_stop(0),
            block_start(1, {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}}),
            block_delta(1, {"type": "input_json_delta", "partial_json": ""}),
            block_delta(1, {"type": "input_json_delta", "partial_json": '{"city": '}),
            block_delta(1, {"type": "input_json_delta", "partial_json": '"Paris"}'}),
            block_stop(1),
            block_start(2, {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}}),
            block_stop(2),
            message_delta("tool_use", 20),
        ]
    )
    assert deltas == [
        Delta("Let me look."),
        Delta(tool_calls=(ToolCallDelta(0, id="toolu_a", name="get_weather"),)),
        Delta(tool_calls=(ToolCallDelta(0, arguments='{"city": '),)),
        Delta(tool_calls=(ToolCallDelta(0, arguments='"Paris"}'),)),
        Delta(tool_calls=(ToolCallDelta(1, id="toolu_b", name="get_time"),)),
        Delta(tool_calls=(ToolCallDelta(1, arguments="{}"),)),  # no input streamed: still valid JSON
    ]
    assert finish == Finish(FinishReason.TOOL_CALLS, Usage(3, 20))
