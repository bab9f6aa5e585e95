"""Limits: each returns its documented error, in the domain, over gRPC and through the shim;
a slow body and a client that never reads do not hold up other callers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Iterator, Mapping
from contextlib import aclosing
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from lattice.config import Escalation, ModelProfile
from lattice.errors import InvalidArgument, RateLimited, StreamDurationExceeded, TooManyStreams
from lattice.server.backends.base import Backend, GenerationLimits
from lattice.server.chat import (
    ChatRequest,
    Delta,
    GenerationEvent,
    Message,
    Role,
    TextPart,
    ToolCall,
)
from lattice.server.gateway import Gateway
from lattice.server.limits import (
    CallerLimits,
    RequestLimits,
    check_request_size,
)
from lattice.server.registry import ModelRegistry, RegisteredModel
from lattice.server.resolver import Resolver
from lattice.v1 import chat_pb2, chat_pb2_grpc, common_pb2
from tests.fake_backend import HOLD, FakeBackend
from tests.gateway_process import GatewayProcess, start_gateway
from tests.operations.test_metrics import parse, value
from tests.rpc_errors import error_info


def user(text: str) -> Message:
    return Message(Role.USER, (TextPart(text),))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# --- the domain ---------------------------------------------------------------------------------


def test_a_burst_is_allowed_then_refused_with_the_time_until_the_next_token() -> None:
    clock = Clock()
    limits = CallerLimits(RequestLimits(rate_per_minute=60, burst=3), clock=clock)
    for _ in range(3):
        limits.take("a")
    with pytest.raises(RateLimited) as refused:
        limits.take("a")
    assert refused.value.reason == "RATE_LIMITED"
    assert refused.value.retry_after_seconds == pytest.approx(1.0)  # one token a second
    clock.now += 0.25
    with pytest.raises(RateLimited) as again:
        limits.take("a")
    assert again.value.retry_after_seconds == pytest.approx(0.75)
    clock.now += 0.75
    limits.take("a")  # refilled


def test_each_caller_has_its_own_bucket() -> None:
    limits = CallerLimits(RequestLimits(rate_per_minute=1, burst=1), clock=Clock())
    limits.take("a")
    limits.take("b")
    with pytest.raises(RateLimited):
        limits.take("a")


def test_a_rate_of_zero_is_no_limit() -> None:
    limits = CallerLimits(RequestLimits(rate_per_minute=0, burst=1), clock=Clock())
    for _ in range(1000):
        limits.take("a")


def test_a_bucket_refills_to_its_burst_and_no_further() -> None:
    clock = Clock()
    limits = CallerLimits(RequestLimits(rate_per_minute=60, burst=2), clock=clock)
    clock.now += 3600
    limits.take("a")
    limits.take("a")
    with pytest.raises(RateLimited):
        limits.take("a")


def test_streams_are_counted_per_caller_and_released_once() -> None:
    limits = CallerLimits(RequestLimits(max_streams_per_caller=2))
    first = limits.open_stream("a")
    second = limits.open_stream("a")
    with pytest.raises(TooManyStreams) as refused:
        limits.open_stream("a")
    assert refused.value.reason == "TOO_MANY_STREAMS"
    limits.open_stream("b")  # another caller is not affected
    first()
    first()  # idempotent: a double release must not free someone else's place
    assert limits.streams("a") == 1
    limits.open_stream("a")
    with pytest.raises(TooManyStreams):
        limits.open_stream("a")
    second()


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (ChatRequest("", tuple(user("hi") for _ in range(4))), "TOO_MANY_MESSAGES"),
        (ChatRequest("", (user("x" * 11),)), "PROMPT_TOO_LARGE"),
        (ChatRequest("", (user("x" * 5), user("y" * 6))), "PROMPT_TOO_LARGE"),
        (
            ChatRequest("", (user(""), Message(Role.ASSISTANT, tool_calls=(ToolCall("c", "f", "{" * 11),)))),
            "PROMPT_TOO_LARGE",
        ),
    ],
)
def test_request_size_limits_name_the_field(request_: ChatRequest, reason: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_request_size(request_, RequestLimits(max_messages=3, max_prompt_chars=10))
    assert refused.value.reason == reason
    assert refused.value.field == "messages"


def test_requests_within_the_size_limits_pass() -> None:
    check_request_size(
        ChatRequest("", (user("x" * 5), user("y" * 5))), RequestLimits(max_messages=2, max_prompt_chars=10)
    )


async def read_all(stream: Any, into: list[Any]) -> None:
    """Appends what `stream` yields to `into` until it ends (or raises), then closes it."""
    async with aclosing(stream) if hasattr(stream, "aclose") else contextlib.nullcontext():
        async for item in stream:
            into.append(item)


ENDLESS = (Delta("hello"), HOLD)
"""One delta, then nothing, ever: a stuck upstream."""


def domain_gateway(backend: Backend, limits: RequestLimits) -> Gateway:
    registry = ModelRegistry([RegisteredModel(ModelProfile(id="m"), backend)])
    resolver = Resolver(registry, default_model="m", roles={}, escalation=Escalation())
    return Gateway(resolver, GenerationLimits(max_tokens_ceiling=100), request_limits=limits)


async def test_a_stream_past_its_duration_is_cut_off_and_frees_its_place() -> None:
    backend = FakeBackend(ENDLESS)
    gateway = domain_gateway(backend, RequestLimits(max_stream_seconds=0.2, max_streams_per_caller=1))
    request = ChatRequest("m", (user("hi"),), caller="c")
    chat = await gateway.open_chat(request)
    events: list[GenerationEvent] = []
    with pytest.raises(StreamDurationExceeded) as cut:
        await read_all(chat, events)
    assert cut.value.code == "DEADLINE_EXCEEDED"
    assert cut.value.reason == "STREAM_DURATION_EXCEEDED"
    assert events == [Delta("hello")]
    assert backend.closed == 1
    # The caller's only stream place is free again.
    again = await gateway.open_chat(request)
    await again.aclose()


async def test_the_stream_limit_counts_chats_until_they_are_closed() -> None:
    gateway = domain_gateway(FakeBackend(ENDLESS), RequestLimits(max_streams_per_caller=1))
    request = ChatRequest("m", (user("hi"),), caller="c")
    chat = await gateway.open_chat(request)
    with pytest.raises(TooManyStreams):
        await gateway.open_chat(request)
    other = await gateway.open_chat(ChatRequest("m", (user("hi"),), caller="someone else"))
    await other.aclose()
    await chat.aclose()
    await (await gateway.open_chat(request)).aclose()


async def test_a_refused_chat_gives_its_stream_place_back() -> None:
    gateway = domain_gateway(FakeBackend(ENDLESS), RequestLimits(max_streams_per_caller=1))
    with pytest.raises(InvalidArgument):  # refused by validation, after the place was taken
        await gateway.open_chat(ChatRequest("m", (user("hi"),), max_tokens=10_000, caller="c"))
    await (await gateway.open_chat(ChatRequest("m", (user("hi"),), caller="c"))).aclose()


# --- a live gateway -------------------------------------------------------------------------------

MAX_MESSAGES = 4
MAX_PROMPT_CHARS = 400
MAX_TOKENS_CEILING = 256


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """Small request limits, one chat per caller at once, streams cut after 2 s, slow bodies after 1 s. On MLX:
    its ~20 tokens a second keep a 256-token answer running well past 2 s, which llama.cpp may not."""
    process = start_gateway(
        tmp_path_factory.mktemp("limited"),
        LATTICE_ENGINE="mlx",
        LATTICE_MAX_MESSAGES=str(MAX_MESSAGES),
        LATTICE_MAX_PROMPT_CHARS=str(MAX_PROMPT_CHARS),
        LATTICE_MAX_TOKENS_CEILING=str(MAX_TOKENS_CEILING),
        LATTICE_MAX_STREAMS_PER_KEY="1",
        LATTICE_MAX_STREAM_SECONDS="2",
        LATTICE_REQUEST_BODY_TIMEOUT_SECONDS="1",
        LATTICE_RATE_LIMIT_PER_MINUTE="0",
    )
    yield process
    process.stop()


@pytest.fixture(scope="module")
def rate_limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """Four chats at once, then one every ten seconds, per caller."""
    process = start_gateway(
        tmp_path_factory.mktemp("rate-limited"), LATTICE_RATE_LIMIT_PER_MINUTE="6", LATTICE_RATE_LIMIT_BURST="4"
    )
    yield process
    process.stop()


def chat(gateway: GatewayProcess, body: Mapping[str, object]) -> httpx.Response:
    return httpx.post(f"{gateway.http_url}/v1/chat/completions", json=body, timeout=120)


def assert_envelope(response: httpx.Response, status: int, code: str, param: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["param"] == param
    assert error["message"]


@pytest.mark.slow
def test_too_many_messages_is_400(limited: GatewayProcess) -> None:
    messages = [{"role": "user", "content": "hi"}] * (MAX_MESSAGES + 1)
    assert_envelope(chat(limited, {"messages": messages}), 400, "too_many_messages", "messages")


@pytest.mark.slow
def test_a_prompt_over_the_character_limit_is_400(limited: GatewayProcess) -> None:
    body = {"messages": [{"role": "user", "content": "x" * (MAX_PROMPT_CHARS + 1)}]}
    assert_envelope(chat(limited, body), 400, "prompt_too_large", "messages")


@pytest.mark.slow
def test_max_tokens_over_the_ceiling_is_400(limited: GatewayProcess) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": MAX_TOKENS_CEILING + 1}
    assert_envelope(chat(limited, body), 400, "invalid_argument", "max_tokens")


@pytest.mark.slow
@pytest.mark.parametrize("value", [2**31, -(2**31) - 1, 10**30])
def test_max_tokens_beyond_what_the_wire_carries_is_400_not_500(limited: GatewayProcess, value: int) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": value}
    assert_envelope(chat(limited, body), 400, "invalid_value", "max_tokens")


@pytest.mark.slow
def test_a_chunked_body_over_the_size_limit_is_413(limited: GatewayProcess) -> None:
    # No Content-Length: the limit is found while the body streams in (FastAPI's parsing must not turn it into 400).
    chunk = b'{"messages": [{"role": "user", "content": "' + b"x" * (1024 * 1024)

    def body() -> Iterator[bytes]:
        for _ in range(5):
            yield chunk

    response = httpx.post(
        f"{limited.http_url}/v1/chat/completions",
        content=body(),
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert_envelope(response, 413, "request_too_large")


def grpc_request(text: str, max_tokens: int) -> chat_pb2.ChatRequest:
    message = common_pb2.Message(role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text=text)])
    return chat_pb2.ChatRequest(messages=[message], max_tokens=max_tokens, temperature=0)


def as_caller(name: str) -> tuple[tuple[str, str], ...]:
    # On an open gateway a key that is none of its own is no credential, but it names the caller (hashed).
    # An `x-forwarded-for` would not: the server trusts it only from its own shim (test_forwarded_for.py).
    return (("x-api-key", f"unused-{name}"),)


@pytest.mark.slow
async def test_a_second_chat_of_the_same_caller_is_refused_until_the_first_ends(limited: GatewayProcess) -> None:
    async with grpc.aio.insecure_channel(limited.grpc_target) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        first = stub.StreamChat(grpc_request("Count from 1 to 100.", 200), metadata=as_caller("10.0.0.1"))
        await first.read()  # it is running
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Chat(grpc_request("hi", 2), metadata=as_caller("10.0.0.1"), timeout=60)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_info(refused.value).reason == "TOO_MANY_STREAMS"
        other = await stub.Chat(grpc_request("hi", 2), metadata=as_caller("10.0.0.2"), timeout=60)
        assert other.usage.completion_tokens > 0
        first.cancel()
        again = await stub.Chat(grpc_request("hi", 2), metadata=as_caller("10.0.0.1"), timeout=60)
        assert again.usage.completion_tokens > 0


@pytest.mark.slow
async def test_a_stream_that_runs_too_long_ends_with_deadline_exceeded(limited: GatewayProcess) -> None:
    async with grpc.aio.insecure_channel(limited.grpc_target) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        # ~20 tokens a second on the CI machine: counting to 200 takes far longer than the 2 s limit.
        stream = stub.StreamChat(
            grpc_request("Count from 1 to 200, separated by commas.", MAX_TOKENS_CEILING),
            metadata=as_caller("10.0.0.3"),
            timeout=120,
        )
        messages: list[chat_pb2.StreamChatResponse] = []
        with pytest.raises(grpc.aio.AioRpcError) as cut:
            await read_all(stream, messages)
    assert any(m.HasField("delta") for m in messages)
    assert not any(m.HasField("done") for m in messages), "the answer finished within the limit"
    assert cut.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert error_info(cut.value).reason == "STREAM_DURATION_EXCEEDED"


@pytest.mark.slow
async def test_a_slow_body_gets_408_and_does_not_hold_up_others(limited: GatewayProcess) -> None:
    host, port = "127.0.0.1", limited.http_port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b'content-length: 1000\r\n\r\n{"messages": ['
    )
    await writer.drain()
    async with httpx.AsyncClient(base_url=limited.http_url, timeout=60) as client:
        other = await client.get("/v1/models")  # answered while the slow body is still pending
    assert other.status_code == 200
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)).decode()
    length = int(next(line.split(":")[1] for line in head.split("\r\n") if line.lower().startswith("content-length")))
    body = json.loads(await reader.readexactly(length))
    writer.close()
    assert head.startswith("HTTP/1.1 408")
    assert body["error"]["code"] == "request_timeout"


@pytest.fixture(scope="module")
def unhurried(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """On MLX, whose ~20 tokens a second keep a long story going for tens of seconds, with no tight limit
    on a chat's duration: whether one caller held up another must not hang on how fast the machine is."""
    process = start_gateway(tmp_path_factory.mktemp("unhurried"), LATTICE_ENGINE="mlx")
    yield process
    process.stop()


