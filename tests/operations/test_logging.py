"""Structured logs: JSON off a terminal, readable on one; a request id that goes shim → server and back;
prompts and answers never logged unless the operator asks."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from lattice.observability.logs import request_id_or_new
from lattice.v1 import chat_pb2, chat_pb2_grpc, common_pb2, resolve_pb2, resolve_pb2_grpc
from tests.gateway_process import REPO, GatewayProcess, start_gateway
from tests.personal_runtime_fixtures import wait_for


@pytest.mark.parametrize("offered", ["abc", "req_01HZX8", "0f8c1b9e-6a55-4bde-9d1b-3f0a9b6c2d11", "a.b:c/d+e=f-g"])
def test_a_sensible_request_id_is_kept(offered: str) -> None:
    assert request_id_or_new(offered) == offered


@pytest.mark.parametrize("offered", [None, "", "x" * 129, "two words", 'quote"', "new\nline", "é", "-leading"])
def test_anything_else_is_replaced_by_a_new_id(offered: str | None) -> None:
    replaced = request_id_or_new(offered)
    assert replaced != offered
    assert request_id_or_new(replaced) == replaced  # the new one is itself acceptable


LOG_SCRIPT = """
import logging
from lattice.observability.logs import bound_request_id, configure_logging
configure_logging("info", "auto")
with bound_request_id("rid-42"):
    logging.getLogger("lattice.test").info("hello %s", "world")
