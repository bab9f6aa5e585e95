"""A burst beyond capacity through the shim: refusals are 429 with Retry-After, never 5xx,
and callers that honour Retry-After all succeed in the end."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import grpc
import httpx
import pytest
from lattice_client import ComputeClient, QueueUpdate

from lattice.v1 import chat_pb2, chat_pb2_grpc, common_pb2
from tests.gateway_process import GatewayProcess, start_gateway
from tests.rpc_errors import error_info

pytestmark = pytest.mark.slow

BURST = 6
MAX_ATTEMPTS = 20


@pytest.fixture(scope="module")
def small_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The default model limited to one generation at a time, with room for one waiting request. On MLX:
    these tests hold the one slot with an answer of a few dozen tokens, which llama.cpp would finish
    before the next request arrives."""
    process = start_gateway(
        tmp_path_factory.mktemp("small-queue"), LATTICE_QUEUE_SIZE="1", LATTICE_MLX_MAX_BATCH="1", LATTICE_ENGINE="mlx"
    )
    yield process
    process.stop()


async def call_until_served(client: httpx.AsyncClient, refusals: list[httpx.Response]) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": "Count to five."}], "max_tokens": 8, "temperature": 0}
    for _ in range(MAX_ATTEMPTS):
        response = await client.post("/v1/chat/completions", json=body)
        if response.status_code != 429:
            return response
        refusals.append(response)
        await asyncio.sleep(float(response.headers["retry-after"]))
    raise AssertionError(f"not served after {MAX_ATTEMPTS} attempts")


async def test_a_burst_gets_429s_with_retry_after_and_all_succeed_when_retried(small_gateway: GatewayProcess) -> None:
    refusals: list[httpx.Response] = []
    async with httpx.AsyncClient(base_url=small_gateway.http_url, timeout=120) as client:
        responses = await asyncio.gather(*(call_until_served(client, refusals) for _ in range(BURST)))
    assert [r.status_code for r in responses] == [200] * BURST
    assert refusals, "a burst of 6 on one slot and one queue place must be refused in part"
    for refusal in refusals:
        assert refusal.json()["error"]["code"] == "queue_full"
        assert refusal.json()["error"]["type"] == "rate_limit_error"
        assert int(refusal.headers["retry-after"]) >= 1


async def test_grpc_refusals_carry_retry_info(small_gateway: GatewayProcess) -> None:
    request = chat_pb2.ChatRequest(
        messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text="Hello")])],
        max_tokens=16,
    )
    async with grpc.aio.insecure_channel(small_gateway.grpc_target) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        calls = [stub.Chat(request, timeout=120) for _ in range(4)]
        results = await asyncio.gather(*calls, return_exceptions=True)
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    served = [r for r in results if isinstance(r, chat_pb2.ChatResponse)]
    assert len(served) >= 2  # one running, one queued
    assert refused
    for error in refused:
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_info(error).reason == "QUEUE_FULL"
        assert any(k == "grpc-status-details-bin" for k, _ in error.trailing_metadata() or ())


async def test_a_deadline_shorter_than_the_queue_is_refused_without_running(small_gateway: GatewayProcess) -> None:
    long = chat_pb2.ChatRequest(
        messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text="A story.")])],
        max_tokens=60,
    )
    async with grpc.aio.insecure_channel(small_gateway.grpc_target) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        running = asyncio.ensure_future(stub.Chat(long, timeout=120))
        await asyncio.sleep(0.5)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Chat(long, timeout=0.5)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert (await running).usage.completion_tokens > 0


async def test_a_queued_stream_says_so_first_and_the_shim_hides_it(small_gateway: GatewayProcess) -> None:
    busy = chat_pb2.ChatRequest(
        messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text="A story.")])],
        max_tokens=40,
    )
    waiting = chat_pb2.ChatRequest(messages=busy.messages, max_tokens=4)
    async with grpc.aio.insecure_channel(small_gateway.grpc_target) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        running = stub.StreamChat(busy)
        first = await running.read()
        assert isinstance(first, chat_pb2.StreamChatResponse)
        assert first.HasField("delta")  # it holds the only slot now
        queued = stub.StreamChat(waiting)
        messages = [m async for m in queued]
        while await running.read() is not grpc.aio.EOF:
            pass
    kinds = [m.WhichOneof("event") for m in messages]
    assert kinds[0] == "queued"
    assert kinds[-1] == "done"
    assert kinds.count("queued") == 1
    status = messages[0].queued
    assert status.model == "smollm2-135m-instruct"
    assert status.position == 1
    assert status.estimated_wait.ToTimedelta().total_seconds() > 0
    assert ("x-lattice-model", "smollm2-135m-instruct") in tuple(await queued.initial_metadata())


def test_the_shim_streams_openai_chunks_only_while_queued(small_gateway: GatewayProcess) -> None:
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 30, "stream": True}
    with (
        httpx.Client(base_url=small_gateway.http_url, timeout=120) as client,
        client.stream("POST", "/v1/chat/completions", json=body) as holder,
    ):
        lines = holder.iter_lines()
        first_line = next(lines)  # the holder streams: the next request must queue
        assert first_line.startswith("data: ")
        waiting = client.post("/v1/chat/completions", json={**body, "max_tokens": 3, "stream": True})
        rest = list(lines)
    assert waiting.status_code == 200
    events = [line for line in waiting.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    assert all('"queued"' not in line for line in events)
    assert rest


async def test_the_python_sdk_tells_on_queued_and_yields_only_chunks(small_gateway: GatewayProcess) -> None:
    busy = chat_pb2.ChatRequest(
        messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text="A story.")])],
        max_tokens=40,
    )
    updates: list[QueueUpdate] = []
    async with (
        grpc.aio.insecure_channel(small_gateway.grpc_target) as channel,
        ComputeClient(target=small_gateway.grpc_target) as compute,
    ):
        running = chat_pb2_grpc.ChatServiceStub(channel).StreamChat(busy)
        first = await running.read()
        assert isinstance(first, chat_pb2.StreamChatResponse) and first.HasField("delta")  # it holds the only slot
        async with compute.chat_stream(
            messages=[{"role": "user", "content": "Hi"}], max_tokens=4, on_queued=updates.append
        ) as waiting:
            chunks = [chunk async for chunk in waiting]
        while await running.read() is not grpc.aio.EOF:
            pass
    [update] = updates  # told once, before any chunk
    assert (update.model, update.position) == ("smollm2-135m-instruct", 1)
    assert update.estimated_wait > 0
    assert chunks and chunks[-1].finish_reason is not None and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
