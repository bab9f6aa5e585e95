"""Domain chat ⇄ OpenAI chat-completions JSON, for OpenAI-compatible upstreams."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lattice.server.chat import (
    ChatRequest,
    Delta,
    FinishReason,
    ImagePart,
    Message,
    TextPart,
    TokenLogprob,
    ToolCallDelta,
    TopLogprob,
    Usage,
)

_FINISH_REASONS = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
    "content_filter": FinishReason.CONTENT_FILTER,
}


def request_body(model: str, request: ChatRequest) -> dict[str, Any]:
    body = {"model": model, "messages": [_message(m) for m in request.messages], **_generation(request)}
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters or {"type": "object", "properties": {}},
                    **({"strict": True} if t.strict else {}),
                },
            }
            for t in request.tools
        ]
    if request.tool_choice is not None:
        choice = request.tool_choice
        body["tool_choice"] = (
            {"type": "function", "function": {"name": choice.function_name}} if choice.function_name else choice.mode
        )
    if request.response_format is not None:
        body["response_format"] = {"type": request.response_format.type}
        if request.response_format.json_schema is not None:
            body["response_format"]["json_schema"] = request.response_format.json_schema
    return body


def completion_body(model: str, request: ChatRequest) -> dict[str, Any]:
    """A text completion (`request.prompt`, sent raw) as the body of OpenAI's legacy `/v1/completions`."""
    return {"model": model, "prompt": request.prompt or "", **_generation(request)}


def _generation(request: ChatRequest) -> dict[str, Any]:
    """What chat and text completions say alike: streaming with usage, sampling, length, stops, the user."""
    body: dict[str, Any] = {
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": request.sampling.temperature,
        "top_p": request.sampling.top_p,
    }
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.sampling.seed is not None:
        body["seed"] = request.sampling.seed
    if request.stop:
        body["stop"] = list(request.stop)
    if request.user:
        body["user"] = request.user
    return body


def _message(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role.value}
    if message.has_image:
        out["content"] = [_part(p) for p in message.content]
    else:
        out["content"] = message.text
    if message.name:
        out["name"] = message.name
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    return out


def _part(part: TextPart | ImagePart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    image: dict[str, str] = {"url": part.url}
    if part.detail:
        image["detail"] = part.detail
    return {"type": "image_url", "image_url": image}


@dataclass
class StreamState:
    """What the chunks of one streamed answer have said so far."""

    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    completion_tokens_seen: int = 0
    stops: tuple[str, ...] = ()
    """The request's stop strings: the only values taken as a choice's `stop_reason`."""
    stop_sequence: str = ""
    """The stop string the upstream says ended the answer. OpenAI's API has no such field and most servers
    say nothing; vLLM's choices carry `stop_reason` (the stop string, a stop token's id, or null)."""

    def read_chunk(self, chunk: dict[str, Any]) -> Delta | None:
        """Updates the state from one `chat.completion.chunk` (or legacy `text_completion` chunk, whose text is
        `choices[0].text`); returns its new output, if any."""
        if isinstance(chunk.get("usage"), dict):
            usage = chunk["usage"]
            self.usage = Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))
        choices = chunk.get("choices") or []
        if not choices:
            return None
        choice = choices[0]
        if choice.get("finish_reason"):
            self.finish_reason = _FINISH_REASONS.get(choice["finish_reason"], FinishReason.STOP)
            if (stop := choice.get("stop_reason")) in self.stops and self.finish_reason is FinishReason.STOP:
                self.stop_sequence = stop
        delta = choice.get("delta") or {}
        text = delta.get("content") or choice.get("text") or ""
        tool_calls = tuple(
            ToolCallDelta(
                index=int(call.get("index", 0)),
                id=call.get("id") or "",
                name=(call.get("function") or {}).get("name") or "",
                arguments=(call.get("function") or {}).get("arguments") or "",
            )
            for call in delta.get("tool_calls") or ()
        )
        logprobs = _logprobs(choice.get("logprobs"))
        if not text and not tool_calls and not logprobs:
            return None
        self.completion_tokens_seen += 1
        return Delta(text, tool_calls, logprobs)

    def final_usage(self, prompt_estimate: int) -> Usage:
        """The upstream's usage, or a count of streamed chunks when it sent none."""
        return self.usage or Usage(prompt_estimate, self.completion_tokens_seen)


def _logprobs(value: Any) -> tuple[TokenLogprob, ...]:
    """OpenAI's `choices[].logprobs.content`, as domain objects."""
    if not isinstance(value, dict):
        return ()
    return tuple(
        TokenLogprob(
            token=item.get("token", ""),
            logprob=float(item.get("logprob", 0.0)),
            bytes=bytes(item.get("bytes") or b""),
            top=tuple(
                TopLogprob(top.get("token", ""), float(top.get("logprob", 0.0)), bytes(top.get("bytes") or b""))
                for top in item.get("top_logprobs") or ()
            ),
        )
        for item in value.get("content") or ()
    )