logging.getLogger("lattice.test").debug("not at info")
"""


def test_logs_are_json_lines_with_the_request_id_when_stderr_is_not_a_terminal() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOG_SCRIPT], cwd=REPO, capture_output=True, text=True, check=True, timeout=60
    )
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert len(lines) == 1
    assert lines[0]["event"] == "hello world"
    assert lines[0]["request_id"] == "rid-42"
    assert lines[0]["level"] == "info"
    assert lines[0]["logger"] == "lattice.test"
    assert "timestamp" in lines[0]


def test_logs_are_for_people_on_a_terminal() -> None:
    controller, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-c", LOG_SCRIPT], cwd=REPO, stderr=terminal, stdout=subprocess.DEVNULL)
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        output += chunk
    process.wait(timeout=60)
    os.close(controller)
    text = output.decode()
    assert "hello world" in text
    assert "rid-42" in text
    assert not text.lstrip().startswith("{")


def log_lines(gateway: GatewayProcess) -> list[dict[str, Any]]:
    lines = []
    for line in gateway.log().splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a library's print, not a log line
    return lines


SERVER = ("lattice.rpc",)
SHIM_AND_SERVER = ("lattice.http", "lattice.rpc")


def lines_for(gateway: GatewayProcess, request_id: str, loggers: tuple[str, ...]) -> list[dict[str, Any]]:
    """The log lines of one request, once each of `loggers` has written its line: the gRPC server writes
    its line just after the call's status has gone out, the shim just after the last byte of its answer,
    so either may land a moment after the caller has its answer."""

    def lines() -> list[dict[str, Any]]:
        return [line for line in log_lines(gateway) if line.get("request_id") == request_id]

    def all_there() -> bool:
        return set(loggers) <= {line["logger"] for line in lines()}

    wait_for(all_there, f"the {', '.join(loggers)} log lines of {request_id}")
    return lines()


def ask(gateway: GatewayProcess, text: str, **headers: str) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": text}], "max_tokens": 8, "temperature": 0}
    return httpx.post(f"{gateway.http_url}/v1/chat/completions", json=body, headers=headers, timeout=120)


@pytest.mark.slow
def test_the_callers_request_id_comes_back_and_is_in_the_shims_and_the_servers_logs(gateway: GatewayProcess) -> None:
    request_id = f"test-{uuid.uuid4().hex}"
    answer = ask(gateway, "Hello!", **{"x-request-id": request_id})
    assert answer.status_code == 200
    assert answer.headers["x-request-id"] == request_id
    lines = lines_for(gateway, request_id, SHIM_AND_SERVER)  # the shim's line and the server's
    assert {line["logger"] for line in lines} == {"lattice.http", "lattice.rpc"}


@pytest.mark.slow
def test_without_one_the_shim_makes_a_request_id_and_the_server_logs_under_it(gateway: GatewayProcess) -> None:
    answer = ask(gateway, "Hello!")
    request_id = answer.headers["x-request-id"]
    assert len(request_id) >= 16
    rpc = [line for line in lines_for(gateway, request_id, SHIM_AND_SERVER) if line["logger"] == "lattice.rpc"]
    assert [line["rpc"] for line in rpc] == ["lattice.v1.ChatService/Chat"]
    assert rpc[0]["code"] == "OK"


@pytest.mark.slow
def test_an_unusable_request_id_is_replaced(gateway: GatewayProcess) -> None:
    answer = httpx.get(f"{gateway.http_url}/v1/models", headers={"x-request-id": "has spaces & 'quotes'"})
    assert answer.status_code == 200
    assert answer.headers["x-request-id"] != "has spaces & 'quotes'"
    assert lines_for(gateway, answer.headers["x-request-id"], SHIM_AND_SERVER)


@pytest.mark.slow
def test_errors_and_streams_carry_the_request_id_too(gateway: GatewayProcess) -> None:
    refused = httpx.post(
        f"{gateway.http_url}/v1/chat/completions",
        json={"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-request-id": "refused-1"},
    )
    assert refused.status_code == 404
    assert refused.headers["x-request-id"] == "refused-1"
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "stream": True}
    with httpx.stream(
        "POST", f"{gateway.http_url}/v1/chat/completions", json=body, headers={"x-request-id": "streamed-1"}, timeout=60
    ) as streamed:
        assert streamed.status_code == 200
        assert streamed.headers["x-request-id"] == "streamed-1"
        assert "[DONE]" in "".join(streamed.iter_text())
    invalid = httpx.post(f"{gateway.http_url}/v1/chat/completions", content=b"{", headers={"x-request-id": "bad-1"})
    assert invalid.status_code == 400
    assert invalid.headers["x-request-id"] == "bad-1"


@pytest.mark.slow
async def test_grpc_callers_get_the_request_id_in_the_initial_metadata(gateway: GatewayProcess) -> None:
    async with grpc.aio.insecure_channel(gateway.grpc_target) as channel:
        resolve = resolve_pb2_grpc.ResolveServiceStub(channel)
        call = resolve.ListModels(resolve_pb2.ListModelsRequest(), metadata=(("x-request-id", "grpc-1"),))
        await call
        assert ("x-request-id", "grpc-1") in tuple(await call.initial_metadata())
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        request = chat_pb2.ChatRequest(
            model="no-such-model",
            messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text="hi")])],
        )
        failing = chat.Chat(request, metadata=(("x-request-id", "grpc-2"),))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await failing
        assert ("x-request-id", "grpc-2") in tuple(refused.value.initial_metadata())
        anonymous = resolve.ListModels(resolve_pb2.ListModelsRequest())
        await anonymous
        generated = dict(await anonymous.initial_metadata())["x-request-id"]
        assert generated
    assert lines_for(gateway, "grpc-2", SERVER)[0]["code"] == "NOT_FOUND"
    assert lines_for(gateway, str(generated), SERVER)


MARKER = "heliotrope-marmalade-9321"


@pytest.mark.slow
def test_prompts_and_answers_are_not_logged_by_default(gateway: GatewayProcess) -> None:
    answer = ask(gateway, f"Repeat after me: {MARKER}", **{"x-request-id": "private-1"})
    assert answer.status_code == 200
    text = answer.json()["choices"][0]["message"]["content"].strip()
    assert len(text) >= 10, "too short an answer to look for in the log"
    assert lines_for(gateway, "private-1", SHIM_AND_SERVER)  # the request was logged,
    log = gateway.log()
    assert MARKER not in log  # but not what it said
    assert text not in log


@pytest.fixture(scope="module")
def logging_prompts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = start_gateway(tmp_path_factory.mktemp("log-prompts"), LATTICE_LOG_PROMPTS="true")
    yield process
    process.stop()


@pytest.mark.slow
def test_an_operator_may_log_prompts_and_answers(logging_prompts: GatewayProcess) -> None:
    answer = ask(logging_prompts, f"Repeat after me: {MARKER}", **{"x-request-id": "logged-1"})
    assert answer.status_code == 200
    lines = {line["event"]: line for line in lines_for(logging_prompts, "logged-1", SHIM_AND_SERVER)}
    assert lines["chat prompt"]["messages"] == [{"role": "user", "text": f"Repeat after me: {MARKER}"}]
    assert lines["chat answer"]["answer"] == answer.json()["choices"][0]["message"]["content"]
