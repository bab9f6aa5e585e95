"""The in-process channel behaves as a real one: each case runs on a loopback grpc.aio channel and on the
in-process channel to the same servicer behind the same (real) interceptor, and must come out alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import structlog

from lattice.server.services.in_process_channel import InProcessChannel, InProcessServer
from lattice.server.services.observability import ObservabilityInterceptor
from lattice.v1 import chat_pb2, chat_pb2_grpc, resolve_pb2, resolve_pb2_grpc
from lattice.wire.names import REQUEST_ID_KEY

MANY = 10_000
"""More messages than the in-process buffer holds: the servicer waits for its reader."""


class Servicer(chat_pb2_grpc.ChatServiceServicer):
    """Does what the request's `model` says; records how each call ended on the server side."""

    def __init__(self) -> None:
        self.started: dict[str, asyncio.Event] = {}
        self.ended: dict[str, asyncio.Event] = {}
        self.cancelled: dict[str, bool] = {}

    async def Chat(self, request: chat_pb2.ChatRequest, context: Any) -> chat_pb2.ChatResponse:
        what = request.model
        sent = dict(context.invocation_metadata())
        if what == "echo":
            await context.send_initial_metadata((("x-model", "echo-model"),))
            remaining = context.time_remaining()
            usage = int(remaining) if remaining is not None else -1
            return chat_pb2.ChatResponse(id=sent.get("x-echo", ""), usage={"prompt_tokens": usage})
        if what == "abort":
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many", (("x-detail-bin", b"\x01\x02"),))
        if what == "raise":
            raise ValueError("boom")
        if what == "set-code":
            context.set_code(grpc.StatusCode.NOT_FOUND)
            context.set_details("nothing here")
            return chat_pb2.ChatResponse()
        if what == "sleep":
            await self._hang(what, context)
        return chat_pb2.ChatResponse(id="plain")

    async def StreamChat(self, request: chat_pb2.ChatRequest, context: Any) -> AsyncIterator[Any]:
        what = request.model
        for i in range(MANY if what == "many" else 3):
            yield chat_pb2.StreamChatResponse(id=str(i))
            if what == "abort-after-one":
                await context.abort(grpc.StatusCode.UNAVAILABLE, "gone")
            if what == "hang-after-one":
                await self._hang(what, context)

    def expect(self, what: str) -> None:
        self.started[what], self.ended[what] = asyncio.Event(), asyncio.Event()

    async def _hang(self, what: str, context: Any) -> None:
        self.started[what].set()
        try:
            await asyncio.Event().wait()
        finally:  # the servicer's cleanup runs when the caller goes away
            self.cancelled[what] = True
            self.ended[what].set()


async def read_id(call: Any) -> str:
    message = await call.read()
    assert isinstance(message, chat_pb2.StreamChatResponse), message
    return message.id


@pytest.fixture(params=["channel", "in_process"])
async def served(request: pytest.FixtureRequest) -> AsyncIterator[tuple[grpc.aio.Channel, Servicer]]:
    servicer = Servicer()
    interceptors = [ObservabilityInterceptor()]
    server = grpc.aio.server(interceptors=interceptors)
    in_process = InProcessServer()
    chat_pb2_grpc.add_ChatServiceServicer_to_server(servicer, in_process.registrar(server, interceptors))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        if request.param == "in_process":
            yield InProcessChannel(in_process), servicer
        else:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                yield channel, servicer
    finally:
        await server.stop(None)


async def test_unary_metadata_both_ways_and_time_remaining(served: tuple[grpc.aio.Channel, Servicer]) -> None:
    channel, _ = served
    call = chat_pb2_grpc.ChatServiceStub(channel).Chat(
        chat_pb2.ChatRequest(model="echo"), metadata=(("x-echo", "hello"), (REQUEST_ID_KEY, "rid-1")), timeout=30
    )
    response = await call
    assert response.id == "hello"
    assert 0 < response.usage.prompt_tokens <= 30
    initial = dict(await call.initial_metadata())
    assert initial["x-model"] == "echo-model"
    assert initial[REQUEST_ID_KEY] == "rid-1"  # the interceptor ran
    assert await call.code() == grpc.StatusCode.OK


async def test_abort_is_an_rpc_error_with_trailing_metadata(served: tuple[grpc.aio.Channel, Servicer]) -> None:
    channel, _ = served
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await chat_pb2_grpc.ChatServiceStub(channel).Chat(chat_pb2.ChatRequest(model="abort"))
    error = raised.value
    assert (error.code(), error.details()) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "too many")
    assert ("x-detail-bin", b"\x01\x02") in tuple(error.trailing_metadata())
    assert REQUEST_ID_KEY in dict(error.initial_metadata())  # sent before the abort


