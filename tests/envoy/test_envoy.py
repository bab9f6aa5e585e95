"""Envoy in front of a real gateway (envoy/run.py, as `make envoy` runs it): every RPC as REST/JSON
through grpc_json_transcoder, StreamChat as SSE read as it arrives, grpc-web framed by hand, plain
gRPC passed through, CORS, API keys passed through, and a stream longer than Envoy's default
15 s route timeout."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lattice.v1 import chat_pb2, chat_pb2_grpc, common_pb2, resolve_pb2, resolve_pb2_grpc
from tests.conftest import API_KEY
from tests.envoy_process import ENVOY_CORS_ORIGIN, EnvoyProcess
from tests.gateway_process import GatewayProcess
from tests.personal_runtime_fixtures import create_key

pytestmark = pytest.mark.slow

MODEL = "smollm2-135m-instruct"
QUESTION = "What is the capital of France? Answer in one word."


def user_json(text: str) -> dict[str, Any]:
    return {"role": "ROLE_USER", "content": [{"text": text}]}


PARIS = {"messages": [user_json(QUESTION)], "temperature": 0}
# Generation takes ~14 tokens/s on the 2-core CI machine, so 350 tokens stream for ~25-35 s:
# far past the 15 s a default Envoy route allows. The seed makes the text, and so its
# length, the same on every run; the prompt asks for more than 350 tokens.
LONG_STORY = {
    "messages": [user_json("Write a long story about a lighthouse keeper and a storm.")],
    "temperature": 1,
    "seed": 7,
    "maxTokens": 350,
}
# Reads may wait for a token; the whole stream may take as long as it generates.
STREAM_TIMEOUT = httpx.Timeout(10, read=60)


def paris_request() -> chat_pb2.ChatRequest:
    question = common_pb2.Message(role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text=QUESTION)])
    return chat_pb2.ChatRequest(messages=[question], temperature=0)


def sse_events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The JSON of each `data:` line, as each line arrives."""
    for line in response.iter_lines():
        if line:
            assert line.startswith("data: "), line
            yield json.loads(line.removeprefix("data: "))


def test_list_models_as_rest(envoy: EnvoyProcess) -> None:
    response = httpx.get(f"{envoy.url}/v1/models")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    (model,) = response.json()["models"]
    # Proto3 JSON: camelCase names, enums by name.
    assert model["id"] == MODEL
    assert model["name"] == f"models/{MODEL}"
    assert model["contextWindow"] > 0
    assert "CAPABILITY_CHAT" in model["capabilities"]


def test_resolve_as_rest(envoy: EnvoyProcess) -> None:
    response = httpx.post(f"{envoy.url}/v1/models:resolve", json={"model": "smollm2"})
    assert response.status_code == 200, response.text
    resolution = response.json()["resolution"]
    assert resolution["expression"] == "smollm2"
    assert resolution["model"] == MODEL
    assert resolution["backend"] == "llamacpp"
    assert {"model": MODEL, "verdict": "CANDIDATE_VERDICT_CHOSEN"}.items() <= resolution["candidates"][0].items()


