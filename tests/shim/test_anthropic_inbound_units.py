"""The Anthropic Messages translation without a gateway: turns of blocks → the contract's messages, a
StreamChat stream → Anthropic's events (block indices, text beside tool calls), and the error mapping
(529 for the gateway's own capacity, 429 for the caller's limits), which a live model cannot be made to
hit on demand."""

from __future__ import annotations

import json
from typing import Any

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2

from lattice.shim import anthropic_convert, anthropic_errors, errors
from lattice.shim.anthropic_protocol import MessagesRequest
from lattice.v1 import chat_pb2, common_pb2
from lattice.wire.names import STATUS_DETAILS_METADATA_KEY


def proto_json(body: dict[str, Any]) -> dict[str, Any]:
    request = anthropic_convert.request_to_proto(
        MessagesRequest.model_validate({"model": "m", "max_tokens": 9, **body})
    )
    return dict(json_format.MessageToDict(request))


def test_turns_of_blocks_become_the_contracts_messages() -> None:
    request = proto_json(
        {
            "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "Let me look."},
                        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "And be quick."},
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "no such city", "is_error": True},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"},
                        },
                    ],
                },
            ],
            "tools": [{"name": "weather", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "tool", "name": "weather"},
            "stop_sequences": ["\n\n"],
            "temperature": 0,
            "metadata": {"user_id": "u-1"},
        }
    )
    messages = request["messages"]
    assert [m["role"] for m in messages] == ["ROLE_SYSTEM", "ROLE_USER", "ROLE_ASSISTANT", "ROLE_TOOL", "ROLE_USER"]
    assert messages[0]["content"] == [{"text": "Be brief.\n\nBe kind."}]
    assert messages[2]["content"] == [{"text": "Let me look."}]
    call = messages[2]["toolCalls"][0]
    assert call["id"] == "toolu_1" and json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert messages[3] == {
        "role": "ROLE_TOOL",
        "content": [{"text": anthropic_convert.FAILED_RESULT_PREFIX}, {"text": "no such city"}],
        "toolCallId": "toolu_1",
    }
    assert messages[4]["content"] == [{"text": "And be quick."}, {"imageUrl": {"url": "data:image/png;base64,iVBO"}}]
    assert request["toolChoice"] == {"functionName": "weather"}
    assert request["tools"][0]["function"]["name"] == "weather"
    assert (request["stop"], request["maxTokens"], request["user"]) == (["\n\n"], 9, "u-1")
    assert request["temperature"] == 0


def test_tool_choices_are_the_contracts_modes() -> None:
    tools = [{"name": "f", "input_schema": {"type": "object"}}]
    hi = [{"role": "user", "content": "hi"}]
    for anthropic_type, mode in (("auto", "MODE_AUTO"), ("any", "MODE_REQUIRED"), ("none", "MODE_NONE")):
        request = proto_json({"messages": hi, "tools": tools, "tool_choice": {"type": anthropic_type}})
        assert request["toolChoice"] == {"mode": mode}


def stream_message(**event: Any) -> chat_pb2.StreamChatResponse:
    return chat_pb2.StreamChatResponse(id="chatcmpl-abc", model="m", **event)


def events_of(*messages: chat_pb2.StreamChatResponse) -> list[dict[str, Any]]:
    translation = anthropic_convert.StreamTranslation()
    text = translation.start(messages[0]) + "".join(translation.read(m) for m in messages)
    sse = [block.split("\n") for block in text.strip().split("\n\n")]
    events = [json.loads(data.removeprefix("data: ")) for name, data in sse]
    assert [name.removeprefix("event: ") for name, _ in sse] == [e["type"] for e in events]
    return events


