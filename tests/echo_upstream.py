"""A small OpenAI-compatible server that answers with the last user message, word by word: the
"local provider" a personal-runtime daemon calls in tests (`--provider-url`). Its answers say which
request they belong to, so crossed wires between concurrent work items would show.

`/v1/embeddings` answers each input with a vector whose first value is the input's length (characters, or
token ids) and whose size is `dimensions` (8 when unset); `/v1/completions` continues a prompt with itself
(a text completion), streamed word by word as `text_completion` chunks.

With `stop`, a chat's answer ends before the first of its stop strings, and the last chunk names the one that
did as vLLM does (`stop_reason`; OpenAI's API has no such field). A prompt starting with `slow:` streams one
word every 0.2 s. `tool: NAME ARGUMENTS` answers with a
call of tool NAME with the JSON ARGUMENTS, streamed in fragments as OpenAI does. `GET /stats` counts streams that
ended because the client went away: how a test sees a cancellation arrive at the far end.

    python -m tests.echo_upstream PORT
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

MODEL = "echo-1"
app = FastAPI()
stats = {"started": 0, "completed": 0, "abandoned": 0}


@app.get("/v1/models")
async def models() -> dict[str, Any]:
    return {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "tests"}]}


@app.get("/stats")
async def get_stats() -> dict[str, int]:
    return stats


@app.post("/v1/chat/completions", response_model=None)
async def chat(request: Request) -> JSONResponse | StreamingResponse:
    body = await request.json()
    prompt = next((m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), "")
    prompt, stop_reason = _cut(str(prompt), body.get("stop") or [])
    words = prompt.split(" ")
    if not body.get("stream"):
        message = {"role": "assistant", "content": prompt}
        usage = {"prompt_tokens": len(words), "completion_tokens": len(words), "total_tokens": 2 * len(words)}
        choice = {"index": 0, "message": message, "finish_reason": "stop", "stop_reason": stop_reason}
        return JSONResponse(
            {"id": "echo", "object": "chat.completion", "model": MODEL, "choices": [choice], "usage": usage}
        )
    if str(prompt).startswith("tool: "):
        _, name, arguments = str(prompt).split(" ", 2)
        return StreamingResponse(_tool_call(name, arguments), media_type="text/event-stream")
    stream = _stream(words, slow=prompt.startswith("slow:"), stop_reason=stop_reason)
    return StreamingResponse(stream, media_type="text/event-stream")


def _cut(text: str, stops: list[str]) -> tuple[str, str | None]:
    """`text` up to its first stop string, and that stop string (None when none occurs)."""
    found = [(text.index(stop), stop) for stop in stops if stop in text]
    if not found:
        return text, None
    at, stop = min(found)
    return text[:at], stop


async def _tool_call(name: str, arguments: str) -> AsyncIterator[str]:
    """A call of `name`: its id and name first, then its arguments in two pieces."""
    half = len(arguments) // 2
    first = {"index": 0, "id": "call_echo", "type": "function", "function": {"name": name, "arguments": ""}}
    yield _chunk({"role": "assistant", "tool_calls": [first]}, None)
    for piece in (arguments[:half], arguments[half:]):
        yield _chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}, None)
    yield _chunk({}, "tool_calls", usage={"prompt_tokens": 3, "completion_tokens": 7})
    yield "data: [DONE]\n\n"


async def _stream(words: list[str], *, slow: bool, stop_reason: str | None = None) -> AsyncIterator[str]:
    stats["started"] += 1
    finished = False
    try:
        for i, word in enumerate(words):
            if slow:
                await asyncio.sleep(0.2)
            yield _chunk({"content": word if i == 0 else " " + word}, None)
        usage = {"prompt_tokens": len(words), "completion_tokens": len(words)}
        yield _chunk({}, "stop", usage=usage, stop_reason=stop_reason)
        yield "data: [DONE]\n\n"
        finished = True
    finally:
        stats["completed" if finished else "abandoned"] += 1


@app.post("/v1/embeddings")
async def embeddings(request: Request) -> JSONResponse:
    body = await request.json()
    size = int(body.get("dimensions") or 8)
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    data = [
        {"object": "embedding", "index": i, "embedding": [float(len(item))] + [1.0] * (size - 1)}
        for i, item in enumerate(inputs)
    ]
    tokens = sum(len(item) for item in inputs)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return JSONResponse({"object": "list", "data": data, "model": body["model"], "usage": usage})


@app.post("/v1/completions", response_model=None)
async def completions(request: Request) -> JSONResponse | StreamingResponse:
    body = await request.json()
    words = str(body["prompt"]).split(" ")
    usage = {"prompt_tokens": len(words), "completion_tokens": len(words), "total_tokens": 2 * len(words)}
    if not body.get("stream"):
        choice = {"index": 0, "text": body["prompt"], "logprobs": None, "finish_reason": "stop"}
        return JSONResponse(
            {"id": "echo", "object": "text_completion", "model": MODEL, "choices": [choice], "usage": usage}
        )
    return StreamingResponse(_text_stream(words, usage), media_type="text/event-stream")


async def _text_stream(words: list[str], usage: dict[str, int]) -> AsyncIterator[str]:
    for i, word in enumerate(words):
        choice = {"index": 0, "text": word if i == 0 else " " + word, "logprobs": None, "finish_reason": None}
        chunk = {"id": "echo", "object": "text_completion", "model": MODEL, "choices": [choice]}
        yield f"data: {json.dumps(chunk)}\n\n"
    last = {"index": 0, "text": "", "logprobs": None, "finish_reason": "stop"}
    payload = {"id": "echo", "object": "text_completion", "model": MODEL, "choices": [last], "usage": usage}
    yield f"data: {json.dumps(payload)}\n\ndata: [DONE]\n\n"


def _chunk(
    delta: dict[str, Any], finish: str | None, usage: dict[str, int] | None = None, stop_reason: str | None = None
) -> str:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    if stop_reason is not None:
        choice["stop_reason"] = stop_reason
    payload: dict[str, Any] = {
        "id": "echo",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [choice],
    }
    if usage is not None:
        payload["usage"] = {**usage, "total_tokens": sum(usage.values())}
    return f"data: {json.dumps(payload)}\n\n"


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
