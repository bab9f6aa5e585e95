"""The daemon's pool of connections to its local provider holds as many chats as the relay lets run.

The gateway lets `relay_max_in_flight` work items run on one personal runtime at
once; a smaller pool in the daemon would queue the rest behind it, unseen by the
gateway's admission and its metrics.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from lattice.config import Settings
from lattice.daemon.executor import Executor
from lattice.server.chat import ChatRequest, Delta, Message, Role, TextPart

IN_FLIGHT = 300
"""More than the pool's old fixed size (256)."""


class Barrier:
    """A provider that answers no chat until `IN_FLIGHT` are open at once."""

    def __init__(self) -> None:
        self.open = 0
        self.all_in = asyncio.Event()

    async def models(self, _: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "m", "object": "model"}]})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        self.open += 1
        if self.open >= IN_FLIGHT:
            self.all_in.set()
        await self.all_in.wait()
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        chunk = {"id": "c", "object": "chat.completion.chunk", "model": "m"}
        choice = {"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}
        await response.write(f"data: {json.dumps({**chunk, 'choices': [choice]})}\n\ndata: [DONE]\n\n".encode())
        await response.write_eof()
        return response


@pytest.fixture
async def provider() -> AsyncIterator[tuple[str, Barrier]]:
    barrier = Barrier()
    app = web.Application()
    app.router.add_get("/v1/models", barrier.models)
    app.router.add_post("/v1/chat/completions", barrier.chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/v1", barrier
    await runner.cleanup()


async def text_of(executor: Executor) -> str:
    request = ChatRequest("m", (Message(Role.USER, (TextPart("hi"),)),))
    return "".join([e.text async for e in executor.stream(request) if isinstance(e, Delta)])


async def test_the_provider_pool_holds_relay_max_in_flight_chats(provider: tuple[str, Barrier]) -> None:
    url, barrier = provider
    executor = Executor(Settings(relay_max_in_flight=IN_FLIGHT), provider_url=url, provider_model="m")
    await executor.start()
    try:
        # A pool smaller than IN_FLIGHT never lets the last chats reach the provider: none would answer.
        answers = await asyncio.wait_for(asyncio.gather(*(text_of(executor) for _ in range(IN_FLIGHT))), 120)
    finally:
        await executor.close()
    assert answers == ["ok"] * IN_FLIGHT
    assert barrier.open == IN_FLIGHT
