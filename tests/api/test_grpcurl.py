"""grpcurl, with no proto files at hand, through server reflection."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from tests.gateway_process import GatewayProcess

pytestmark = pytest.mark.slow

GRPCURL = str(pathlib.Path(sys.executable).parent / "grpcurl")


def grpcurl(*args: str) -> str:
    done = subprocess.run([GRPCURL, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_list_shows_the_services(gateway: GatewayProcess) -> None:
    services = grpcurl("-plaintext", gateway.grpc_target, "list").split()
    assert {"lattice.v1.ChatService", "lattice.v1.ResolveService", "grpc.health.v1.Health"} <= set(services)


def test_describe_shows_the_contract(gateway: GatewayProcess) -> None:
    described = grpcurl("-plaintext", gateway.grpc_target, "describe", "lattice.v1.ChatService")
    assert "rpc StreamChat ( .lattice.v1.ChatRequest ) returns ( stream .lattice.v1.StreamChatResponse )" in described
    message = grpcurl("-plaintext", gateway.grpc_target, "describe", "lattice.v1.ChatRequest")
    assert "repeated .lattice.v1.Message messages = 2" in message


def test_streaming_call(gateway: GatewayProcess) -> None:
    request = {
        "messages": [
            {"role": "ROLE_USER", "content": [{"text": "What is the capital of France? Answer in one word."}]}
        ],
        "temperature": 0,
        "maxTokens": 24,
    }
    out = grpcurl("-plaintext", "-d", json.dumps(request), gateway.grpc_target, "lattice.v1.ChatService/StreamChat")
    messages = [json.loads(chunk) for chunk in out.replace("}\n{", "}\x00{").split("\x00")]
    assert "Paris" in "".join(m.get("delta", {}).get("content", "") for m in messages)
    assert messages[-1]["done"]["finishReason"] == "FINISH_REASON_STOP"


def test_health_check(gateway: GatewayProcess) -> None:
    out = json.loads(grpcurl("-plaintext", gateway.grpc_target, "grpc.health.v1.Health/Check"))
    assert out == {"status": "SERVING"}
