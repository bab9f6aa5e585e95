"""Personal runtimes end to end, with real processes: the gateway, `lattice keys`, `lattice-ctl` and
its daemon, the OpenAI SDK and plain HTTP as the app, and for the daemon's local provider either
the embedded SmolLM2 model or tests/echo_upstream.py (an OpenAI-compatible server on loopback)."""

from __future__ import annotations

import asyncio
import base64
import os
import pathlib
import signal
import sqlite3
import subprocess
from collections.abc import Iterator

import grpc
import httpx
import openai
import pytest
from nacl.public import PrivateKey
from openai.types.chat import ChatCompletionChunk, ChatCompletionFunctionToolParam, ChatCompletionMessageParam

from lattice.v1 import personal_runtime_pb2, personal_runtime_pb2_grpc, resolve_pb2, resolve_pb2_grpc
from tests.gateway_process import GatewayProcess, lattice_env, start_gateway
from tests.personal_runtime_fixtures import (
    BIN,
    Daemon,
    EchoProvider,
    access_token,
    create_key,
    echo_runtime,
    error_code,
    gateway_env,
    oauth_env,
    rest,
    runtime_status,
    wait_for,
)
from tests.rpc_errors import error_info

pytestmark = pytest.mark.slow

# A well-formed X25519 public key for redemptions that must fail on their token (an all-zero key is refused first).
A_PUBLIC_KEY = base64.b64encode(bytes(PrivateKey.generate().public_key)).decode()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("personal-db")
    return {**gateway_env(directory), **oauth_env(directory)}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Iterator[GatewayProcess]:
    process = start_gateway(tmp_path_factory.mktemp("personal"), **env)
    yield process
    process.stop()


def slow_stream(gateway: GatewayProcess, key: str, daemon: Daemon) -> Iterator[ChatCompletionChunk]:
    """A streamed chat that would take the echo provider 40 s, its first chunk already read."""
    client = openai.OpenAI(base_url=gateway.http_url + "/v1", api_key=key, max_retries=0, timeout=30)
    stream = client.chat.completions.create(
        model=f"lattice:personal:{daemon.lattice_id}",
        messages=[{"role": "user", "content": "slow: " + " ".join(f"word{i}" for i in range(200))}],
        stream=True,
    )
    chunks = iter(stream)
    assert next(chunks).choices[0].delta.content == "slow:"
    return chunks


def chat(gateway: GatewayProcess, key: str, model: str, text: str, **extra: object) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
    return rest(gateway, "POST", "/v1/chat/completions", key, body)


