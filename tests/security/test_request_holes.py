"""Holes an attacker's probe found in what a request may carry (issue #22, items 5, 6, 9, 10 and 11),
each checked against a real keyed gateway process."""

from __future__ import annotations

import base64

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nacl.public import PrivateKey

from lattice.v1 import chat_pb2, chat_pb2_grpc, common_pb2, resolve_pb2, resolve_pb2_grpc
from tests.conftest import API_KEY
from tests.gateway_process import GatewayProcess
from tests.rpc_errors import error_info

HI = [{"role": "user", "content": "hi"}]


def chat(gateway: GatewayProcess, body: dict[str, object], **headers: str) -> httpx.Response:
    headers = {"x-api-key": API_KEY, **headers}
    return httpx.post(gateway.http_url + "/v1/chat/completions", json=body, headers=headers, timeout=60)


def test_a_huge_model_name_is_a_400_naming_model(keyed_gateway: GatewayProcess) -> None:
    answer = chat(keyed_gateway, {"model": "m" * 16_000, "messages": HI, "max_tokens": 1})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"] == "model" and len(answer.text) < 2_000  # the name is not echoed back
    with grpc.insecure_channel(keyed_gateway.grpc_target) as channel, pytest.raises(grpc.RpcError) as refused:
        resolve_pb2_grpc.ResolveServiceStub(channel).Resolve(
            resolve_pb2.ResolveRequest(model="m" * 16_000), metadata=(("x-api-key", API_KEY),), timeout=30
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(refused.value).metadata["field"] == "model"


def test_two_different_credentials_are_refused_not_chosen_between(keyed_gateway: GatewayProcess) -> None:
    body = {"messages": HI, "max_tokens": 1}
    both = chat(keyed_gateway, body, **{"x-api-key": "sk_someone_else", "authorization": f"Bearer {API_KEY}"})
    assert both.status_code == 400, both.text
    assert both.json()["error"]["code"] == "conflicting_credentials"
    swapped = chat(keyed_gateway, body, **{"x-api-key": API_KEY, "authorization": "Bearer sk_someone_else"})
    assert swapped.status_code == 400
    same = chat(keyed_gateway, body, authorization=f"Bearer {API_KEY}")  # the same key twice is one credential
    assert same.status_code == 200, same.text
    with grpc.insecure_channel(keyed_gateway.grpc_target) as channel, pytest.raises(grpc.RpcError) as refused:
        chat_pb2_grpc.ChatServiceStub(channel).Chat(
            chat_pb2.ChatRequest(
                messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text="hi")])]
            ),
            metadata=(("x-api-key", API_KEY), ("authorization", "Bearer sk_someone_else")),
            timeout=30,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(refused.value).reason == "CONFLICTING_CREDENTIALS"


@pytest.mark.parametrize("priority", [-99, 11, "abc", 1.5])
def test_priority_in_a_rest_body_gets_the_same_range_check_as_grpc(
    keyed_gateway: GatewayProcess, priority: object
) -> None:
    answer = chat(keyed_gateway, {"messages": HI, "max_tokens": 1, "priority": priority})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == "priority"


def test_a_priority_in_range_is_taken(keyed_gateway: GatewayProcess) -> None:
    answer = chat(keyed_gateway, {"messages": HI, "max_tokens": 1, "priority": 5})
    assert answer.status_code == 200, answer.text


def test_grpc_health_list_answers(keyed_gateway: GatewayProcess) -> None:
    with grpc.insecure_channel(keyed_gateway.grpc_target) as channel:
        listed = health_pb2_grpc.HealthStub(channel).List(health_pb2.HealthListRequest(), timeout=30)  # type: ignore[attr-defined]  # typeshed's HealthStub lists no methods
    assert listed.statuses[""].status == health_pb2.HealthCheckResponse.SERVING
    assert listed.statuses["lattice.v1.ChatService"].status == health_pb2.HealthCheckResponse.SERVING
    assert "NotImplementedError" not in keyed_gateway.log()


@pytest.mark.parametrize(
    "public_key",
    [
        bytes(32),  # all zero
        bytes([1]) + bytes(31),  # the identity: another low-order point
        bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),  # order 8
    ],
    ids=["zero", "identity", "order-8"],
)
def test_redemption_refuses_a_low_order_public_key(keyed_gateway: GatewayProcess, public_key: bytes) -> None:
    headers = {"x-api-key": API_KEY}
    url = keyed_gateway.http_url
    created = httpx.post(
        f"{url}/v1/personal-runtimes",
        headers=headers,
        json={"displayName": "probe", "executionBackend": "local-model"},
        timeout=30,
    ).json()
    lattice_id = created["runtime"]["latticeId"]
    token = httpx.post(
        f"{url}/v1/personal-runtimes/{lattice_id}/bootstrap-tokens", headers=headers, json={}, timeout=30
    ).json()["bootstrapToken"]

    def redeem(key: bytes) -> httpx.Response:
        body = {"bootstrapToken": token, "publicKey": base64.b64encode(key).decode()}
        return httpx.post(f"{url}/v1/personal-runtime-bootstrap-redemptions", json=body, timeout=30)

    refused = redeem(public_key)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["param"] == "public_key"
    assert redeem(bytes(PrivateKey.generate().public_key)).status_code == 200  # the token was not spent
