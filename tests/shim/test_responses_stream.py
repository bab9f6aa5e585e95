"""The Responses API's stream events made from StreamChat messages (lattice.shim.responses_stream), for
the cases the small model cannot be made to show on demand: several function calls, text then a call,
a failure after the start, an empty answer. Every event is validated against the OpenAI SDK's types,
and the whole stream against the shim's OpenAPI document (which describes the request truly too)."""

from __future__ import annotations

import json

import jsonschema
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from lattice.shim import create_app, errors
from lattice.shim.responses_protocol import ResponsesRequest
from lattice.shim.responses_stream import Event, ResponseEvents, sse
from lattice.v1 import chat_pb2, common_pb2
from tests.shim.test_openapi import event_stream, schema

EVENTS: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)
BODY = ResponsesRequest.model_validate({"model": "m", "input": "hi", "stream": True})
FIRST = chat_pb2.StreamChatResponse(id="chatcmpl-abc", model="m")


def text(content: str) -> chat_pb2.ChatDelta:
    return chat_pb2.ChatDelta(content=content)


def call(index: int, arguments: str, id_: str = "", name: str = "") -> chat_pb2.ChatDelta:
    fragment = chat_pb2.ToolCallDelta(index=index, id=id_, function_name=name, function_arguments=arguments)
    return chat_pb2.ChatDelta(tool_calls=[fragment])


def done(finish: common_pb2.FinishReason = common_pb2.FINISH_REASON_STOP) -> chat_pb2.ChatDone:
    return chat_pb2.ChatDone(
        finish_reason=finish, usage=common_pb2.Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5)
    )


def run(*deltas: chat_pb2.ChatDelta, end: chat_pb2.ChatDone | errors.HttpError) -> list[Event]:
    events = ResponseEvents(BODY, FIRST)
    made = events.start()
    for delta in deltas:
        made += events.delta(delta)
    made += events.done(end) if isinstance(end, chat_pb2.ChatDone) else events.failed(end)
    for event in made:
        EVENTS.validate_python(event)
    assert [e["sequence_number"] for e in made] == list(range(len(made)))
    body = "".join(sse(e) for e in made).encode()
    assert schema["/v1/responses"]["POST"].is_valid_response(event_stream("/v1/responses", body))
    return made


def types(events: list[Event]) -> list[str]:
    return [e["type"] for e in events]


def test_text_then_two_calls_stream_one_item_at_a_time() -> None:
    events = run(
        text("Let me check."),
        call(0, '{"city": ', id_="call_1", name="get_weather"),
        call(0, '"Paris"}'),
        call(1, '{"city": "Rome"}', id_="call_2", name="get_weather"),
        end=done(common_pb2.FINISH_REASON_TOOL_CALLS),
    )
    assert types(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = events[-1]["response"]
    assert final["id"] == "resp_abc" and final["status"] == "completed"
    assert [item["type"] for item in final["output"]] == ["message", "function_call", "function_call"]
    assert [item["call_id"] for item in final["output"][1:]] == ["call_1", "call_2"]
    assert json.loads(final["output"][1]["arguments"]) == {"city": "Paris"}
    assert [e["output_index"] for e in events if e["type"] == "response.output_item.added"] == [0, 1, 2]
    assert final["usage"] == {
        "input_tokens": 3,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 2,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 5,
    }


def test_a_failure_after_the_start_is_an_error_event_then_response_failed() -> None:
    error = errors.HttpError(
        504, errors.envelope("the answer ran too long", type_="timeout", code="stream_duration_exceeded")
    )
    events = run(text("Once upon"), end=error)
    assert types(events)[-2:] == ["error", "response.failed"]
    assert events[-2]["code"] == "stream_duration_exceeded" and events[-2]["message"] == "the answer ran too long"
    failed = events[-1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "server_error", "message": "the answer ran too long"}
    assert failed["output"][0]["status"] == "incomplete"


def test_a_rate_limit_after_the_start_keeps_its_code() -> None:
    error = errors.HttpError(429, errors.envelope("slow down", type_="rate_limit_error", code="rate_limited"))
    assert run(end=error)[-1]["response"]["error"]["code"] == "rate_limit_exceeded"


def test_an_empty_answer_is_one_empty_message() -> None:
    events = run(end=done(common_pb2.FINISH_REASON_LENGTH))
    final = events[-1]
    assert final["type"] == "response.incomplete"
    assert final["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    [message] = final["response"]["output"]
    assert message["status"] == "incomplete" and message["content"][0]["text"] == ""


def test_a_late_fragment_of_a_closed_call_reaches_the_final_response() -> None:
    events = run(
        call(0, '{"a": ', id_="call_1", name="f"),
        call(1, "{}", id_="call_2", name="g"),
        call(0, "1}"),
        end=done(common_pb2.FINISH_REASON_TOOL_CALLS),
    )
    assert json.loads(events[-1]["response"]["output"][0]["arguments"]) == {"a": 1}


def test_the_document_describes_the_request_items_the_route_serves() -> None:
    # The members that exist only to be refused by name (built-in tools, other item types) match nothing.
    components = create_app("127.0.0.1:1").openapi()["components"]
    validator = jsonschema.Draft202012Validator({**components["schemas"]["ResponsesRequest"], "components": components})
    served = [
        {"role": "user", "content": "hi"},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "Sunny"},
    ]
    assert validator.is_valid({"input": served, "tools": [{"type": "function", "name": "f"}]})
    assert not validator.is_valid({"input": "hi", "tools": [{"type": "web_search"}]})
    assert not validator.is_valid({"input": [{"type": "item_reference", "id": "msg_1"}]})