def test_the_walkthrough(
    gateway: GatewayProcess, env: dict[str, str], tmp_path: pathlib.Path, daemons: list[Daemon]
) -> None:
    key = create_key(env, "acct_demo")
    created = rest(
        gateway,
        "POST",
        "/v1/personal-runtimes",
        key,
        {"displayName": "Mac Studio in the office", "executionBackend": "local-model"},
    )
    assert created.status_code == 200
    runtime = created.json()["runtime"]
    assert set(runtime) == {
        "latticeId",
        "accountId",
        "displayName",
        "executionBackend",
        "status",
        "createdAt",
        "updatedAt",
    }
    assert runtime["latticeId"].startswith("lat_") and runtime["accountId"] == "acct_demo"
    assert (runtime["executionBackend"], runtime["status"]) == ("local-model", "unpaired")
    assert runtime["createdAt"].endswith("Z")
    lattice_id = runtime["latticeId"]

    minted = rest(
        gateway, "POST", f"/v1/personal-runtimes/{lattice_id}/bootstrap-tokens", key, {"ttlSeconds": 600}
    ).json()
    assert set(minted) == {"latticeId", "bootstrapToken", "expiresAt", "command"}
    assert minted["bootstrapToken"].startswith("plrt_v1_") and minted["expiresAt"].endswith("Z")
    assert minted["command"] == (
        f"lattice-ctl relay connect --gateway '{gateway.http_url}' --bootstrap-token '{minted['bootstrapToken']}'"
    )

    daemon = Daemon(tmp_path / "ctl", lattice_id)
    daemon.ctl("relay", "connect", "--gateway", gateway.http_url, "--bootstrap-token", minted["bootstrapToken"])
    assert (daemon.home / "relay.toml").stat().st_mode & 0o777 == 0o600
    daemons.append(daemon)
    daemon.start()  # the embedded SmolLM2: no provider configured
    assert "relay connected" in daemon.ctl("ping").stdout
    assert "running" in daemon.ctl("daemon", "status").stdout
    listed = rest(gateway, "GET", "/v1/personal-runtimes", key).json()
    assert [(r["latticeId"], r["status"]) for r in listed["runtimes"]] == [(lattice_id, "reachable")]

    client = openai.OpenAI(base_url=gateway.http_url + "/v1", api_key=key, max_retries=0)
    model = f"lattice:personal:{lattice_id}"
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        explained = resolve_pb2_grpc.ResolveServiceStub(channel).Resolve(
            resolve_pb2.ResolveRequest(model=model), metadata=(("x-api-key", key),)
        )
    assert (explained.resolution.model, explained.resolution.backend) == (model, "relay")
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Summarize this using my local runtime."}]
    completion = client.chat.completions.create(model=model, messages=messages, max_tokens=12, temperature=0)
    assert completion.model == model and completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    streamed = client.chat.completions.create(model=model, messages=messages, max_tokens=12, temperature=0, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in streamed if chunk.choices)
    assert text == completion.choices[0].message.content  # greedy: the same answer, streamed

    revoked = rest(gateway, "DELETE", f"/v1/personal-runtimes/{lattice_id}", key)
    assert revoked.json()["runtime"]["status"] == "revoked"
    wait_for(lambda: daemon.ctl("daemon", "status", check=False).returncode == 1, "the refused daemon to exit")
    assert "refused" in daemon.log() and "revoked" in daemon.log()
    assert not (daemon.home / "relay.toml").exists()  # the revoked runtime's credential is not left behind
    listed = rest(gateway, "GET", "/v1/personal-runtimes", key).json()
    assert [(r["latticeId"], r["status"]) for r in listed["runtimes"]] == [(lattice_id, "revoked")]
    refused = rest(gateway, "POST", "/v1/chat/completions", key, {"model": model, "messages": messages})
    assert (refused.status_code, error_code(refused)) == (403, "runtime_revoked")
    no_token = rest(gateway, "POST", f"/v1/personal-runtimes/{lattice_id}/bootstrap-tokens", key, {})
    assert (no_token.status_code, error_code(no_token)) == (403, "runtime_revoked")
    restarted = daemon.ctl("daemon", "start", check=False)  # its credential is refused too
    assert restarted.returncode != 0


def test_versions() -> None:
    for command in ("lattice-ctl", "lattice-daemon"):
        done = subprocess.run([BIN / command, "--version"], capture_output=True, text=True, check=True)
        assert done.stdout.startswith(f"{command} 0.")


def test_a_token_is_single_use_even_when_raced(gateway: GatewayProcess, env: dict[str, str]) -> None:
    key = create_key(env, "acct_race")
    lattice_id = rest(
        gateway, "POST", "/v1/personal-runtimes", key, {"displayName": "r", "executionBackend": "local-model"}
    ).json()["runtime"]["latticeId"]
    token = rest(gateway, "POST", f"/v1/personal-runtimes/{lattice_id}/bootstrap-tokens", key, {}).json()[
        "bootstrapToken"
    ]
    body = {"bootstrapToken": token, "publicKey": A_PUBLIC_KEY}

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=gateway.http_url, timeout=60) as client:
            return await asyncio.gather(
                *(client.post("/v1/personal-runtime-bootstrap-redemptions", json=body) for _ in range(6))
            )

    responses = asyncio.run(race())
    assert sorted(r.status_code for r in responses) == [200] + [401] * 5
    assert {error_code(r) for r in responses if r.status_code == 401} == {"bootstrap_token_used"}
    winner = next(r.json() for r in responses if r.status_code == 200)
    assert winner["latticeId"] == lattice_id and winner["daemonCredential"].startswith("lrd_")
    assert winner["relayEndpoint"] == gateway.grpc_target
    replay = rest(gateway, "POST", "/v1/personal-runtime-bootstrap-redemptions", None, body)
    assert (replay.status_code, error_code(replay)) == (401, "bootstrap_token_used")