@pytest.mark.parametrize(
    ("model", "code", "details"),
    [
        ("raise", grpc.StatusCode.UNKNOWN, "Unexpected <class 'ValueError'>: boom"),
        ("set-code", grpc.StatusCode.NOT_FOUND, "nothing here"),
    ],
)
async def test_failures_end_with_grpcs_status(
    served: tuple[grpc.aio.Channel, Servicer], model: str, code: grpc.StatusCode, details: str
) -> None:
    channel, _ = served
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await chat_pb2_grpc.ChatServiceStub(channel).Chat(chat_pb2.ChatRequest(model=model))
    assert (raised.value.code(), raised.value.details()) == (code, details)


async def test_an_unknown_method_is_unimplemented(served: tuple[grpc.aio.Channel, Servicer]) -> None:
    channel, _ = served
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await resolve_pb2_grpc.ResolveServiceStub(channel).ListModels(resolve_pb2.ListModelsRequest())
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_a_stream_reads_to_eof_and_iterates(served: tuple[grpc.aio.Channel, Servicer]) -> None:
    channel, _ = served
    stub = chat_pb2_grpc.ChatServiceStub(channel)
    call = stub.StreamChat(chat_pb2.ChatRequest(model="plain"))
    read = [await read_id(call) for _ in range(3)]
    assert read == ["0", "1", "2"]
    assert await call.read() is grpc.aio.EOF
    assert [m.id async for m in stub.StreamChat(chat_pb2.ChatRequest(model="plain"))] == ["0", "1", "2"]


async def test_a_long_stream_arrives_whole_and_in_order(served: tuple[grpc.aio.Channel, Servicer]) -> None:
    channel, _ = served
    call = chat_pb2_grpc.ChatServiceStub(channel).StreamChat(chat_pb2.ChatRequest(model="many"))
    assert [m.id async for m in call] == [str(i) for i in range(MANY)]


async def test_a_stream_that_fails_gives_its_messages_then_the_error(
    served: tuple[grpc.aio.Channel, Servicer],
) -> None:
    channel, _ = served
    call = chat_pb2_grpc.ChatServiceStub(channel).StreamChat(chat_pb2.ChatRequest(model="abort-after-one"))
    assert await read_id(call) == "0"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call.read()
    assert (raised.value.code(), raised.value.details()) == (grpc.StatusCode.UNAVAILABLE, "gone")


async def test_a_deadline_ends_the_call_and_stops_the_servicer(served: tuple[grpc.aio.Channel, Servicer]) -> None:
    channel, servicer = served
    servicer.expect("sleep")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await chat_pb2_grpc.ChatServiceStub(channel).Chat(chat_pb2.ChatRequest(model="sleep"), timeout=0.2)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await asyncio.wait_for(servicer.ended["sleep"].wait(), 30)
    assert servicer.cancelled["sleep"]


async def test_cancelling_a_stream_stops_the_servicer(served: tuple[grpc.aio.Channel, Servicer]) -> None:
    channel, servicer = served
    servicer.expect("hang-after-one")
    call = chat_pb2_grpc.ChatServiceStub(channel).StreamChat(chat_pb2.ChatRequest(model="hang-after-one"))
    assert await read_id(call) == "0"
    assert call.cancel()
    await asyncio.wait_for(servicer.ended["hang-after-one"].wait(), 30)
    assert call.cancelled()
    with pytest.raises(asyncio.CancelledError):
        await call.read()
    assert await call.code() == grpc.StatusCode.CANCELLED


async def test_a_caller_that_gives_up_cancels_the_call(served: tuple[grpc.aio.Channel, Servicer]) -> None:
    channel, servicer = served
    servicer.expect("sleep")
    call = chat_pb2_grpc.ChatServiceStub(channel).Chat(chat_pb2.ChatRequest(model="sleep"))
    waiting = asyncio.ensure_future(call)
    await asyncio.wait_for(servicer.started["sleep"].wait(), 30)
    waiting.cancel()
    await asyncio.wait_for(servicer.ended["sleep"].wait(), 30)
    assert await call.code() == grpc.StatusCode.CANCELLED


async def test_what_the_interceptor_binds_stays_with_the_call(served: tuple[grpc.aio.Channel, Servicer]) -> None:
    channel, _ = served
    structlog.contextvars.clear_contextvars()
    await chat_pb2_grpc.ChatServiceStub(channel).Chat(chat_pb2.ChatRequest(model="plain"))
    assert "request_id" not in structlog.contextvars.get_contextvars()
