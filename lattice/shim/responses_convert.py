"""OpenAI Responses JSON ⇄ the contract's Chat. Translation only, as lattice.shim.convert.

A Responses request is another shape of a chat: its `instructions` and `input` items become chat
messages (a `function_call` item is an assistant's tool call, a `function_call_output` a tool
message), its options the chat's. The request is said as a chat-completions body and handed to the
chat route's own converter, so both routes send the server the same ChatRequest for the same ask.
The answer (a ChatResponse, or a stream's pieces) becomes a `response` object with `output` items.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from lattice.shim import convert, protocol
from lattice.shim.responses_protocol import (
    ContentPart,
    FunctionCallItem,
    FunctionCallOutputItem,
    FunctionTool,
    FunctionToolChoice,
    InputImage,
    MessageItem,
    RefusalPart,
    ResponsesRequest,
    TextFormatJsonSchema,
    TextFormatPlain,
    ToolOutputPart,
)
from lattice.v1 import chat_pb2, common_pb2

# How an answer ended → the response's status and `incomplete_details.reason` (None: completed).
_INCOMPLETE: dict[common_pb2.FinishReason, str] = {
    common_pb2.FINISH_REASON_LENGTH: "max_output_tokens",
    common_pb2.FINISH_REASON_CONTENT_FILTER: "content_filter",
}


def chat_request(body: ResponsesRequest) -> chat_pb2.ChatRequest:
    return convert.chat_request_to_proto(protocol.ChatCompletionRequest.model_validate(chat_json(body)))


def chat_json(body: ResponsesRequest) -> dict[str, Any]:
    """The chat-completions body that asks what `body` asks."""
    chat: dict[str, Any] = {"model": body.model, "messages": _messages(body), "user": body.user}
    options = {
        "max_completion_tokens": body.max_output_tokens,
        "temperature": body.temperature,
        "top_p": body.top_p,
    }
    chat.update({k: v for k, v in options.items() if v is not None})
    if body.tools:
        chat["tools"] = [_tool(t) for t in body.tools if isinstance(t, FunctionTool)]
        if isinstance(body.tool_choice, FunctionToolChoice):
            chat["tool_choice"] = {"type": "function", "function": {"name": body.tool_choice.name}}
        elif body.tool_choice is not None:
            chat["tool_choice"] = body.tool_choice
    text_format = body.text.format if body.text else None
    if isinstance(text_format, TextFormatJsonSchema):
        chat["response_format"] = {"type": "json_schema", "json_schema": _json_schema(text_format)}
    elif text_format is not None:
        chat["response_format"] = {"type": text_format.type}
    if body.wants_logprobs:
        chat["logprobs"] = True
        if body.top_logprobs is not None:
            chat["top_logprobs"] = body.top_logprobs
    return chat


def _messages(body: ResponsesRequest) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if body.instructions:
        messages.append({"role": "system", "content": body.instructions})
    items = [MessageItem(role="user", content=body.input)] if isinstance(body.input, str) else body.input
    for item in items:
        if isinstance(item, MessageItem):
            messages.append({"role": item.role, "content": _content(item.content)})
        elif isinstance(item, FunctionCallItem):
            function = {"name": item.name, "arguments": item.arguments}
            call = {"id": item.call_id, "type": "function", "function": function}
            if messages and messages[-1]["role"] == "assistant":  # the calls of one turn, and its text
                messages[-1].setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif isinstance(item, FunctionCallOutputItem):
            messages.append({"role": "tool", "tool_call_id": item.call_id, "content": _content(item.output)})
    return messages


def _content(content: str | list[ContentPart] | list[ToolOutputPart]) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    return [_part(p) for p in content]


def _part(part: ContentPart | ToolOutputPart) -> dict[str, Any]:
    if isinstance(part, InputImage):
        return {"type": "image_url", "image_url": {"url": part.image_url, "detail": part.detail}}
    return {"type": "text", "text": part.refusal if isinstance(part, RefusalPart) else part.text}


def _tool(tool: FunctionTool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "description": tool.description, "strict": _strict(tool.strict)}
    if tool.parameters is not None:
        function["parameters"] = tool.parameters
    return {"type": "function", "function": function}


def _strict(strict: bool | None) -> bool:
    return True if strict is None else strict  # the Responses API's default, unlike chat's


def _json_schema(text_format: TextFormatJsonSchema) -> dict[str, Any]:
    described = {"description": text_format.description} if text_format.description is not None else {}
    return {"name": text_format.name, "schema": text_format.schema_, "strict": bool(text_format.strict), **described}


# --- the answer -------------------------------------------------------------------------------------


def response_id(chat_id: str) -> str:
    """`resp_…` from the chat's id (its random part), so that logs of one answer share one name."""
    return "resp_" + (chat_id.rpartition("-")[2] or uuid.uuid4().hex)


