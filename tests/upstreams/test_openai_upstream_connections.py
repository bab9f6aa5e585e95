"""How the OpenAI-compatible backend uses its connections and reads its streams, against a real HTTP
server on loopback that counts them: streamed answers reuse one kept-alive connection, cookies are not
shared, and deltas that arrive together go on as one while deltas that arrive apart go on at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from lattice.config import ModelProfile, Upstream
from lattice.server.backends.base import GenerationLimits
from lattice.server.backends.upstream.openai import OpenAIUpstream
from lattice.server.chat import ChatRequest, Delta, Finish, Message, Role, TextPart

MODEL = "m"
EVENTS = (
    b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n',
    b'data: {"choices":[{"index":0,"delta":{"content":"Par"}}]}\n\n',
    b'data: {"choices":[{"index":0,"delta":{"content":"is"}}]}\n\n',
    b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
    b"data: [DONE]\n\n",
)


@dataclass
class CountingServer:
    """Answers every POST with the SSE stream above (chunked, keep-alive, setting a cookie)."""

    port: int = 0
    pause: float = 0.0
    """Seconds between events, each then sent on its own; 0: the whole answer in one write."""
    connections: int = 0
    cookies_received: list[str] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                lines = head.decode("latin-1").split("\r\n")[1:]
                headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines)}
                await reader.readexactly(int(headers.get("content-length", "0")))
                self.cookies_received.append(headers.get("cookie", ""))
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
                    b"set-cookie: session=caller-one; Path=/\r\n\r\n"
                )
                for event in EVENTS:  # one HTTP chunk per SSE event, as most servers send them
                    writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                    if self.pause:
                        await writer.drain()
                        await asyncio.sleep(self.pause)
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[CountingServer]:
    counting = CountingServer()
    listener = await asyncio.start_server(counting.handle, "127.0.0.1", 0)
    counting.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield counting


async def deltas(backend: OpenAIUpstream) -> list[str]:
    """The text of each delta the backend yields for one answer."""
    request = ChatRequest(MODEL, (Message(Role.USER, (TextPart("Capital of France?"),)),))
    profile = ModelProfile(id=MODEL, backend="openai", upstream="local")
    text = []
    async for event in backend.stream(profile, request, GenerationLimits(max_tokens_ceiling=16)):
        if isinstance(event, Delta):
            text.append(event.text)
        else:
            assert isinstance(event, Finish)
    return text


async def answer(backend: OpenAIUpstream) -> str:
    return "".join(await deltas(backend))


def backend_for(server: CountingServer) -> OpenAIUpstream:
    upstream = Upstream(name="local", base_url=f"http://127.0.0.1:{server.port}/v1", models=(MODEL,))
    return OpenAIUpstream(upstream, lambda ids: None)


async def test_answers_in_a_row_share_one_connection_and_send_no_cookies(server: CountingServer) -> None:
    backend = backend_for(server)
    try:
        answers = [await answer(backend) for _ in range(3)]
    finally:
        await backend.close_client()
    assert answers == ["Paris"] * 3
    # Reading each stream to its end (past [DONE]) hands the connection back to the pool.
    assert server.connections == 1
    # The client is shared by every caller: a cookie one answer set must not ride on the next request.
    assert server.cookies_received == ["", "", ""]


async def test_deltas_that_arrive_together_go_on_as_one(server: CountingServer) -> None:
    backend = backend_for(server)
    try:
        assert await deltas(backend) == ["Paris"]  # the whole answer came in one write
    finally:
        await backend.close_client()


async def test_deltas_that_arrive_apart_go_on_one_by_one(server: CountingServer) -> None:
    server.pause = 0.05  # a model generating: nothing waits to be merged
    backend = backend_for(server)
    try:
        assert await deltas(backend) == ["Par", "is"]
    finally:
        await backend.close_client()