def test_an_expired_token_is_refused(gateway: GatewayProcess, env: dict[str, str]) -> None:
    key = create_key(env, "acct_late")
    lattice_id = rest(
        gateway, "POST", "/v1/personal-runtimes", key, {"displayName": "l", "executionBackend": "local-model"}
    ).json()["runtime"]["latticeId"]
    token = rest(
        gateway, "POST", f"/v1/personal-runtimes/{lattice_id}/bootstrap-tokens", key, {"ttlSeconds": 60}
    ).json()["bootstrapToken"]
    # Sixty seconds is the shortest TTL; rather than wait, age the token in the database.
    database = env["LATTICE_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as db:
        db.execute(
            "UPDATE bootstrap_tokens SET expires_at = '2000-01-01 00:00:00.000000' WHERE lattice_id = ?", (lattice_id,)
        )
    body = {"bootstrapToken": token, "publicKey": A_PUBLIC_KEY}
    expired = rest(gateway, "POST", "/v1/personal-runtime-bootstrap-redemptions", None, body)
    assert (expired.status_code, error_code(expired)) == (401, "bootstrap_token_expired")
    too_short = rest(gateway, "POST", f"/v1/personal-runtimes/{lattice_id}/bootstrap-tokens", key, {"ttlSeconds": 30})
    assert (too_short.status_code, error_code(too_short)) == (400, "invalid_argument")


def test_scopes_and_accounts(gateway: GatewayProcess, env: dict[str, str]) -> None:
    owner = create_key(env, "acct_alice")
    chat_only = create_key(env, "acct_alice", "lattice:compute:inference")
    stranger = create_key(env, "acct_mallory")
    lattice_id = rest(
        gateway, "POST", "/v1/personal-runtimes", owner, {"displayName": "a", "executionBackend": "assistant-runtime"}
    ).json()["runtime"]["latticeId"]

    missing = rest(
        gateway, "POST", "/v1/personal-runtimes", chat_only, {"displayName": "b", "executionBackend": "local-model"}
    )
    assert (missing.status_code, error_code(missing)) == (403, "insufficient_scopes")
    assert "lattice:compute:personal_runtime:manage" in missing.json()["error"]["message"]
    assert (
        rest(gateway, "GET", f"/v1/personal-runtimes/{lattice_id}", chat_only).status_code == 200
    )  # may look, not change

    for method, path, body in (
        ("GET", f"/v1/personal-runtimes/{lattice_id}", None),
        ("DELETE", f"/v1/personal-runtimes/{lattice_id}", None),
        ("POST", f"/v1/personal-runtimes/{lattice_id}/bootstrap-tokens", {}),
        (
            "POST",
            "/v1/chat/completions",
            {"model": f"lattice:personal:{lattice_id}", "messages": [{"role": "user", "content": "hi"}]},
        ),
    ):
        hidden = rest(gateway, method, path, stranger, body)
        assert (hidden.status_code, error_code(hidden)) == (404, "runtime_not_found"), (method, path)
    assert rest(gateway, "GET", "/v1/personal-runtimes", stranger).json() == {}  # proto3 JSON: no empty list
    anonymous = rest(gateway, "GET", "/v1/personal-runtimes")
    assert (anonymous.status_code, error_code(anonymous)) == (401, "api_key_missing")
    unreachable = chat(gateway, owner, f"lattice:personal:{lattice_id}", "hi")
    assert (unreachable.status_code, error_code(unreachable)) == (503, "runtime_unreachable")

    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = personal_runtime_pb2_grpc.PersonalRuntimeServiceStub(channel)
        with pytest.raises(grpc.RpcError) as denied:
            stub.CreatePersonalRuntime(
                personal_runtime_pb2.CreatePersonalRuntimeRequest(display_name="c", execution_backend="local-model"),
                metadata=(("authorization", f"Bearer {chat_only}"),),
            )
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        info = error_info(denied.value)
        assert (
            info.reason == "INSUFFICIENT_SCOPES" and info.metadata["scope"] == "lattice:compute:personal_runtime:manage"
        )


def test_oauth_access_tokens_act_for_their_subject(gateway: GatewayProcess) -> None:
    manage = "lattice:compute:inference lattice:compute:personal_runtime:manage"
    body = {"displayName": "from an app", "executionBackend": "local-model"}

    def create(token: str) -> httpx.Response:
        return httpx.post(
            gateway.http_url + "/v1/personal-runtimes",
            headers={"authorization": f"Bearer {token}"},
            json=body,
            timeout=60,
        )

    created = create(access_token("acct_oauth_user", manage))
    assert created.status_code == 200 and created.json()["runtime"]["accountId"] == "oauth:acct_oauth_user"
    narrow = create(access_token("acct_oauth_user", "lattice:compute:inference"))
    assert (narrow.status_code, error_code(narrow)) == (403, "insufficient_scopes")
    expired = create(access_token("acct_oauth_user", manage, lifetime=-60))
    assert (expired.status_code, error_code(expired)) == (401, "access_token_expired")
    foreign = create(access_token("acct_oauth_user", manage, issuer="https://elsewhere.test"))
    assert (foreign.status_code, error_code(foreign)) == (401, "access_token_invalid")
    forged = access_token("acct_oauth_user", manage)[:-4] + "AAAA"
    assert error_code(create(forged)) == "access_token_invalid"


def test_fifty_concurrent_chats_through_one_daemon(
    gateway: GatewayProcess, env: dict[str, str], echo: EchoProvider, tmp_path: pathlib.Path, daemons: list[Daemon]
) -> None:
    key, daemon = echo_runtime(gateway, env, echo, tmp_path / "ctl", daemons, "acct_busy")
    client = openai.AsyncOpenAI(base_url=gateway.http_url + "/v1", api_key=key, max_retries=0, timeout=120)
    model = f"lattice:personal:{daemon.lattice_id}"

    async def one(i: int) -> tuple[str, str]:
        prompt = f"request {i} says hello from number {i}"
        if i % 2:
            stream = await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": prompt}], stream=True
            )
            return prompt, "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        done = await client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}])
        return prompt, done.choices[0].message.content or ""

    async def all_of_them() -> list[tuple[str, str]]:
        async with client:
            return await asyncio.gather(*(one(i) for i in range(50)))

    for prompt, answer in asyncio.run(all_of_them()):
        assert answer == prompt  # each answer is its own request's, none lost or crossed


