"""A client that cancels, or whose deadline passes, stops generation and frees the model, on either engine.

The gateway here runs one generation at a time (`LATTICE_MLX_MAX_BATCH=1`, `LATTICE_LLAMACPP_PARALLEL=1`):
with batching a follow-up request would join the batch beside an uncancelled one and prove nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import grpc
import httpx
import pytest

from lattice.v1 import chat_pb2, chat_pb2_grpc, common_pb2
from tests.gateway_process import GatewayProcess, start_gateway

pytestmark = pytest.mark.slow

# Long enough that an uncancelled generation would hold the model for minutes.
LONG = chat_pb2.ChatRequest(
    messages=[
        common_pb2.Message(
            role=common_pb2.ROLE_USER,
            content=[common_pb2.ContentPart(text="Tell me a very long story about a dragon.")],
        )
    ],
    temperature=0.0,  # greedy, this story never ends by itself: it runs to max_tokens on both engines
    max_tokens=4000,
    stop=["\x00never\x00"],
)
SHORT = chat_pb2.ChatRequest(
    messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text="Say hi.")])],
    max_tokens=4,
)
# If the cancelled generation kept running, the follow-up would queue behind ~4000 tokens: over 40 s even
# on llama.cpp at its quiet-machine speed, minutes on MLX; the follow-up itself takes about a second.
FOLLOW_UP_DEADLINE_SECONDS = 30


@pytest.fixture(scope="module", params=["llamacpp", "mlx"])
def one_at_a_time(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = start_gateway(
        tmp_path_factory.mktemp(f"one-at-a-time-{request.param}"),
        LATTICE_ENGINE=request.param,
        LATTICE_MLX_MAX_BATCH="1",
        LATTICE_LLAMACPP_PARALLEL="1",
    )
    yield process
    process.stop()


@pytest.fixture
async def channel(one_at_a_time: GatewayProcess) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(one_at_a_time.grpc_target) as ch:
        yield ch


async def test_cancelled_stream_frees_the_model(channel: grpc.aio.Channel) -> None:
    stub = chat_pb2_grpc.ChatServiceStub(channel)
    stream = stub.StreamChat(LONG)
    deltas = 0
    async for message in stream:
        deltas += message.HasField("delta")
        if deltas == 3:
            break
    stream.cancel()
    assert deltas == 3
    reply = await stub.Chat(SHORT, timeout=FOLLOW_UP_DEADLINE_SECONDS)
    assert reply.usage.completion_tokens > 0


async def test_deadline_stops_generation(channel: grpc.aio.Channel) -> None:
    stub = chat_pb2_grpc.ChatServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Chat(LONG, timeout=2)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    reply = await stub.Chat(SHORT, timeout=FOLLOW_UP_DEADLINE_SECONDS)
    assert reply.usage.completion_tokens > 0


def test_http_client_that_disconnects_frees_the_model(one_at_a_time: GatewayProcess) -> None:
    gateway = one_at_a_time
    body = {
        "messages": [{"role": "user", "content": "Tell me a very long story about a dragon."}],
        "max_tokens": 4000,
        "temperature": 0,
        "stream": True,
    }
    with httpx.stream("POST", f"{gateway.http_url}/v1/chat/completions", json=body, timeout=60) as response:
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")
    follow_up = httpx.post(
        f"{gateway.http_url}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4},
        timeout=FOLLOW_UP_DEADLINE_SECONDS,
    )
    assert follow_up.status_code == 200