def item_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def status_of(finish_reason: common_pb2.FinishReason) -> tuple[str, dict[str, str] | None]:
    """The response's `status` and `incomplete_details` for how the answer ended."""
    reason = _INCOMPLETE.get(finish_reason)
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


def output_text(text: str, logprobs: Iterable[chat_pb2.TokenLogprob] = ()) -> dict[str, Any]:
    found = convert.logprobs_to_json(logprobs)
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": found["content"] if found else []}


def message_item(item: str, parts: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {"id": item, "type": "message", "role": "assistant", "status": status, "content": parts}


def function_call_item(item: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": item,
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def usage_json(usage: common_pb2.Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }


def response_json(
    body: ResponsesRequest,
    *,
    id_: str,
    model: str,
    created_at: int,
    status: str,
    output: list[dict[str, Any]] | None = None,
    usage: common_pb2.Usage | None = None,
    incomplete_details: dict[str, str] | None = None,
    error: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A `response` object: the answer so far (`output`, `usage`), and the request's options echoed as
    OpenAI echoes them, defaults filled in."""
    text_format = body.text.format if body.text and body.text.format else TextFormatPlain(type="text")
    return {
        "id": id_,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": error,
        "incomplete_details": incomplete_details,
        "instructions": body.instructions,
        "max_output_tokens": body.max_output_tokens,
        "model": model,
        "output": output or [],
        "parallel_tool_calls": True if body.parallel_tool_calls is None else body.parallel_tool_calls,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "temperature": 1.0 if body.temperature is None else body.temperature,
        "text": {"format": text_format.model_dump(by_alias=True, exclude_none=True)},
        "tool_choice": _tool_choice_json(body.tool_choice),
        "tools": [{**t.model_dump(), "strict": _strict(t.strict)} for t in body.tools if isinstance(t, FunctionTool)],
        "top_p": 1.0 if body.top_p is None else body.top_p,
        "truncation": "disabled",
        "usage": usage_json(usage) if usage is not None else None,
        "user": body.user or None,
        "metadata": body.metadata or {},
    }


def _tool_choice_json(choice: str | FunctionToolChoice | None) -> str | dict[str, str]:
    if isinstance(choice, FunctionToolChoice):
        return {"type": "function", "name": choice.name}
    return choice or "auto"


def response_from_chat(body: ResponsesRequest, chat: chat_pb2.ChatResponse) -> dict[str, Any]:
    """The whole answer of a unary Chat as a `response`."""
    status, incomplete = status_of(chat.finish_reason)
    text = convert.message_text(chat.message)
    output: list[dict[str, Any]] = []
    if text or not chat.message.tool_calls:  # as OpenAI: a turn that only calls tools has no message
        output.append(message_item(item_id("msg"), [output_text(text, chat.logprobs)], status))
    output += [
        function_call_item(item_id("fc"), c.id, c.function.name, c.function.arguments, "completed")
        for c in chat.message.tool_calls
    ]
    return response_json(
        body,
        id_=response_id(chat.id),
        model=chat.model,
        created_at=chat.create_time.seconds,
        status=status,
        output=output,
        usage=chat.usage,
        incomplete_details=incomplete,
    )