@pytest.mark.slow
async def test_a_client_that_never_reads_its_stream_does_not_hold_up_others(unhurried: GatewayProcess) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window, and it is never read
    sock.connect(("127.0.0.1", unhurried.http_port))
    body = json.dumps(
        {"messages": [{"role": "user", "content": "Write a long story."}], "max_tokens": 1500, "stream": True}
    ).encode()
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        + f"content-length: {len(body)}\r\nx-forwarded-for: 10.0.0.4\r\n\r\n".encode()
        + body
    )
    try:
        async with grpc.aio.insecure_channel(unhurried.grpc_target) as channel:
            stub = chat_pb2_grpc.ChatServiceStub(channel)
            answer = await stub.Chat(grpc_request("Say hello.", 8), metadata=as_caller("10.0.0.5"), timeout=60)
        assert answer.usage.completion_tokens > 0
        # Served while the unread story was still being written, not after it: an order, not a time.
        async with httpx.AsyncClient(timeout=10) as http:
            samples = parse((await http.get(f"{unhurried.http_url}/metrics")).text)
        in_flight = {"service": "lattice.v1.ChatService", "method": "StreamChat"}
        assert value(samples, "lattice_grpc_server_in_flight", **in_flight) == 1
    finally:
        sock.close()


@pytest.mark.slow
def test_a_burst_past_the_rate_limit_is_429_with_retry_after(rate_limited: GatewayProcess) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    answers = [chat(rate_limited, body) for _ in range(5)]
    assert [a.status_code for a in answers[:4]] == [200] * 4
    refused = answers[4]
    assert_envelope(refused, 429, "rate_limited")
    assert refused.json()["error"]["type"] == "rate_limit_error"
    # 0.1 tokens a second: the fifth waits for most of a token.
    assert 1 <= int(refused.headers["retry-after"]) <= 10


@pytest.mark.slow
async def test_the_rate_limit_is_per_caller_over_grpc_too(rate_limited: GatewayProcess) -> None:
    async with grpc.aio.insecure_channel(rate_limited.grpc_target) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        for _ in range(4):
            await stub.Chat(grpc_request("hi", 1), metadata=as_caller("10.1.0.1"), timeout=60)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Chat(grpc_request("hi", 1), metadata=as_caller("10.1.0.1"), timeout=60)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_info(refused.value).reason == "RATE_LIMITED"
        assert retry_delay_seconds(refused.value) > 0
        await stub.Chat(grpc_request("hi", 1), metadata=as_caller("10.1.0.2"), timeout=60)


def retry_delay_seconds(error: grpc.aio.AioRpcError) -> float:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return float(info.retry_delay.ToTimedelta().total_seconds())
    raise AssertionError("no RetryInfo in the status details")
