"""OpenAI JSON ⇄ Lattice proto. Translation only: every decision is the server's."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from google.protobuf import json_format, struct_pb2

from lattice.shim import protocol
from lattice.v1 import chat_pb2, common_pb2

ROLES = {
    "system": common_pb2.ROLE_SYSTEM,
    "developer": common_pb2.ROLE_SYSTEM,
    "user": common_pb2.ROLE_USER,
    "assistant": common_pb2.ROLE_ASSISTANT,
    "tool": common_pb2.ROLE_TOOL,
}
_TOOL_CHOICE_MODES = {
    "none": chat_pb2.ToolChoice.MODE_NONE,
    "auto": chat_pb2.ToolChoice.MODE_AUTO,
    "required": chat_pb2.ToolChoice.MODE_REQUIRED,
}
_RESPONSE_FORMATS = {
    "text": chat_pb2.ResponseFormat.TYPE_TEXT,
    "json_object": chat_pb2.ResponseFormat.TYPE_JSON_OBJECT,
    "json_schema": chat_pb2.ResponseFormat.TYPE_JSON_SCHEMA,
}
FINISH_REASONS = {
    common_pb2.FINISH_REASON_STOP: "stop",
    common_pb2.FINISH_REASON_LENGTH: "length",
    common_pb2.FINISH_REASON_TOOL_CALLS: "tool_calls",
    common_pb2.FINISH_REASON_CONTENT_FILTER: "content_filter",
}


def chat_request_to_proto(body: protocol.ChatCompletionRequest) -> chat_pb2.ChatRequest:
    request = chat_pb2.ChatRequest(
        model=body.model,
        messages=[message_to_proto(m) for m in body.messages],
        stop=[body.stop] if isinstance(body.stop, str) else (body.stop or []),
        tools=[_tool_to_proto(t) for t in body.tools],
        user=body.user,
        logprobs=body.logprobs,
        top_logprobs=body.top_logprobs or 0,
    )
    max_tokens = body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
    if max_tokens is not None:
        request.max_tokens = max_tokens
    if body.temperature is not None:
        request.temperature = body.temperature
    if body.top_p is not None:
        request.top_p = body.top_p
    if body.seed is not None:
        request.seed = body.seed
    if body.priority is not None:
        request.priority = body.priority
    if isinstance(body.tool_choice, str):
        request.tool_choice.mode = _TOOL_CHOICE_MODES[body.tool_choice]
    elif body.tool_choice is not None:
        function = body.tool_choice.function
        request.tool_choice.function_name = (
            function.name if isinstance(function, protocol.FunctionCall) else function.get("name", "")
        )
    if body.response_format is not None:
        request.response_format.type = _RESPONSE_FORMATS[body.response_format.type]
        if body.response_format.json_schema is not None:
            request.response_format.json_schema.SetInParent()  # present even when empty: `{}` is not "no schema"
            request.response_format.json_schema.update(body.response_format.json_schema)
    return request


def message_to_proto(message: protocol.ChatMessage) -> common_pb2.Message:
    if isinstance(message.content, str):
        parts = [common_pb2.ContentPart(text=message.content)]
    elif message.content is None:
        parts = []
    else:
        parts = [
            common_pb2.ContentPart(text=p.text)
            if isinstance(p, protocol.TextPart)
            else common_pb2.ContentPart(image_url=common_pb2.ImageUrl(url=p.image_url.url, detail=p.image_url.detail))
            for p in message.content
        ]
    return common_pb2.Message(
        role=ROLES[message.role],
        content=parts,
        name=message.name,
        tool_calls=[
            common_pb2.ToolCall(
                id=c.id,
                type=c.type,
                function=common_pb2.FunctionCall(name=c.function.name, arguments=c.function.arguments),
            )
            for c in message.tool_calls
        ],
        tool_call_id=message.tool_call_id,
    )


def _tool_to_proto(tool: protocol.Tool) -> chat_pb2.Tool:
    parameters = struct_pb2.Struct()
    if tool.function.parameters is not None:
        parameters.update(tool.function.parameters)
    return chat_pb2.Tool(
        type=tool.type,
        function=chat_pb2.FunctionDefinition(
            name=tool.function.name,
            description=tool.function.description,
            parameters=parameters,
            strict=tool.function.strict,
        ),
    )


def usage_to_json(usage: common_pb2.Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def message_text(message: common_pb2.Message) -> str:
    return "".join(p.text for p in message.content if p.WhichOneof("part") == "text")


def chat_response_to_json(response: chat_pb2.ChatResponse) -> dict[str, Any]:
    # As OpenAI: a message that only calls tools has `content: null`.
    text = message_text(response.message)
    message: dict[str, Any] = {"role": "assistant", "content": text or (None if response.message.tool_calls else "")}
    if response.message.tool_calls:
        message["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.function.name, "arguments": c.function.arguments},
            }
            for c in response.message.tool_calls
        ]
    return {
        "id": response.id,
        "object": "chat.completion",
        "created": response.create_time.seconds or int(time.time()),
        "model": response.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": logprobs_to_json(response.logprobs),
                "finish_reason": FINISH_REASONS.get(response.finish_reason),
            }
        ],
        "usage": usage_to_json(response.usage),
        "lattice": {"resolution": json_format.MessageToDict(response.resolution)},
    }


def chunk_to_json(chunk: chat_pb2.StreamChatResponse) -> dict[str, Any]:
    """One stream message as an OpenAI `chat.completion.chunk` (a `done` carries the finish reason)."""
    delta: dict[str, Any] = {}
    finish_reason = None
    if chunk.HasField("delta"):
        if chunk.delta.role == common_pb2.ROLE_ASSISTANT:
            delta["role"] = "assistant"
        # OpenAI sends `content: null` beside tool-call fragments.
        delta["content"] = chunk.delta.content or (None if chunk.delta.tool_calls else "")
        if chunk.delta.tool_calls:
            delta["tool_calls"] = [
                {
                    "index": c.index,
                    **({"id": c.id, "type": c.type or "function"} if c.id else {}),
                    "function": {
                        **({"name": c.function_name} if c.function_name else {}),
                        "arguments": c.function_arguments,
                    },
                }
                for c in chunk.delta.tool_calls
            ]
    else:
        finish_reason = FINISH_REASONS.get(chunk.done.finish_reason)
    return {
        "id": chunk.id,
        "object": "chat.completion.chunk",
        "created": chunk.create_time.seconds,
        "model": chunk.model,
        "choices": [
            {
                "index": 0,
                "delta": delta,
                "logprobs": logprobs_to_json(chunk.delta.logprobs) if chunk.HasField("delta") else None,
                "finish_reason": finish_reason,
            }
        ],
    }


def logprobs_to_json(logprobs: Iterable[chat_pb2.TokenLogprob]) -> dict[str, Any] | None:
    """OpenAI's `logprobs` of a choice: None unless the request asked for them (and tokens came)."""
    content = [
        {
            "token": t.token,
            "logprob": t.logprob,
            "bytes": list(t.bytes),
            "top_logprobs": [{"token": o.token, "logprob": o.logprob, "bytes": list(o.bytes)} for o in t.top_logprobs],
        }
        for t in logprobs
    ]
    return {"content": content, "refusal": None} if content else None


def usage_chunk_to_json(chunk: chat_pb2.StreamChatResponse) -> dict[str, Any]:
    """The extra last chunk `stream_options.include_usage` asks for: no choices, the usage."""
    return {
        "id": chunk.id,
        "object": "chat.completion.chunk",
        "created": chunk.create_time.seconds,
        "model": chunk.model,
        "choices": [],
        "usage": usage_to_json(chunk.done.usage),
    }