def test_cancellation_reaches_the_daemons_provider(
    gateway: GatewayProcess, env: dict[str, str], echo: EchoProvider, tmp_path: pathlib.Path, daemons: list[Daemon]
) -> None:
    key, daemon = echo_runtime(gateway, env, echo, tmp_path / "ctl", daemons, "acct_cancel")
    abandoned = echo.stats()["abandoned"]
    chunks = slow_stream(gateway, key, daemon)
    chunks.close()  # type: ignore[attr-defined]  # the app goes away (the SDK's stream iterator is a generator)
    wait_for(lambda: echo.stats()["abandoned"] > abandoned, "the provider's stream to be abandoned")
    assert runtime_status(gateway, key, daemon.lattice_id) == "reachable"


def test_a_killed_daemon_fails_its_work_promptly(
    gateway: GatewayProcess, env: dict[str, str], echo: EchoProvider, tmp_path: pathlib.Path, daemons: list[Daemon]
) -> None:
    key, daemon = echo_runtime(gateway, env, echo, tmp_path / "ctl", daemons, "acct_crash")
    chunks = slow_stream(gateway, key, daemon)
    os.kill(daemon.pid(), signal.SIGKILL)
    with pytest.raises(openai.APIError, match="not reachable"):
        for _ in chunks:
            pass
    wait_for(lambda: runtime_status(gateway, key, daemon.lattice_id) == "offline", "the runtime to show offline", 10)
    after = chat(gateway, key, f"lattice:personal:{daemon.lattice_id}", "hi")
    assert (after.status_code, error_code(after)) == (503, "runtime_unreachable")


def test_the_daemon_survives_a_gateway_restart(
    tmp_path: pathlib.Path, echo: EchoProvider, daemons: list[Daemon]
) -> None:
    env = gateway_env(tmp_path)
    first = start_gateway(tmp_path, **env)
    ports = {"LATTICE_GRPC_PORT": str(first.grpc_port), "LATTICE_HTTP_PORT": str(first.http_port)}
    try:
        key, daemon = echo_runtime(first, env, echo, tmp_path / "ctl", daemons, "acct_restart")
    finally:
        first.stop()
    second = start_gateway(tmp_path, **ports, **env)
    try:
        wait_for(lambda: runtime_status(second, key, daemon.lattice_id) == "reachable", "the daemon to reconnect")
        answer = chat(second, key, f"lattice:personal:{daemon.lattice_id}", "back again")
        assert answer.json()["choices"][0]["message"]["content"] == "back again"
    finally:
        second.stop()


