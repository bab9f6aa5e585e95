"""The OpenAI-compatible mapping alone: what an upstream receives, and how its chunks are read."""

from __future__ import annotations

from typing import Any

import pytest

from lattice.errors import BackendRejected, BackendUnavailable, ResourceExhausted
from lattice.server.backends.upstream.http_errors import from_status, retry_after_seconds
from lattice.server.backends.upstream.openai_wire import StreamState, request_body
from lattice.server.chat import (
    ChatRequest,
    Delta,
    FinishReason,
    ImagePart,
    Message,
    ResponseFormat,
    Role,
    Sampling,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    Usage,
)


def test_a_full_request_reaches_the_upstream_in_openai_shape() -> None:
    request = ChatRequest(
        "x",
        (
            Message(Role.SYSTEM, (TextPart("Be brief."),)),
            Message(Role.USER, (TextPart("What is this?"), ImagePart("https://example.com/a.png", "low"))),
            Message(Role.ASSISTANT, tool_calls=(ToolCall("c1", "lookup", '{"q": 1}'),)),
            Message(Role.TOOL, (TextPart("42"),), tool_call_id="c1"),
        ),
        max_tokens=7,
        sampling=Sampling(0.5, 0.9, 11),
        stop=("END",),
        tools=(Tool("lookup", "Looks up.", {"type": "object"}),),
        tool_choice=ToolChoice(function_name="lookup"),
        response_format=ResponseFormat("json_object"),
        user="u1",
    )
    assert request_body("upstream-id", request) == {
        "model": "upstream-id",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
                ],
            },
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": 1}'}}
                ],
            },
            {"role": "tool", "content": "42", "tool_call_id": "c1"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.5,
        "top_p": 0.9,
        "max_tokens": 7,
        "seed": 11,
        "stop": ["END"],
        "tools": [
            {
                "type": "function",
                "function": {"name": "lookup", "description": "Looks up.", "parameters": {"type": "object"}},
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "lookup"}},
        "response_format": {"type": "json_object"},
        "user": "u1",
    }


def test_streamed_chunks_become_deltas_tool_fragments_finish_and_usage() -> None:
    state = StreamState()
    chunks: list[dict[str, Any]] = [
        {"choices": [{"delta": {"role": "assistant", "content": ""}}]},
        {"choices": [{"delta": {"content": "Hi"}}]},
        {
            "choices": [
                {"delta": {"tool_calls": [{"index": 0, "id": "c9", "function": {"name": "f", "arguments": ""}}]}}
            ]
        },
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}}]},
        {"choices": [{"delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}},
    ]
    deltas = [d for d in (state.read_chunk(c) for c in chunks) if d is not None]
    assert deltas == [
        Delta("Hi"),
        Delta("", (ToolCallDelta(0, "c9", "f", ""),)),
        Delta("", (ToolCallDelta(0, "", "", '{"a":'),)),
    ]
    assert state.finish_reason is FinishReason.TOOL_CALLS
    assert state.final_usage(prompt_estimate=99) == Usage(5, 3)


def test_without_upstream_usage_the_chunks_are_counted() -> None:
    state = StreamState()
    for word in ("a", "b", "c"):
        state.read_chunk({"choices": [{"delta": {"content": word}}]})
    assert state.final_usage(prompt_estimate=4) == Usage(4, 3)


@pytest.mark.parametrize(
    ("choice", "stop_sequence"),
    [
        ({"finish_reason": "stop", "stop_reason": "END"}, "END"),  # vLLM names the stop string that fired
        ({"finish_reason": "stop", "stop_reason": 2}, ""),  # ... or the stop token's id
        ({"finish_reason": "stop", "stop_reason": None}, ""),  # ... or nothing: the model ended its turn
        ({"finish_reason": "stop"}, ""),  # OpenAI's API has no such field
        ({"finish_reason": "stop", "stop_reason": "eos"}, ""),  # a string the request did not ask to stop at
        ({"finish_reason": "length", "stop_reason": "END"}, ""),
    ],
)
def test_the_stop_string_is_taken_only_from_an_upstream_that_names_one_of_the_requests(
    choice: dict[str, object], stop_sequence: str
) -> None:
    state = StreamState(stops=("END", "\n\n"))
    state.read_chunk({"choices": [{"delta": {}, **choice}]})
    assert state.stop_sequence == stop_sequence


def test_upstream_statuses_map_to_errors_that_fall_back_or_not() -> None:
    limited = from_status("u", 429, {"retry-after": "12"}, "slow down")
    assert isinstance(limited, ResourceExhausted)
    assert limited.retry_after_seconds == 12
    assert isinstance(from_status("u", 503, {}, ""), BackendUnavailable)
    assert isinstance(from_status("u", 404, {}, ""), BackendUnavailable)  # another upstream may have it
    assert isinstance(from_status("u", 400, {}, "bad"), BackendRejected)  # the request itself: not retried
    assert from_status("u", 401, {}, "").reason == "UPSTREAM_AUTH_FAILED"


def test_retry_after_as_seconds_or_http_date() -> None:
    assert retry_after_seconds({"retry-after": "3"}) == 3
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0  # in the past
