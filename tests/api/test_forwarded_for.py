"""`x-forwarded-for` names the caller only when the gateway's own shim sends it.

A caller's identity decides its rate limit, its stream count and its turn in the
queue. Anonymous gRPC callers must not be able to pose as many callers by
sending a different `x-forwarded-for` with each call; the embedded shim, which
serves many HTTP clients over one channel, proves itself with a secret of the
process and may.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from lattice.v1 import chat_pb2, chat_pb2_grpc, common_pb2
from lattice.wire.names import PROXY_SECRET_METADATA_KEY
from tests.gateway_process import GatewayProcess, start_gateway
from tests.rpc_errors import error_info

UNKNOWN_MODEL = "no-such-model"
"""Refused after the caller's token is spent and before any model runs: each call costs a token."""


@pytest.fixture(scope="module")
def one_chat_an_hour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = start_gateway(
        tmp_path_factory.mktemp("forwarded-for"), LATTICE_RATE_LIMIT_PER_MINUTE="0.0167", LATTICE_RATE_LIMIT_BURST="1"
    )
    yield process
    process.stop()


def request() -> chat_pb2.ChatRequest:
    message = common_pb2.Message(role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text="hi")])
    return chat_pb2.ChatRequest(model=UNKNOWN_MODEL, messages=[message], max_tokens=1)


async def chat_code(stub: Any, metadata: tuple[tuple[str, str], ...]) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.Chat(request(), metadata=metadata, timeout=60)
    if refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return error_info(refused.value).reason
    return refused.value.code().name


async def test_a_direct_caller_cannot_pose_as_other_callers(one_chat_an_hour: GatewayProcess) -> None:
    async with grpc.aio.insecure_channel(one_chat_an_hour.grpc_target) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        assert await chat_code(stub, (("x-forwarded-for", "10.9.0.1"),)) == "NOT_FOUND"  # its one token
        # Another claimed address, with or without a guessed secret, is the same caller: refused.
        assert await chat_code(stub, (("x-forwarded-for", "10.9.0.2"),)) == "RATE_LIMITED"
        guessed = (("x-forwarded-for", "10.9.0.3"), (PROXY_SECRET_METADATA_KEY, "guess"))
        assert await chat_code(stub, guessed) == "RATE_LIMITED"

    # The shim's callers are still told apart by their address (the shim's own peer is 127.0.0.1 too,
    # whose token is spent): its forwarded address is trusted.
    async with httpx.AsyncClient(base_url=one_chat_an_hour.http_url, timeout=60) as http:
        body = {"model": UNKNOWN_MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
        first = await http.post("/v1/chat/completions", json=body)
        assert first.status_code == 404, first.text
        second = await http.post("/v1/chat/completions", json=body)
        assert second.status_code == 429, second.text


def test_the_secret_is_not_in_the_log(one_chat_an_hour: GatewayProcess) -> None:
    assert PROXY_SECRET_METADATA_KEY not in one_chat_an_hour.log()
