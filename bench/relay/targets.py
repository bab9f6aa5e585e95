"""The apps' side: one chat on a target (the provider, Lattice's StreamChat or REST shim, the long-poll gateway)."""

from __future__ import annotations

import json
from typing import Protocol

import grpc
import httpx

from bench.fast_upstream import MODEL_ID
from bench.gateway_overhead import BadAnswer
from lattice.v1 import chat_pb2, chat_pb2_grpc, common_pb2

QUESTION = "What is the capital of France?"
WARMUP_REQUESTS = 50


def _sse_text(body: bytes) -> str:
    """The content of an OpenAI SSE stream; BadAnswer unless it ends with [DONE]."""
    text: list[str] = []
    done = False
    for line in body.decode().splitlines():
        if line == "data: [DONE]":
            done = True
        elif line.startswith("data: "):
            for choice in json.loads(line[6:]).get("choices") or ():
                text.append((choice.get("delta") or {}).get("content") or "")
    if not done:
        raise BadAnswer(f"incomplete stream: {body[-120:]!r}")
    return "".join(text)


class Target(Protocol):
    name: str
    pids: list[int]  # the processes whose CPU time a request costs (gateway and daemon; the provider for direct)

    async def call(self, prompt: str) -> str:
        """One chat; returns the answer's text (raises on an error or an incomplete answer)."""
        ...

    async def aclose(self) -> None: ...


def _http_client(timeout: float, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        headers=headers or {},
        timeout=timeout,
        limits=httpx.Limits(max_connections=2048, max_keepalive_connections=2048),
    )


class DirectTarget:
    """The provider itself, streamed, as the daemons call it."""

    def __init__(self, name: str, base_url: str, pids: list[int], timeout: float) -> None:
        self.name, self.pids = name, pids
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._client = _http_client(timeout)

    async def call(self, prompt: str) -> str:
        body = {"model": MODEL_ID, "messages": [{"role": "user", "content": prompt}], "stream": True, "max_tokens": 16}
        async with self._client.stream("POST", self._url, json=body) as response:
            raw = await response.aread()
        if response.status_code != 200:
            raise BadAnswer(f"HTTP {response.status_code}: {raw[:120]!r}")
        return _sse_text(raw)

    async def aclose(self) -> None:
        await self._client.aclose()


class JsonChatTarget:
    """`POST /v1/chat/completions`, not streamed: Lattice's shim, or the long-poll gateway."""

    def __init__(
        self, name: str, base_url: str, model: str, pids: list[int], timeout: float, headers: dict[str, str]
    ) -> None:
        self.name, self.pids = name, pids
        self._url = base_url.rstrip("/") + "/v1/chat/completions"
        self._model = model
        self._client = _http_client(timeout, headers)
        self.picked: dict[str, float] = {}
        """Prompt → when the daemon had its work item, when the gateway reports it (long-poll)."""
        self.dispatch: list[float] = []
        """Seconds from the gateway's receipt to the daemon's, when the gateway reports them (long-poll)."""

    async def call(self, prompt: str) -> str:
        body = {"model": self._model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 16}
        response = await self._client.post(self._url, json=body)
        if response.status_code != 200:
            raise BadAnswer(f"HTTP {response.status_code}: {response.text[:120]}")
        if "x-bench-picked" in response.headers:
            picked = float(response.headers["x-bench-picked"])
            self.picked[prompt] = picked
            self.dispatch.append(picked - float(response.headers["x-bench-received"]))
        return str(response.json()["choices"][0]["message"]["content"])

    async def aclose(self) -> None:
        await self._client.aclose()


class GrpcChatTarget:
    """Lattice's StreamChat over grpc.aio, with the account's key."""

    def __init__(self, name: str, address: str, model: str, key: str, pids: list[int], timeout: float) -> None:
        self.name, self.pids = name, pids
        self._timeout = timeout
        self._model = model
        self._metadata = (("x-api-key", key),)
        self._channel = grpc.aio.insecure_channel(address)
        self._stub = chat_pb2_grpc.ChatServiceStub(self._channel)

    async def call(self, prompt: str, model: str = "") -> str:
        """One chat on this target's model, or on `model` (bench/cluster picks a runtime per chat)."""
        message = common_pb2.Message(role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text=prompt)])
        request = chat_pb2.ChatRequest(model=model or self._model, messages=[message], max_tokens=16, temperature=0)
        text: list[str] = []
        done = False
        async for reply in self._stub.StreamChat(request, timeout=self._timeout, metadata=self._metadata):
            if reply.HasField("delta"):
                text.append(reply.delta.content)
            elif reply.HasField("done"):
                done = True
        if not done:
            raise BadAnswer(f"stream ended without done: {''.join(text)!r}")
        return "".join(text)

    async def aclose(self) -> None:
        await self._channel.close()


def error_kind(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, grpc.aio.AioRpcError):
        return f"gRPC {error.code().name}: {(error.details() or '')[:80]}"
    return f"{type(error).__name__}: {str(error)[:100]}"
