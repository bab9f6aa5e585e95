"""Domain chat ⇄ Anthropic's Messages API: request kwargs for the SDK, and its stream events back to deltas."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from anthropic.types import (
    InputJSONDelta,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawContentBlockStopEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStreamEvent,
    TextDelta,
    ToolUseBlock,
)

from lattice.errors import InvalidArgument
from lattice.server.chat import (
    ChatRequest,
    Delta,
    Finish,
    FinishReason,
    ImagePart,
    Message,
    Role,
    TextPart,
    ToolCallDelta,
    ToolChoice,
    Usage,
)

_STOP_REASONS = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "pause_turn": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "refusal": FinishReason.CONTENT_FILTER,
}
_IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_DATA_URL = re.compile(r"data:(?P<media>[\w.+-]+/[\w.+-]+)(?:;[^;,]*)*;base64,(?P<data>.*)", re.DOTALL)


def request_kwargs(model: str, request: ChatRequest, max_tokens_ceiling: int) -> dict[str, Any]:
    """Keyword arguments for `client.messages.create` (without `stream`).

    Sampling (`temperature`, `top_p`) and `seed` are deliberately not sent: the
    SDK speaks API version 2026-10-21, which removed the sampling parameters (a
    request carrying any of them is rejected with 400, even at default values),
    and Anthropic has never taken a seed.
    """
    system = "\n\n".join(m.text for m in request.messages if m.role is Role.SYSTEM and m.text)
    kwargs: dict[str, Any] = {
        "model": model,
        # Anthropic requires max_tokens; the gateway's ceiling bounds it whatever the request says.
        "max_tokens": min(request.max_tokens or max_tokens_ceiling, max_tokens_ceiling),
        "messages": _turns(request.messages),
    }
    if system:
        kwargs["system"] = system
    if request.stop:
        kwargs["stop_sequences"] = list(request.stop)
    if request.tools:
        kwargs["tools"] = [
            {
                "name": t.name,
                **({"description": t.description} if t.description else {}),
                "input_schema": t.parameters or {"type": "object", "properties": {}},
                **({"strict": True} if t.strict else {}),
            }
            for t in request.tools
        ]
        # Only alongside tools, as OpenAI has it: a choice among no tools means nothing.
        if request.tool_choice is not None:
            choice = _tool_choice(request.tool_choice)
            if choice is not None:
                kwargs["tool_choice"] = choice
    if request.user:
        kwargs["metadata"] = {"user_id": request.user}
    return kwargs


def _tool_choice(choice: ToolChoice) -> dict[str, str] | None:
    if choice.function_name:
        return {"type": "tool", "name": choice.function_name}
    if choice.mode is None:
        return None
    return {"type": {"none": "none", "auto": "auto", "required": "any"}[choice.mode]}


def _turns(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """User and assistant turns; tool results travel in user turns; same-role neighbours merge into one turn."""
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        if message.role is Role.SYSTEM:
            continue
        role = "assistant" if message.role is Role.ASSISTANT else "user"
        blocks = _blocks(index, message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        # Anthropic wants a user turn's tool_result blocks before anything else in it.
        turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    return turns


def _blocks(index: int, message: Message) -> list[dict[str, Any]]:
    if message.role is Role.TOOL:
        content: str | list[dict[str, Any]] = (
            [_content_block(index, j, p) for j, p in enumerate(message.content)] if message.has_image else message.text
        )
        return [{"type": "tool_result", "tool_use_id": message.tool_call_id, "content": content}]
    # Empty text blocks are rejected upstream; an assistant turn may be tool calls alone.
    blocks = [
        _content_block(index, j, part)
        for j, part in enumerate(message.content)
        if not (isinstance(part, TextPart) and not part.text)
    ]
    for j, call in enumerate(message.tool_calls):
        blocks.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": _tool_input(index, j, call.arguments)}
        )
    return blocks


def _content_block(index: int, j: int, part: TextPart | ImagePart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if part.url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": part.url}}
    match = _DATA_URL.fullmatch(part.url)
    if match is None or match["media"] not in _IMAGE_MEDIA_TYPES:
        raise InvalidArgument(
            f"Anthropic takes images as http(s) URLs or base64 data URLs of {', '.join(_IMAGE_MEDIA_TYPES)}",
            field=f"messages[{index}].content[{j}].image_url",
        )
    return {"type": "image", "source": {"type": "base64", "media_type": match["media"], "data": match["data"]}}


def _tool_input(index: int, j: int, arguments: str) -> dict[str, Any]:
    """A tool call's JSON arguments as the object Anthropic's `tool_use.input` must be."""
    if not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise InvalidArgument(
            "tool call arguments must be a JSON object", field=f"messages[{index}].tool_calls[{j}].function.arguments"
        )
    return value


@dataclass
class StreamState:
    """What the events of one streamed message have said so far."""

    stop_reason: str | None = None
    stop_sequence: str = ""
    """With `stop_reason: stop_sequence`: which of the request's stop sequences Anthropic says it met."""
    input_tokens: int = 0
    output_tokens: int = 0
    # Content-block index → (the tool call's ordinal among tool_use blocks, whether it sent any arguments).
    _tools: dict[int, tuple[int, bool]] = field(default_factory=dict)

    def read_event(self, event: RawMessageStreamEvent) -> Delta | None:
        """Updates the state from one SDK stream event; returns its new output, if any."""
        if isinstance(event, RawMessageStartEvent):
            usage = event.message.usage
            self.input_tokens = (
                usage.input_tokens + (usage.cache_creation_input_tokens or 0) + (usage.cache_read_input_tokens or 0)
            )
            self.output_tokens = usage.output_tokens
        elif isinstance(event, RawContentBlockStartEvent):
            block = event.content_block
            if isinstance(block, ToolUseBlock):
                ordinal = len(self._tools)
                # Input usually arrives as input_json_delta fragments; a start that carries it whole says so here.
                arguments = json.dumps(block.input) if block.input else ""
                self._tools[event.index] = (ordinal, bool(arguments))
                return Delta(tool_calls=(ToolCallDelta(ordinal, id=block.id, name=block.name, arguments=arguments),))
        elif isinstance(event, RawContentBlockDeltaEvent):
            delta = event.delta
            if isinstance(delta, TextDelta) and delta.text:
                return Delta(delta.text)
            if isinstance(delta, InputJSONDelta) and delta.partial_json and event.index in self._tools:
                ordinal, _ = self._tools[event.index]
                self._tools[event.index] = (ordinal, True)
                return Delta(tool_calls=(ToolCallDelta(ordinal, arguments=delta.partial_json),))
        elif isinstance(event, RawContentBlockStopEvent):
            ordinal, sent = self._tools.get(event.index, (-1, True))
            if not sent:
                # A tool without parameters streams no input; callers parse arguments as JSON.
                self._tools[event.index] = (ordinal, True)
                return Delta(tool_calls=(ToolCallDelta(ordinal, arguments="{}"),))
        elif isinstance(event, RawMessageDeltaEvent):
            self.stop_reason = event.delta.stop_reason or self.stop_reason
            self.stop_sequence = event.delta.stop_sequence or self.stop_sequence
            self.output_tokens = event.usage.output_tokens  # cumulative
            if event.usage.input_tokens is not None:
                self.input_tokens = (
                    event.usage.input_tokens
                    + (event.usage.cache_creation_input_tokens or 0)
                    + (event.usage.cache_read_input_tokens or 0)
                )
        return None

    def finish(self) -> Finish:
        reason = _STOP_REASONS.get(self.stop_reason or "", FinishReason.STOP)
        stop = self.stop_sequence if self.stop_reason == "stop_sequence" else ""
        return Finish(reason, Usage(self.input_tokens, self.output_tokens), stop)
