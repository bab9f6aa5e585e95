"""Anthropic Messages JSON ⇄ the contract's Chat: a request as a `ChatRequest`, a `ChatResponse` as a
`message`, and a `StreamChat` stream as Anthropic's events. Translation only: the server decides.

Anthropic's turns hold blocks; the contract's messages are OpenAI-like. A user turn's `tool_result`
blocks become `ROLE_TOOL` messages (in order, before the turn's other blocks, where Anthropic wants
them); an assistant turn's `tool_use` blocks become its `tool_calls`; images become image parts
(base64 sources as data URLs). A failed tool result (`is_error`) is said in its text, since the
contract has no flag for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lattice.shim import anthropic_protocol as wire
from lattice.shim import convert
from lattice.shim.fast_json import compact
from lattice.v1 import chat_pb2, common_pb2

STOP_REASONS = {
    common_pb2.FINISH_REASON_STOP: "end_turn",
    common_pb2.FINISH_REASON_LENGTH: "max_tokens",
    common_pb2.FINISH_REASON_TOOL_CALLS: "tool_use",
    common_pb2.FINISH_REASON_CONTENT_FILTER: "refusal",
}
_TOOL_CHOICE_MODES = {
    "auto": chat_pb2.ToolChoice.MODE_AUTO,
    "any": chat_pb2.ToolChoice.MODE_REQUIRED,
    "none": chat_pb2.ToolChoice.MODE_NONE,
}
FAILED_RESULT_PREFIX = "Error: "


def request_to_proto(body: wire.MessagesRequest) -> chat_pb2.ChatRequest:
    request = chat_pb2.ChatRequest(
        model=body.model,
        max_tokens=body.max_tokens,
        stop=body.stop_sequences,
        tools=[_tool(t) for t in body.tools],
        user=(body.metadata.user_id or "") if body.metadata else "",
    )
    system = body.system if isinstance(body.system, str) else "\n\n".join(b.text for b in body.system or ())
    if system:
        request.messages.append(common_pb2.Message(role=common_pb2.ROLE_SYSTEM, content=[_text(system)]))
    for turn in body.messages:
        request.messages.extend(_turn(turn))
    if body.temperature is not None:
        request.temperature = body.temperature
    if body.top_p is not None:
        request.top_p = body.top_p
    if body.tool_choice is not None:
        if isinstance(body.tool_choice, wire.NamedChoice):
            request.tool_choice.function_name = body.tool_choice.name
        else:
            request.tool_choice.mode = _TOOL_CHOICE_MODES[body.tool_choice.type]
    return request


def _tool(tool: wire.ToolParam) -> chat_pb2.Tool:
    tool_proto = chat_pb2.Tool(
        type="function", function=chat_pb2.FunctionDefinition(name=tool.name, description=tool.description)
    )
    tool_proto.function.parameters.update(tool.input_schema)
    return tool_proto


def _text(text: str) -> common_pb2.ContentPart:
    return common_pb2.ContentPart(text=text)


def _image(block: wire.ImageBlock) -> common_pb2.ContentPart:
    source = block.source
    url = source.url if isinstance(source, wire.UrlSource) else f"data:{source.media_type};base64,{source.data}"
    return common_pb2.ContentPart(image_url=common_pb2.ImageUrl(url=url))


def _part(block: wire.TextBlock | wire.ImageBlock) -> common_pb2.ContentPart:
    return _text(block.text) if isinstance(block, wire.TextBlock) else _image(block)


def _turn(turn: wire.MessageParam) -> list[common_pb2.Message]:
    blocks = [wire.TextBlock(type="text", text=turn.content)] if isinstance(turn.content, str) else turn.content
    if turn.role == "assistant":
        return [
            common_pb2.Message(
                role=common_pb2.ROLE_ASSISTANT,
                content=[_part(b) for b in blocks if isinstance(b, wire.TextBlock | wire.ImageBlock)],
                tool_calls=[
                    common_pb2.ToolCall(
                        id=b.id,
                        type="function",
                        function=common_pb2.FunctionCall(name=b.name, arguments=json.dumps(b.input)),
                    )
                    for b in blocks
                    if isinstance(b, wire.ToolUseBlock)
                ],
            )
        ]
    messages = [_tool_result(b) for b in blocks if isinstance(b, wire.ToolResultBlock)]
    parts = [_part(b) for b in blocks if isinstance(b, wire.TextBlock | wire.ImageBlock)]
    if parts or not messages:
        messages.append(common_pb2.Message(role=common_pb2.ROLE_USER, content=parts))
    return messages


def _tool_result(block: wire.ToolResultBlock) -> common_pb2.Message:
    parts = [_text(block.content)] if isinstance(block.content, str) else [_part(p) for p in block.content]
    if block.is_error:
        parts.insert(0, _text(FAILED_RESULT_PREFIX))
    return common_pb2.Message(role=common_pb2.ROLE_TOOL, content=parts, tool_call_id=block.tool_use_id)


def misplaced_block(body: wire.MessagesRequest) -> str | None:
    """The param of a block in the wrong turn (`tool_use` is the assistant's, `tool_result` the user's)
    or of a turn without blocks, as Anthropic refuses them; else None."""
    wrong = {"user": wire.ToolUseBlock, "assistant": wire.ToolResultBlock}
    for i, turn in enumerate(body.messages):
        if turn.content == []:
            return f"messages[{i}].content"  # a turn of no blocks at all: Anthropic refuses it too
        if not isinstance(turn.content, str):
            for j, block in enumerate(turn.content):
                if isinstance(block, wrong[turn.role]):
                    return f"messages[{i}].content[{j}]"
    return None


def message_id(completion_id: str) -> str:
    """Anthropic's `msg_…` id for the completion's id (the same id, in Anthropic's spelling)."""
    return "msg_" + completion_id.removeprefix("chatcmpl-")


def tool_input(arguments: str) -> dict[str, Any]:
    """A call's JSON arguments as the object `tool_use.input` must be (constrained decoding makes them
    JSON; an upstream's malformed ones are kept, under `arguments`, rather than lost)."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"arguments": value}


def usage_to_json(usage: common_pb2.Usage) -> dict[str, int]:
    return {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens}


def stop_to_json(finish_reason: common_pb2.FinishReason, stop_sequence: str) -> dict[str, str | None]:
    """`stop_reason` and `stop_sequence`: `stop_sequence` and the string when one of the request's ended
    the answer (the contract says which), else the finish reason's name and null."""
    if stop_sequence:
        return {"stop_reason": "stop_sequence", "stop_sequence": stop_sequence}
    return {"stop_reason": STOP_REASONS.get(finish_reason), "stop_sequence": None}


def response_to_json(response: chat_pb2.ChatResponse) -> dict[str, Any]:
    text = convert.message_text(response.message)
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content += [
        {"type": "tool_use", "id": c.id, "name": c.function.name, "input": tool_input(c.function.arguments)}
        for c in response.message.tool_calls
    ]
    return {
        "id": message_id(response.id),
        "type": "message",
        "role": "assistant",
        "model": response.model,
        "content": content,
        **stop_to_json(response.finish_reason, response.stop_sequence),
        "usage": usage_to_json(response.usage),
    }


def event(name: str, payload: dict[str, Any]) -> str:
    """One SSE event as Anthropic sends them: the type as the event's name and in its data."""
    return f"event: {name}\ndata: {compact({'type': name, **payload})}\n\n"


@dataclass
class StreamTranslation:
    """StreamChat messages → Anthropic's events, in Anthropic's order: `message_start`, then per content
    block `content_block_start`, its deltas and `content_block_stop` (text and each tool call are blocks
    of their own), `message_delta` with the stop reason and usage, `message_stop`. A `ping` follows the
    first block's start, as Anthropic sends one."""

    _open: str | None = None
    """The kind of the open block (`text` or `tool_use`), if one is open."""
    _index: int = -1
    _pinged: bool = False
    _tool_blocks: dict[int, int] = field(default_factory=dict)
    """A tool call's index in the stream → its content block's index."""

    @staticmethod
    def start(message: chat_pb2.StreamChatResponse) -> str:
        return event(
            "message_start",
            {
                "message": {
                    "id": message_id(message.id),
                    "type": "message",
                    "role": "assistant",
                    "model": message.model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    # Known only when the answer ends: the real counts come with `message_delta`.
                    "usage": {"input_tokens": 0, "output_tokens": 0},
                }
            },
        )

    def read(self, message: chat_pb2.StreamChatResponse) -> str:
        """The events for one StreamChat message (none for a queue update)."""
        if message.HasField("done"):
            done = message.done
            return (
                self._close()
                + event(
                    "message_delta",
                    {
                        "delta": stop_to_json(done.finish_reason, done.stop_sequence),
                        "usage": usage_to_json(done.usage),
                    },
                )
                + event("message_stop", {})
            )
        if not message.HasField("delta"):
            return ""
        out = ""
        delta = message.delta
        if delta.content:
            if self._open != "text":
                out += self._begin("text", {"type": "text", "text": ""})
            out += event(
                "content_block_delta", {"index": self._index, "delta": {"type": "text_delta", "text": delta.content}}
            )
        for call in delta.tool_calls:
            if call.index not in self._tool_blocks:
                block = {"type": "tool_use", "id": call.id, "name": call.function_name, "input": {}}
                out += self._begin("tool_use", block)
                self._tool_blocks[call.index] = self._index
            if call.function_arguments:
                partial = {"type": "input_json_delta", "partial_json": call.function_arguments}
                out += event("content_block_delta", {"index": self._tool_blocks[call.index], "delta": partial})
        return out

    def _begin(self, kind: str, block: dict[str, Any]) -> str:
        out = self._close()
        self._index += 1
        self._open = kind
        out += event("content_block_start", {"index": self._index, "content_block": block})
        if not self._pinged:
            self._pinged = True
            out += event("ping", {})
        return out

    def _close(self) -> str:
        if self._open is None:
            return ""
        self._open = None
        return event("content_block_stop", {"index": self._index})
