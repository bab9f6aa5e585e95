"""A deliberately fast OpenAI-compatible upstream, so that only the gateway in front of it is measured.

A raw asyncio HTTP/1.1 server (keep-alive, Content-Length bodies) that answers at once:
- `POST /v1/chat/completions`: the fixed answer ANSWER, as an SSE stream (a role chunk, one chunk per
  word, a finish chunk, a usage chunk when `stream_options.include_usage`, `[DONE]`), all written in
  one go with chunked transfer encoding; or as one JSON completion without `stream`.
- `GET /v1/models`: one model, MODEL_ID (any requested model name is echoed back).
- `GET /api/v0/models`: the same model in LM Studio's shape, marked loaded, for Local Lattice's probe.
- `GET /stats`: chat requests answered, in flight now, and the most in flight at once (`?reset=1`
  restarts that peak from now).

Options for benchmarks that need the upstream to hold work (it still costs no CPU while it waits):
`--delay-ms D` answers each chat D ms after it arrived; `--gap-ms G` writes a streamed answer one event
every G ms, as a model generating token by token would, instead of all at once; `--echo` answers with
the request's last user message (split at spaces, like tests/echo_upstream.py) instead of ANSWER, so an
answer shows which request it belongs to.

    python -m bench.fast_upstream --port 9000 [--delay-ms 2000] [--gap-ms 1] [--echo]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import dataclass
from typing import Any

MODEL_ID = "bench-model"
ANSWER_PIECES = ("The", " capital", " of", " France", " is", " Paris", ".")
ANSWER = "".join(ANSWER_PIECES)
CREATED = 1_700_000_000


@dataclass
class Options:
    delay_seconds: float = 0.0
    gap_seconds: float = 0.0
    echo: bool = False


OPTIONS = Options()
STATS = {"chat_requests": 0, "in_flight": 0, "peak_in_flight": 0}


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    body: dict[str, Any] = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage:
        body["usage"] = usage
    event = b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(event), event)


USAGE = {"prompt_tokens": 12, "completion_tokens": len(ANSWER_PIECES), "total_tokens": 12 + len(ANSWER_PIECES)}
_DONE = b"data: [DONE]\n\n"
_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n"
)
_streams: dict[tuple[str, bool], bytes] = {}


def _sse(model: str, include_usage: bool, pieces: tuple[str, ...], usage: dict[str, int]) -> bytes:
    parts = [_chunk(model, {"role": "assistant", "content": ""})]
    parts += [_chunk(model, {"content": piece}) for piece in pieces]
    parts.append(_chunk(model, {}, finish="stop"))
    if include_usage:
        parts.append(_chunk(model, {}, usage=usage))
    parts.append(b"%x\r\n%s\r\n0\r\n\r\n" % (len(_DONE), _DONE))
    return b"".join(parts)


def sse_response(model: str, include_usage: bool) -> bytes:
    key = (model, include_usage)
    if key not in _streams:
        _streams[key] = _sse(model, include_usage, ANSWER_PIECES, USAGE)
    return _streams[key]


def echo_pieces(request: dict[str, Any]) -> tuple[str, ...]:
    """The last user message, as words (the first bare, the others with their leading space)."""
    text = ""
    for message in reversed(request.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            text = str(content or "")
            break
    words = text.split(" ")
    return (words[0], *(" " + word for word in words[1:]))


def json_response(status: int, payload: object, *, close: bool = False) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 411: "Length Required"}.get(status, "Error")
    head = f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
    return head.encode() + (b"connection: close\r\n" if close else b"") + b"\r\n" + body


def completion(model: str, text: str = ANSWER, usage: dict[str, int] = USAGE) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": usage,
    }


MODELS = {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": CREATED, "owned_by": "bench"}]}
LMSTUDIO_MODELS = {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "type": "llm", "state": "loaded"}]}


def respond(method: str, path: str, body: bytes) -> bytes:
    path = path.split("?", 1)[0]
    if method == "GET" and path in ("/v1/models", "/models"):
        return json_response(200, MODELS)
    if method == "GET" and path == "/api/v0/models":
        return json_response(200, LMSTUDIO_MODELS)
    if method == "GET" and path in ("/health", "/healthz"):
        return json_response(200, {"status": "ok"})
    if method == "GET" and path == "/stats":
        return json_response(200, STATS)
    if method == "POST" and path in ("/v1/chat/completions", "/chat/completions"):
        try:
            request = json.loads(body)
        except ValueError:
            return json_response(400, {"error": {"message": "body is not JSON"}})
        model = str(request.get("model") or MODEL_ID)
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        if OPTIONS.echo:
            pieces = echo_pieces(request)
            usage = {"prompt_tokens": len(pieces), "completion_tokens": len(pieces), "total_tokens": 2 * len(pieces)}
            if request.get("stream"):
                return _SSE_HEAD + b"\r\n" + _sse(model, include_usage, pieces, usage)
            return json_response(200, completion(model, "".join(pieces), usage))
        if request.get("stream"):
            return _SSE_HEAD + b"\r\n" + sse_response(model, include_usage)
        return json_response(200, completion(model))
    return json_response(404, {"error": {"message": f"no route {method} {path}"}})


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._transport is not None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
            method, path, version = [*lines[0].split(" "), "", "", ""][:3]
            length, chunked, close = 0, False, version == "HTTP/1.0"
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "transfer-encoding" and "chunked" in value:
                    chunked = True
                elif name == "connection":
                    close = value == "close" or (close and value != "keep-alive")
            if chunked:  # no client of this benchmark sends chunked bodies
                self._transport.write(json_response(411, {"error": {"message": "send Content-Length"}}, close=True))
                self._transport.close()
                return
            if len(self._buffer) < end + 4 + length:
                return
            body = bytes(self._buffer[end + 4 : end + 4 + length])
            del self._buffer[: end + 4 + length]
            if method == "GET" and path.startswith("/stats?reset=1"):
                STATS["peak_in_flight"] = STATS["in_flight"]
            chat = method == "POST" and path.split("?", 1)[0] in ("/v1/chat/completions", "/chat/completions")
            if chat:
                STATS["chat_requests"] += 1
                STATS["in_flight"] += 1
                STATS["peak_in_flight"] = max(STATS["peak_in_flight"], STATS["in_flight"])
            response = respond(method, path, body)
            if chat and OPTIONS.gap_seconds > 0 and response.startswith(_SSE_HEAD):
                _pace(self._transport, response, close)
                if close:
                    self._transport = None
                continue
            if chat and OPTIONS.delay_seconds > 0:
                # Answered later; HTTP/1.1 clients send the next request on this connection only after.
                loop = asyncio.get_running_loop()
                loop.call_later(OPTIONS.delay_seconds, _deliver, self._transport, response, close)
                if close:
                    self._transport = None
                continue
            if chat:
                STATS["in_flight"] -= 1
            self._transport.write(response)
            if close:
                self._transport.close()
                self._transport = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


def _deliver(transport: asyncio.Transport, response: bytes, close: bool) -> None:
    STATS["in_flight"] -= 1
    _write(transport, response)
    if close:
        transport.close()  # a no-op on a transport already closing


def _pace(transport: asyncio.Transport, response: bytes, close: bool) -> None:
    """Writes a streamed answer one SSE event every `gap_seconds` (the head goes with the first)."""
    events = response.split(b"\n\n\r\n")  # where each HTTP chunk holding one event ends
    parts = [event + b"\n\n\r\n" for event in events[:-1]]
    parts[-1] += events[-1]  # the last chunk: the terminating `0\r\n\r\n`
    loop = asyncio.get_running_loop()
    for i, part in enumerate(parts[:-1]):
        loop.call_later(i * OPTIONS.gap_seconds, _write, transport, part)
    loop.call_later((len(parts) - 1) * OPTIONS.gap_seconds, _deliver, transport, parts[-1], close)


def _write(transport: asyncio.Transport, data: bytes) -> None:
    if not transport.is_closing():
        transport.write(data)


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Connection, host, port, backlog=4096, reuse_address=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="answer each chat this many ms after it arrived")
    parser.add_argument("--gap-ms", type=float, default=0.0, help="stream one event every this many ms")
    parser.add_argument("--echo", action="store_true", help="answer with the last user message instead of ANSWER")
    args = parser.parse_args()
    OPTIONS.delay_seconds = args.delay_ms / 1000
    OPTIONS.gap_seconds = args.gap_ms / 1000
    OPTIONS.echo = args.echo
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