def test_text_then_two_tool_calls_are_three_blocks_in_order() -> None:
    call = chat_pb2.ToolCallDelta
    events = events_of(
        stream_message(queued=chat_pb2.QueueStatus(model="m", position=1)),
        stream_message(delta=chat_pb2.ChatDelta(role=common_pb2.ROLE_ASSISTANT, content="Looking")),
        stream_message(delta=chat_pb2.ChatDelta(content=" up.")),
        stream_message(delta=chat_pb2.ChatDelta(tool_calls=[call(index=0, id="c1", function_name="f")])),
        stream_message(delta=chat_pb2.ChatDelta(tool_calls=[call(index=0, function_arguments='{"a":')])),
        stream_message(delta=chat_pb2.ChatDelta(tool_calls=[call(index=0, function_arguments="1}")])),
        stream_message(delta=chat_pb2.ChatDelta(tool_calls=[call(index=1, id="c2", function_name="g")])),
        stream_message(
            done=chat_pb2.ChatDone(
                finish_reason=common_pb2.FINISH_REASON_TOOL_CALLS,
                usage=common_pb2.Usage(prompt_tokens=7, completion_tokens=5, total_tokens=12),
            )
        ),
    )
    assert [(e["type"], e.get("index")) for e in events] == [
        ("message_start", None),
        ("content_block_start", 0),
        ("ping", None),
        ("content_block_delta", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_stop", 2),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert events[0]["message"]["id"] == "msg_abc"
    assert events[6]["content_block"] == {"type": "tool_use", "id": "c1", "name": "f", "input": {}}
    assert "".join(e["delta"]["partial_json"] for e in events if e.get("index") == 1 and "delta" in e) == '{"a":1}'
    assert events[-2]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert events[-2]["usage"] == {"input_tokens": 7, "output_tokens": 5}


def test_the_stop_string_that_ended_the_answer_is_stop_sequence_whole_and_streamed() -> None:
    stop, usage = common_pb2.FINISH_REASON_STOP, common_pb2.Usage(prompt_tokens=3, completion_tokens=2)
    whole = anthropic_convert.response_to_json(
        chat_pb2.ChatResponse(id="chatcmpl-abc", finish_reason=stop, usage=usage, stop_sequence="\n\n")
    )
    assert (whole["stop_reason"], whole["stop_sequence"]) == ("stop_sequence", "\n\n")
    natural = anthropic_convert.response_to_json(chat_pb2.ChatResponse(id="chatcmpl-abc", finish_reason=stop))
    assert (natural["stop_reason"], natural["stop_sequence"]) == ("end_turn", None)
    events = events_of(
        stream_message(delta=chat_pb2.ChatDelta(role=common_pb2.ROLE_ASSISTANT, content="One")),
        stream_message(done=chat_pb2.ChatDone(finish_reason=stop, usage=usage, stop_sequence="\n\n")),
    )
    assert events[-2]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "\n\n"}


def rpc_error(code: grpc.StatusCode, reason: str) -> grpc.aio.AioRpcError:
    status = status_pb2.Status(code=code.value[0], message=f"refused: {reason}")
    status.details.add().Pack(error_details_pb2.ErrorInfo(reason=reason, domain="lattice"))
    trailing = grpc.aio.Metadata((STATUS_DETAILS_METADATA_KEY, status.SerializeToString()))
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details=f"refused: {reason}")


def test_the_gateways_capacity_is_overloaded_and_the_callers_limits_are_rate_limits() -> None:
    cases = {
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "QUEUE_FULL"): (529, "overloaded_error"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "QUEUE_TIMEOUT"): (529, "overloaded_error"),
        (grpc.StatusCode.UNAVAILABLE, "BACKEND_UNAVAILABLE"): (529, "overloaded_error"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED"): (429, "rate_limit_error"),
        (grpc.StatusCode.NOT_FOUND, "MODEL_NOT_FOUND"): (404, "not_found_error"),
        (grpc.StatusCode.PERMISSION_DENIED, "INSUFFICIENT_SCOPES"): (403, "permission_error"),
        (grpc.StatusCode.INTERNAL, "BACKEND_FAILED"): (500, "api_error"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED"): (504, "timeout_error"),
    }
    for (code, reason), (status, type_) in cases.items():
        event = anthropic_errors.stream_error(rpc_error(code, reason))
        name, data = event.strip().split("\n")
        assert name == "event: error"
        assert json.loads(data.removeprefix("data: ")) == {
            "type": "error",
            "error": {"type": type_, "message": f"refused: {reason}"},
        }
        refusal = errors.from_grpc(rpc_error(code, reason))
        assert anthropic_errors.from_openai(refusal.status, refusal.body)[0] == status, (code, reason)
