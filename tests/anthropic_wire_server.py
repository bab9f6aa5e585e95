"""A local stand-in for Anthropic's API, speaking the Messages API wire protocol as documented.

No real Anthropic endpoint is reachable from this machine, so tests point the
real `anthropic` SDK (inside `AnthropicUpstream`) at this server over real HTTP
on loopback. It implements what the backend uses, in the documented shapes:

- `POST /v1/messages`, as one JSON `message`, or with `"stream": true` as SSE
  (`event:`/`data:` lines in the documented order: message_start,
  content_block_start, ping, content_block_delta…, content_block_stop,
  message_delta, message_stop; a failure mid-stream is an `event: error`);
- `GET /v1/models`, the documented list shape (`data`, `has_more`, `first_id`, `last_id`);
- errors as `{"type": "error", "error": {"type", "message"}}` with their status
  codes, and `retry-after` on 429;
- the API-key check (`Authorization: Bearer` as SDK 2.x sends it, or `x-api-key`),
  the required `anthropic-version` header, and the request validation the
  backend's mapping must satisfy: under `anthropic-version: 2026-10-21`
  `temperature`/`top_p`/`top_k` are rejected; tool results must answer a
  `tool_use` of the previous assistant turn and come first in their turn.
  Turns must alternate user/assistant: stricter than the API (which merges
  neighbours itself) so that the backend's own merging is what gets tested.

Behaviour is scripted by the model id (see `MODELS`) and derived from the
request, so every answer is deterministic. A "token" is a whitespace-delimited
word. Every request is recorded (`requests`) so tests can assert on the mapping.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Send

ECHO = "claude-echo-1"
"""Answers `You said: <last user text>`; calls the offered tools (unless tool_choice is none); answers tool results."""
SLOW = "claude-slow-1"
"""Streams words slowly, for minutes, unless the client goes away (recorded in `disconnected`)."""
RATE_LIMITED = "claude-rate-limited-1"
"""429 rate_limit_error with `retry-after: 7`."""
BROKEN = "claude-broken-1"
"""500 api_error."""
OVERLOADED = "claude-overloaded-1"
"""529 overloaded_error."""
BREAKS_MID_STREAM = "claude-breaks-mid-stream-1"
"""Starts answering, then sends an `event: error` (overloaded_error) in the middle of the stream."""
MODELS = (ECHO, SLOW, RATE_LIMITED, BROKEN, OVERLOADED, BREAKS_MID_STREAM)
RETRY_AFTER_SECONDS = 7
LATEST_VERSION = "2026-10-21"


@dataclass(frozen=True)
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class AnthropicWireServer:
    """The Starlette app plus a uvicorn server on 127.0.0.1 in a background thread."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self.disconnected = threading.Event()
        self.models_failing = False
        self._ids = itertools.count(1)
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    @property
    def base_url(self) -> str:
        assert self._socket is not None, "not started"
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def message_bodies(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.path == "/v1/messages"]

    def start(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        config = uvicorn.Config(self.app, log_level="warning", timeout_graceful_shutdown=2, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)
        self._thread.start()
        for _ in range(500):
            if self._server.started or not self._thread.is_alive():
                break
            time.sleep(0.01)
        assert self._server.started, "the Anthropic wire server did not start"

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()

    # --- endpoints ---------------------------------------------------------------------------

    def _check_headers(self, request: Request) -> Response | None:
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if self.api_key not in (bearer, request.headers.get("x-api-key")):
            return error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return error(400, "invalid_request_error", "anthropic-version: header is required")
        return None

    async def _models(self, request: Request) -> Response:
        self.requests.append(Recorded(request.url.path, dict(request.headers), {}))
        refused = self._check_headers(request)
        if refused is not None:
            return refused
        if self.models_failing:
            return error(500, "api_error", "Internal server error")
        data = [
            {
                "type": "model",
                "id": m,
                "display_name": m.replace("-", " ").title(),
                "created_at": "2026-01-01T00:00:00Z",
                "lifecycle": "active",
            }
            for m in MODELS
        ]
        return JSONResponse({"data": data, "has_more": False, "first_id": MODELS[0], "last_id": MODELS[-1]})

    async def _messages(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except json.JSONDecodeError:
            body = None
        self.requests.append(Recorded(request.url.path, dict(request.headers), body if isinstance(body, dict) else {}))
        refused = self._check_headers(request)
        if refused is not None:
            return refused
        if not isinstance(body, dict):
            return error(400, "invalid_request_error", "request body must be a JSON object")
        problem = validate(body, request.headers["anthropic-version"])
        if problem is not None:
            return error(400, "invalid_request_error", problem)
        model = body["model"]
        if model == RATE_LIMITED:
            headers = {"retry-after": str(RETRY_AFTER_SECONDS)}
            return error(429, "rate_limit_error", "Number of request tokens has exceeded your rate limit", headers)
        if model == BROKEN:
            return error(500, "api_error", "Internal server error")
        if model == OVERLOADED:
            return error(529, "overloaded_error", "Overloaded")
        if model not in MODELS:
            return error(404, "not_found_error", f"model: {model}")
        message_id = f"msg_{next(self._ids):024d}"
        answer = plan_answer(body)
        if not body.get("stream"):
            return JSONResponse(answer.message(message_id, model))
        return _SSEResponse(self._events(message_id, model, answer))

    async def _events(self, message_id: str, model: str, answer: Answer) -> AsyncGenerator[bytes, None]:
        completed = False
        try:
            start = {**answer.message(message_id, model), "content": [], "stop_reason": None, "stop_sequence": None}
            start["usage"] = {**start["usage"], "output_tokens": 1}
            yield sse("message_start", message=start)
            if model == SLOW:
                yield sse("content_block_start", index=0, content_block={"type": "text", "text": ""})
                for n in range(10_000):
                    yield sse("content_block_delta", index=0, delta={"type": "text_delta", "text": f"word{n} "})
                    await asyncio.sleep(0.02)
                return
            for index, (block, deltas) in enumerate(answer.streamed_blocks()):
                yield sse("content_block_start", index=index, content_block=block)
                if index == 0:
                    yield sse("ping")
                for delta in deltas:
                    yield sse("content_block_delta", index=index, delta=delta)
                    if model == BREAKS_MID_STREAM:
                        yield sse("error", error={"type": "overloaded_error", "message": "Overloaded"})
                        return
                yield sse("content_block_stop", index=index)
            delta = {"stop_reason": answer.stop_reason, "stop_sequence": answer.stop_sequence}
            yield sse("message_delta", delta=delta, usage={"output_tokens": answer.output_tokens})
            yield sse("message_stop")
            completed = True
        finally:
            if not completed and model == SLOW:
                self.disconnected.set()


class _SSEResponse(StreamingResponse):
    """Closes its event generator however the response ends, so the server notices a client that went away."""

    def __init__(self, events: AsyncGenerator[bytes, None]) -> None:
        super().__init__(events, media_type="text/event-stream", headers={"cache-control": "no-cache"})
        self._events = events

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            await self._events.aclose()


def sse(event: str, **fields: Any) -> bytes:
    """One server-sent event: its name, and its data, whose `type` repeats the name."""
    return f"event: {event}\ndata: {json.dumps({'type': event, **fields})}\n\n".encode()


def error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_wire_server"}
    return JSONResponse(body, status_code=status, headers=headers)


@contextlib.contextmanager
def running(api_key: str) -> Iterator[AnthropicWireServer]:
    server = AnthropicWireServer(api_key)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- what to answer ---------------------------------------------------------------------------


def words(text: str) -> list[str]:
    """The server's tokens: each word with the whitespace after it."""
    return re.findall(r"\S+\s*", text)


@dataclass
class Answer:
    blocks: list[dict[str, Any]]
    stop_reason: str
    stop_sequence: str | None
    input_tokens: int

    def streamed_blocks(self) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Each block as content_block_start shows it, with its deltas (text by word, tool input in JSON pieces)."""
        out: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        for block in self.blocks:
            if block["type"] == "text":
                out.append(
                    ({"type": "text", "text": ""}, [{"type": "text_delta", "text": w} for w in words(block["text"])])
                )
            else:
                raw = json.dumps(block["input"])
                pieces = ["", *(raw[i : i + 8] for i in range(0, len(raw), 8))]  # the API starts with an empty one
                out.append(({**block, "input": {}}, [{"type": "input_json_delta", "partial_json": p} for p in pieces]))
        return out

    @property
    def output_tokens(self) -> int:
        return sum(len(deltas) for _, deltas in self.streamed_blocks())

    def message(self, message_id: str, model: str) -> dict[str, Any]:
        return {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": self.blocks,
            "stop_reason": self.stop_reason,
            "stop_sequence": self.stop_sequence,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens},
        }


def _content(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message["content"]
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def _texts(body: dict[str, Any]) -> Iterator[str]:
    system = body.get("system") or []
    yield from [system] if isinstance(system, str) else (b["text"] for b in system)
    for message in body["messages"]:
        for block in _content(message):
            if block["type"] == "text":
                yield block["text"]
            elif block["type"] == "tool_result" and isinstance(block.get("content"), str):
                yield block["content"]


def plan_answer(body: dict[str, Any]) -> Answer:
    """The scripted answer to a valid request, derived from it."""
    input_tokens = sum(len(words(t)) for t in _texts(body))
    last = _content(body["messages"][-1])
    text = " ".join(b["text"] for b in last if b["type"] == "text")
    results = [b for b in last if b["type"] == "tool_result"]
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {"type": "auto"}
    if not results and tools and choice["type"] != "none":
        chosen = [t for t in tools if choice["type"] != "tool" or t["name"] == choice["name"]]
        # With tool_choice any/tool the API makes the model call at once, with no text before.
        blocks: list[dict[str, Any]] = [{"type": "text", "text": "Calling tools."}] if choice["type"] == "auto" else []
        for n, tool in enumerate(chosen):
            blocks.append({"type": "tool_use", "id": f"toolu_{n:02d}", "name": tool["name"], "input": {"query": text}})
        return Answer(blocks, "tool_use", None, input_tokens)
    if results:
        reply = "Tool results: " + "; ".join(f"{r['tool_use_id']}={r.get('content')}" for r in results)
    else:
        images = sum(b["type"] == "image" for b in last)
        reply = f"You said: {text}" + (f" [{images} image(s)]" if images else "")
    stop_reason, stop_sequence = "end_turn", None
    hits = [(reply.find(s), s) for s in body.get("stop_sequences") or () if s in reply]
    if hits:
        position, stop_sequence = min(hits)
        reply, stop_reason = reply[:position], "stop_sequence"
    tokens = words(reply)
    if len(tokens) > body["max_tokens"]:
        reply, stop_reason, stop_sequence = "".join(tokens[: body["max_tokens"]]), "max_tokens", None
    return Answer([{"type": "text", "text": reply}], stop_reason, stop_sequence, input_tokens)


# --- what the API refuses ---------------------------------------------------------------------


def validate(body: dict[str, Any], version: str) -> str | None:
    """The first problem the API would answer 400 for, or None."""
    if version == LATEST_VERSION:
        for name in ("temperature", "top_p", "top_k"):
            if name in body:
                return f"{name}: Extra inputs are not permitted"
    if not isinstance(body.get("model"), str):
        return "model: Field required"
    if type(body.get("max_tokens")) is not int or body["max_tokens"] < 1:
        return "max_tokens: Field required (an integer >= 1)"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    pending_tool_uses: set[str] = set()
    for i, message in enumerate(messages):
        expected = "user" if i % 2 == 0 else "assistant"
        if message.get("role") != expected:
            return f"messages.{i}.role: roles must alternate user/assistant, starting with user"
        content = message.get("content")
        if not isinstance(content, str | list) or not content:
            return f"messages.{i}.content: must be a non-empty string or list of blocks"
        problem = _check_blocks(f"messages.{i}", expected, _content(message), pending_tool_uses)
        if problem is not None:
            return problem
        pending_tool_uses = {b["id"] for b in _content(message) if b["type"] == "tool_use"}
    return _check_tools(body)


def _check_blocks(where: str, role: str, blocks: list[dict[str, Any]], tool_uses: set[str]) -> str | None:
    answered = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
    if tool_uses - answered:
        return f"{where}: tool_use ids were found without tool_result blocks immediately after: {sorted(tool_uses)}"
    seen_other = False
    for j, block in enumerate(blocks):
        kind, at = block.get("type"), f"{where}.content.{j}"
        if kind == "text" and not (isinstance(block.get("text"), str) and block["text"]):
            return f"{at}.text: text content blocks must be non-empty"
        if kind == "image" and not _valid_image_source(block.get("source")):
            return f"{at}.source: an image source is base64 (jpeg/png/gif/webp) or url"
        if kind == "tool_use" and not (role == "assistant" and isinstance(block.get("input"), dict)):
            return f"{at}: tool_use blocks are assistant content with an object input"
        if kind == "tool_result":
            if role != "user" or block.get("tool_use_id") not in tool_uses:
                return f"{at}: unexpected tool_use_id {block.get('tool_use_id')!r} in tool_result blocks"
            if seen_other:
                return f"{at}: tool_result blocks must come first in the user message content"
        if kind not in ("text", "image", "tool_use", "tool_result"):
            return f"{at}.type: unknown content block type {kind!r}"
        seen_other = seen_other or kind != "tool_result"
    return None


def _valid_image_source(source: Any) -> bool:
    if not isinstance(source, dict):
        return False
    if source.get("type") == "url":
        return str(source.get("url", "")).startswith(("http://", "https://"))
    media = ("image/jpeg", "image/png", "image/gif", "image/webp")
    return source.get("type") == "base64" and source.get("media_type") in media and bool(source.get("data"))


def _check_tools(body: dict[str, Any]) -> str | None:
    tools = body.get("tools") or []
    for k, tool in enumerate(tools):
        schema = tool.get("input_schema")
        if not isinstance(tool.get("name"), str) or not isinstance(schema, dict) or schema.get("type") != "object":
            return f"tools.{k}: a tool needs a name and an input_schema of type object"
    choice = body.get("tool_choice")
    if choice is not None:
        if choice.get("type") not in ("auto", "any", "tool", "none"):
            return "tool_choice.type: must be auto, any, tool or none"
        if choice["type"] == "tool" and choice.get("name") not in {t["name"] for t in tools}:
            return f"tool_choice.name: no tool named {choice.get('name')!r}"
    return None
