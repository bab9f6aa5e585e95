"""A deliberately fast OpenAI-compatible upstream, so that only the gateway in front of it is measured.

A raw asyncio HTTP/1.1 server (keep-alive, Content-Length bodies) that answers at once:
- `POST /v1/chat/completions`: the fixed answer ANSWER, as an SSE stream (a role chunk, one chunk per
  word, a finish chunk, a usage chunk when `stream_options.include_usage`, `[DONE]`), all written in
  one go with chunked transfer encoding; or as one JSON completion without `stream`.
- `GET /v1/models`: one model, MODEL_ID (any requested model name is echoed back).
- `GET /api/v0/models`: the same model in LM Studio's shape, marked loaded, for Local Lattice's probe.

    python -m bench.fast_upstream --port 9000
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

MODEL_ID = "bench-model"
ANSWER_PIECES = ("The", " capital", " of", " France", " is", " Paris", ".")
ANSWER = "".join(ANSWER_PIECES)
CREATED = 1_700_000_000


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


def sse_response(model: str, include_usage: bool) -> bytes:
    key = (model, include_usage)
    if key not in _streams:
        parts = [_chunk(model, {"role": "assistant", "content": ""})]
        parts += [_chunk(model, {"content": piece}) for piece in ANSWER_PIECES]
        parts.append(_chunk(model, {}, finish="stop"))
        if include_usage:
            parts.append(_chunk(model, {}, usage=USAGE))
        parts.append(b"%x\r\n%s\r\n0\r\n\r\n" % (len(_DONE), _DONE))
        _streams[key] = b"".join(parts)
    return _streams[key]


def json_response(status: int, payload: object, *, close: bool = False) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 411: "Length Required"}.get(status, "Error")
    head = f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
    return head.encode() + (b"connection: close\r\n" if close else b"") + b"\r\n" + body


def completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
        "usage": USAGE,
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
    if method == "POST" and path in ("/v1/chat/completions", "/chat/completions"):
        try:
            request = json.loads(body)
        except ValueError:
            return json_response(400, {"error": {"message": "body is not JSON"}})
        model = str(request.get("model") or MODEL_ID)
        if request.get("stream"):
            include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
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
            self._transport.write(respond(method, path, body))
            if close:
                self._transport.close()
                self._transport = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Connection, host, port, backlog=4096, reuse_address=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
