"""A domain chat, text completion or embedding request as the OpenAI JSON llama.cpp's server reads: the
OpenAI upstream's translation, plus what only the in-process engine does (logprobs, prompt progress,
emulated tools)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from lattice.server.backends.llamacpp.tool_emulation import ToolEmulation, plain_messages
from lattice.server.backends.upstream.openai_wire import completion_body, request_body
from lattice.server.chat import ChatRequest, Delta
from lattice.server.embeddings import EmbedRequest


def chat_body(
    request: ChatRequest, *, max_tokens: int, native_tools: bool
) -> tuple[dict[str, Any], ToolEmulation | None]:
    """The body, and the tool emulation its answer must be read with (None: read it as it comes).

    Without `native_tools` (the model's template renders no tools), tools and tool history become plain
    text and an answer that may call a tool is constrained to the emulation's schema."""
    body = request_body("", request)
    del body["model"]
    body["max_tokens"] = max_tokens
    # A progress chunk after each prompt batch: a caller who leaves during a long prompt is noticed there,
    # not only once the first token is out.
    body["return_progress"] = True
    if request.logprobs:
        body["logprobs"] = True
        # llama.cpp streams no log probabilities at all with 0 alternatives: ask for one, and drop it
        # when it was not asked for (`trim_logprobs`).
        body["top_logprobs"] = max(1, request.top_logprobs)
    if native_tools or not (request.tools or any(m.tool_calls or m.tool_call_id for m in request.messages)):
        return body, None
    body.pop("tools", None)
    body.pop("tool_choice", None)
    emulation = ToolEmulation.for_request(request)
    if emulation is None:
        body["messages"] = plain_messages(request.messages)
        return body, None
    body["messages"] = emulation.messages(request.messages)
    body["response_format"] = {
        "type": "json_schema",
        "json_schema": {"name": "tool_call", "schema": emulation.schema(), "strict": True},
    }
    return body, emulation


def text_completion_body(request: ChatRequest, *, max_tokens: int) -> dict[str, Any]:
    """A text completion (`request.prompt`, raw, no chat template) as llama.cpp's `/completions` body."""
    body = completion_body("", request)
    del body["model"]
    body["max_tokens"] = max_tokens
    body["return_progress"] = True  # as for chat: a caller who leaves during a long prompt is noticed
    return body


def embeddings_body(request: EmbedRequest) -> dict[str, Any]:
    """llama.cpp's `/v1/embeddings` body: text and token-id inputs alike, floats back (the shim encodes)."""
    return {"input": [item if isinstance(item, str) else list(item) for item in request.inputs]}


def trim_logprobs(delta: Delta, top: int) -> Delta:
    """`delta` with at most `top` alternatives per token."""
    if not delta.logprobs or all(len(t.top) <= top for t in delta.logprobs):
        return delta
    return replace(delta, logprobs=tuple(replace(t, top=t.top[:top]) for t in delta.logprobs))