def test_chat_as_rest(envoy: EnvoyProcess) -> None:
    response = httpx.post(f"{envoy.url}/v1/chat:complete", json=PARIS, timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["x-lattice-model"] == MODEL
    reply = response.json()
    assert reply["message"]["role"] == "ROLE_ASSISTANT"
    assert "Paris" in reply["message"]["content"][0]["text"]
    assert reply["finishReason"] == "FINISH_REASON_STOP"
    assert reply["usage"]["completionTokens"] > 0


def test_stream_chat_as_server_sent_events(envoy: EnvoyProcess) -> None:
    with httpx.stream("POST", f"{envoy.url}/v1/chat:stream", json=PARIS, timeout=STREAM_TIMEOUT) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["x-lattice-model"] == MODEL
        # Chunked, not one buffered body: the length is unknown when the first event goes out.
        assert "content-length" not in response.headers
        events = list(sse_events(response))
    *deltas, last = events
    assert len(deltas) > 1 and all("delta" in event for event in deltas)
    assert deltas[0]["delta"]["role"] == "ROLE_ASSISTANT"
    assert "Paris" in "".join(event["delta"].get("content", "") for event in deltas)
    assert last["done"]["finishReason"] == "FINISH_REASON_STOP"
    assert last["done"]["resolution"]["model"] == MODEL
    assert len({event["id"] for event in events}) == 1


def test_a_stream_longer_than_envoys_default_route_timeout_completes(envoy: EnvoyProcess) -> None:
    with httpx.stream("POST", f"{envoy.url}/v1/chat:stream", json=LONG_STORY, timeout=STREAM_TIMEOUT) as response:
        assert response.status_code == 200
        events = list(sse_events(response))
    *deltas, last = events
    assert last["done"]["finishReason"] == "FINISH_REASON_LENGTH", last
    assert last["done"]["usage"]["completionTokens"] == 350
    assert len("".join(event["delta"].get("content", "") for event in deltas)) > 700


def test_errors_are_google_rpc_status_json(envoy: EnvoyProcess) -> None:
    response = httpx.post(f"{envoy.url}/v1/chat:complete", json={"messages": []})
    assert response.status_code == 400
    status = response.json()
    assert status["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    (info,) = status["details"]
    assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert info["domain"] == "lattice"
    assert info["reason"] == "INVALID_ARGUMENT"
    assert info["metadata"] == {"field": "messages"}


def test_unknown_model_is_404(envoy: EnvoyProcess) -> None:
    response = httpx.post(f"{envoy.url}/v1/chat:complete", json={**PARIS, "model": "no-such-model"})
    assert response.status_code == 404
    assert response.json()["details"][0]["reason"] == "MODEL_NOT_FOUND"


def test_a_path_no_rpc_declares_is_404(envoy: EnvoyProcess) -> None:
    response = httpx.get(f"{envoy.url}/v1/nothing-here")
    assert response.status_code == 404


async def test_grpc_passes_through(envoy: EnvoyProcess) -> None:
    async with grpc.aio.insecure_channel(envoy.grpc_target) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())  # type: ignore[attr-defined]  # typeshed's HealthStub lists no methods
        assert health.status == health_pb2.HealthCheckResponse.SERVING

        models = await resolve_pb2_grpc.ResolveServiceStub(channel).ListModels(resolve_pb2.ListModelsRequest())
        assert [m.id for m in models.models] == [MODEL]

        request = paris_request()
        call = chat_pb2_grpc.ChatServiceStub(channel).StreamChat(request)
        replies = [reply async for reply in call]
        assert ("x-lattice-model", MODEL) in tuple(await call.initial_metadata())
    assert "Paris" in "".join(r.delta.content for r in replies if r.HasField("delta"))
    assert replies[-1].done.finish_reason == common_pb2.FINISH_REASON_STOP


def test_envoy_health_checks_the_gateway(envoy: EnvoyProcess, gateway: GatewayProcess) -> None:
    # Envoy's own view (admin interface): its gRPC health checks reached the gateway and passed.
    clusters = httpx.get(f"{envoy.admin_url}/clusters").text
    assert f"lattice_grpc::127.0.0.1:{gateway.grpc_port}::health_flags::healthy" in clusters
    stats = httpx.get(f"{envoy.admin_url}/stats", params={"filter": "^cluster.lattice_grpc.health_check"}).text
    successes = re.search(r"^cluster\.lattice_grpc\.health_check\.success: (\d+)$", stats, re.MULTILINE)
    assert successes and int(successes.group(1)) >= 1, stats


def grpc_web_frame(message: bytes) -> bytes:
    """One grpc-web data frame: flag 0, big-endian length, the message."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def read_grpc_web(body: bytes) -> tuple[list[bytes], dict[str, str]]:
    """The messages and the trailers (the frame flagged 0x80) of a grpc-web response body."""
    messages: list[bytes] = []
    trailers: dict[str, str] = {}
    while body:
        flag, length = body[0], int.from_bytes(body[1:5], "big")
        payload, body = body[5 : 5 + length], body[5 + length :]
        if flag & 0x80:
            for line in payload.decode().strip().split("\r\n"):
                name, _, value = line.partition(":")
                trailers[name.strip().lower()] = value.strip()
        else:
            messages.append(payload)
    return messages, trailers


def test_grpc_web_unary_and_stream(envoy: EnvoyProcess) -> None:
    headers = {"content-type": "application/grpc-web+proto", "x-grpc-web": "1", "origin": ENVOY_CORS_ORIGIN}
    resolve = httpx.post(
        f"{envoy.url}/lattice.v1.ResolveService/Resolve",
        content=grpc_web_frame(resolve_pb2.ResolveRequest(model="smollm2").SerializeToString()),
        headers=headers,
    )
    assert resolve.status_code == 200
    assert resolve.headers["access-control-allow-origin"] == ENVOY_CORS_ORIGIN
    (message,), trailers = read_grpc_web(resolve.content)
    assert trailers["grpc-status"] == "0"
    assert resolve_pb2.ResolveResponse.FromString(message).resolution.model == MODEL

    request = paris_request()
    stream = httpx.post(
        f"{envoy.url}/lattice.v1.ChatService/StreamChat",
        content=grpc_web_frame(request.SerializeToString()),
        headers=headers,
        timeout=60,
    )
    messages, trailers = read_grpc_web(stream.content)
    assert trailers["grpc-status"] == "0"
    replies = [chat_pb2.StreamChatResponse.FromString(m) for m in messages]
    assert "Paris" in "".join(r.delta.content for r in replies if r.HasField("delta"))
    assert replies[-1].done.finish_reason == common_pb2.FINISH_REASON_STOP


def test_cors_allows_only_the_configured_origins(envoy: EnvoyProcess) -> None:
    preflight = {"access-control-request-method": "POST", "access-control-request-headers": "content-type,x-grpc-web"}
    allowed = httpx.options(
        f"{envoy.url}/lattice.v1.ChatService/StreamChat", headers={"origin": ENVOY_CORS_ORIGIN, **preflight}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ENVOY_CORS_ORIGIN
    assert "x-grpc-web" in allowed.headers["access-control-allow-headers"]
    assert "grpc-status" in allowed.headers["access-control-expose-headers"]

    refused = httpx.options(
        f"{envoy.url}/lattice.v1.ChatService/StreamChat", headers={"origin": "https://elsewhere.example", **preflight}
    )
    assert "access-control-allow-origin" not in refused.headers
    rest = httpx.get(f"{envoy.url}/v1/models", headers={"origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in rest.headers


@pytest.mark.parametrize(
    "headers", [{"x-api-key": API_KEY}, {"authorization": f"Bearer {API_KEY}"}], ids=["x-api-key", "bearer"]
)
def test_api_key_headers_reach_the_gateway(keyed_envoy: EnvoyProcess, headers: dict[str, str]) -> None:
    assert httpx.get(f"{keyed_envoy.url}/v1/models", headers=headers).status_code == 200


def test_a_missing_or_wrong_key_is_refused_by_the_gateway(keyed_envoy: EnvoyProcess) -> None:
    missing = httpx.get(f"{keyed_envoy.url}/v1/models")
    assert missing.status_code == 401
    assert missing.json()["details"][0]["reason"] == "API_KEY_MISSING"
    wrong = httpx.get(f"{keyed_envoy.url}/v1/models", headers={"x-api-key": "not-the-key"})
    assert wrong.status_code == 401
    assert wrong.json()["details"][0]["reason"] == "API_KEY_INVALID"


def test_personal_runtimes_as_rest_match_the_shim(envoy: EnvoyProcess, gateway: GatewayProcess) -> None:
    """The walkthrough's JSON, through Envoy's transcoding of PersonalRuntimeService, is the shim's."""
    # The session gateway's store lives in build/test-home across runs: an account of this run's own.
    account = f"acct_envoy_{uuid.uuid4().hex[:8]}"
    key = create_key({}, account)
    body = {"displayName": "through Envoy", "executionBackend": "assistant-runtime"}
    headers = {"x-api-key": key}
    via_envoy = httpx.post(f"{envoy.url}/v1/personal-runtimes", json=body, headers=headers, timeout=30)
    via_shim = httpx.post(f"{gateway.http_url}/v1/personal-runtimes", json=body, headers=headers, timeout=30)
    assert via_envoy.status_code == via_shim.status_code == 200
    runtime, twin = via_envoy.json()["runtime"], via_shim.json()["runtime"]
    assert (
        set(runtime)
        == set(twin)
        == {"latticeId", "accountId", "displayName", "executionBackend", "status", "createdAt", "updatedAt"}
    )
    assert (runtime["executionBackend"], runtime["status"], runtime["accountId"]) == (
        "assistant-runtime",
        "unpaired",
        account,
    )
    lattice_id = runtime["latticeId"]
    minted = httpx.post(
        f"{envoy.url}/v1/personal-runtimes/{lattice_id}/bootstrap-tokens",
        json={"ttlSeconds": 120},
        headers=headers,
        timeout=30,
    )
    assert set(minted.json()) == {"latticeId", "bootstrapToken", "expiresAt", "command"}
    listed = httpx.get(f"{envoy.url}/v1/personal-runtimes", headers=headers, timeout=30).json()
    assert {r["latticeId"] for r in listed["runtimes"]} == {lattice_id, twin["latticeId"]}
    revoked = httpx.delete(f"{envoy.url}/v1/personal-runtimes/{lattice_id}", headers=headers, timeout=30)
    assert revoked.json()["runtime"]["status"] == "revoked"
    hidden = httpx.get(
        f"{envoy.url}/v1/personal-runtimes/{lattice_id}",
        headers={"x-api-key": create_key({}, "acct_other")},
        timeout=30,
    )
    assert hidden.status_code == 404
