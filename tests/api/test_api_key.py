"""LATTICE_API_KEY: every gRPC and REST call needs it; health stays open; public binds need it."""

from __future__ import annotations

import subprocess
import sys

import grpc
import httpx
import openai
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lattice.v1 import resolve_pb2, resolve_pb2_grpc
from tests.conftest import API_KEY
from tests.gateway_process import GatewayProcess, free_port, lattice_env
from tests.rpc_errors import error_info

pytestmark = pytest.mark.slow

HI = [{"role": "user", "content": "Say hi."}]


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ((), "API_KEY_MISSING"),
        ((("x-api-key", "wrong"),), "API_KEY_INVALID"),
        ((("authorization", "Bearer wrong"),), "API_KEY_INVALID"),
    ],
)
def test_grpc_without_the_key_is_unauthenticated(
    keyed_gateway: GatewayProcess, metadata: tuple[tuple[str, str], ...], reason: str
) -> None:
    with grpc.insecure_channel(keyed_gateway.grpc_target) as channel, pytest.raises(grpc.RpcError) as caught:
        resolve_pb2_grpc.ResolveServiceStub(channel).ListModels(resolve_pb2.ListModelsRequest(), metadata=metadata)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(caught.value).reason == reason


@pytest.mark.parametrize("header", ["x-api-key", "authorization"])
def test_grpc_with_the_key_works(keyed_gateway: GatewayProcess, header: str) -> None:
    value = API_KEY if header == "x-api-key" else f"Bearer {API_KEY}"
    with grpc.insecure_channel(keyed_gateway.grpc_target) as channel:
        reply = resolve_pb2_grpc.ResolveServiceStub(channel).ListModels(
            resolve_pb2.ListModelsRequest(), metadata=((header, value),)
        )
    assert len(reply.models) == 1


def test_streaming_rpc_without_the_key_is_unauthenticated(keyed_gateway: GatewayProcess) -> None:
    from lattice.v1 import chat_pb2, chat_pb2_grpc, common_pb2

    request = chat_pb2.ChatRequest(
        messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text="hi")])]
    )
    with grpc.insecure_channel(keyed_gateway.grpc_target) as channel, pytest.raises(grpc.RpcError) as caught:
        list(chat_pb2_grpc.ChatServiceStub(channel).StreamChat(request))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_health_needs_no_key(keyed_gateway: GatewayProcess) -> None:
    with grpc.insecure_channel(keyed_gateway.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = health.Check(health_pb2.HealthCheckRequest())  # type: ignore[attr-defined]  # typeshed's HealthStub lists no methods
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert httpx.get(f"{keyed_gateway.http_url}/healthz").status_code == 200


def test_openai_sdk_with_and_without_the_key(keyed_gateway: GatewayProcess) -> None:
    base_url = f"{keyed_gateway.http_url}/v1"
    good = openai.OpenAI(base_url=base_url, api_key=API_KEY, max_retries=0)
    completion = good.chat.completions.create(model="", messages=HI, max_tokens=4)  # type: ignore[arg-type]
    assert completion.choices[0].message.content
    assert [m.id for m in good.models.list().data]
    bad = openai.OpenAI(base_url=base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        bad.chat.completions.create(model="", messages=HI, max_tokens=4)  # type: ignore[arg-type]
    assert caught.value.code == "api_key_invalid"
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_rest_with_x_api_key_and_without_any_key(keyed_gateway: GatewayProcess) -> None:
    url = f"{keyed_gateway.http_url}/v1/models"
    assert httpx.get(url, headers={"x-api-key": API_KEY}).status_code == 200
    missing = httpx.get(url)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "api_key_missing"


@pytest.mark.parametrize("variable", ["LATTICE_GRPC_HOST", "LATTICE_HTTP_HOST"])
def test_refuses_a_public_bind_without_a_key(variable: str) -> None:
    env = lattice_env(LATTICE_GRPC_PORT=str(free_port()), LATTICE_HTTP_PORT=str(free_port()), **{variable: "0.0.0.0"})
    done = subprocess.run(
        [sys.executable, "-m", "lattice", "serve"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert "without an API key" in done.stderr and "LATTICE_API_KEY" in done.stderr