def test_a_silent_daemon_is_marked_offline_by_heartbeats_and_comes_back(
    gateway: GatewayProcess, env: dict[str, str], echo: EchoProvider, tmp_path: pathlib.Path, daemons: list[Daemon]
) -> None:
    """A frozen daemon keeps its TCP connection open, so only the application heartbeats can tell."""
    key, daemon = echo_runtime(gateway, env, echo, tmp_path / "ctl", daemons, "acct_frozen")
    chunks = slow_stream(gateway, key, daemon)
    os.kill(daemon.pid(), signal.SIGSTOP)
    try:
        with pytest.raises(openai.APIError, match="missed heartbeats"):
            for _ in chunks:
                pass
        assert runtime_status(gateway, key, daemon.lattice_id) == "offline"
    finally:
        os.kill(daemon.pid(), signal.SIGCONT)
    wait_for(lambda: runtime_status(gateway, key, daemon.lattice_id) == "reachable", "the thawed daemon to reconnect")


def test_usage_is_metered_per_account_exactly(
    gateway: GatewayProcess, env: dict[str, str], echo: EchoProvider, tmp_path: pathlib.Path, daemons: list[Daemon]
) -> None:
    """A known sequence of requests, then `GET /v1/usage` and `lattice usage`: the same rows and totals."""
    metered, daemon = echo_runtime(gateway, env, echo, tmp_path / "ctl", daemons, "acct_metered")
    other = create_key(env, "acct_metered_other")
    local = [
        chat(gateway, metered, "smollm2-135m-instruct", f"Say {i}", max_tokens=3).json()["usage"] for i in range(2)
    ]
    personal = chat(gateway, metered, f"lattice:personal:{daemon.lattice_id}", "one two three").json()["usage"]
    assert chat(gateway, metered, "no-such-model", "hi").status_code == 404
    chat(gateway, other, "smollm2-135m-instruct", "hi", max_tokens=2)

    usage = rest(gateway, "GET", "/v1/usage?groupBy=model,backend", metered).json()
    groups = {g["model"]: g for g in usage["groups"]}
    assert set(groups) == {"smollm2-135m-instruct", f"lattice:personal:{daemon.lattice_id}", "no-such-model"}
    own = groups["smollm2-135m-instruct"]
    assert (own["backend"], int(own["requests"])) == ("llamacpp", 2)
    assert int(own["promptTokens"]) == sum(u["prompt_tokens"] for u in local)
    assert int(own["completionTokens"]) == sum(u["completion_tokens"] for u in local)
    relay = groups[f"lattice:personal:{daemon.lattice_id}"]
    assert relay["backend"] == "relay" and int(relay["totalTokens"]) == personal["total_tokens"]
    assert int(groups["no-such-model"]["failedRequests"]) == 1
    total = usage["total"]
    assert int(total["requests"]) == 4 and int(total["failedRequests"]) == 1
    assert int(total["totalTokens"]) == sum(u["total_tokens"] for u in [*local, personal])
    by_runtime = rest(gateway, "GET", "/v1/usage?groupBy=runtime", metered).json()["groups"]
    assert {g.get("runtimeId", "") for g in by_runtime} == {"", daemon.lattice_id}

    theirs = rest(gateway, "GET", "/v1/usage", other).json()
    assert int(theirs["total"]["requests"]) == 1  # never the other account's
    cli = subprocess.run(
        [BIN / "lattice", "usage", "--account", "acct_metered", "--group-by", "backend"],
        env=lattice_env(**env),
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [line.split("\t") for line in cli.stdout.splitlines()]
    assert lines[0][:2] == ["backend", "requests"] and lines[-1][:2] == ["TOTAL", "4"]


WEATHER_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


def test_a_tool_call_from_the_daemons_provider_reaches_the_app(
    gateway: GatewayProcess, env: dict[str, str], echo: EchoProvider, tmp_path: pathlib.Path, daemons: list[Daemon]
) -> None:
    key, daemon = echo_runtime(gateway, env, echo, tmp_path / "ctl", daemons, "acct_tools")
    model = f"lattice:personal:{daemon.lattice_id}"
    prompt = 'tool: get_weather {"city": "Paris"}'
    answer = chat(gateway, key, model, prompt, tools=[WEATHER_TOOL])
    assert answer.status_code == 200, answer.text
    choice = answer.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["id"] == "call_echo"
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert answer.json()["usage"]["completion_tokens"] == 7

    # Streamed, the fragments arrive as the provider sent them, in order.
    client = openai.OpenAI(base_url=gateway.http_url + "/v1", api_key=key, max_retries=0, timeout=60)
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": prompt}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    fragments = [f for c in stream if c.choices for f in c.choices[0].delta.tool_calls or ()]
    assert fragments[0].id == "call_echo"
    assert fragments[0].function is not None and fragments[0].function.name == "get_weather"
    assert "".join((f.function.arguments or "") for f in fragments if f.function) == '{"city": "Paris"}'
