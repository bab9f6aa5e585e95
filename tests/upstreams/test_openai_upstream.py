"""A real `mlx_lm.server` on loopback as an OpenAI-compatible upstream, through the whole gateway."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import grpc
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from lattice.v1 import chat_pb2, chat_pb2_grpc, common_pb2, resolve_pb2, resolve_pb2_grpc
from tests.gateway_process import GatewayProcess, start_gateway
from tests.upstream_servers import ServerProcess, smollm2_mlx_dir, start_mlx_lm_server

pytestmark = pytest.mark.slow

LOCAL = "smollm2-135m-instruct"
PROXIED = "smollm2-upstream"
QUESTION = "What is the capital of France?"
PARIS: list[ChatCompletionMessageParam] = [{"role": "user", "content": QUESTION}]


def gateway_config(path: pathlib.Path, upstream: ServerProcess) -> pathlib.Path:
    """Local SmolLM2 on MLX, the same weights behind mlx_lm.server as `smollm2-upstream`, and a
    second, profile-less upstream entry for the same server whose model is only discovered."""
    path.write_text(
        f"""
[[models]]
id = "{LOCAL}"
roles = ["fast", "chat"]
latency_tier = "fast"

[[models]]
id = "{PROXIED}"
backend = "openai"
upstream = "mlx-server"
upstream_model = {json.dumps(str(smollm2_mlx_dir()))}
roles = ["chat"]
context_window = 8192

[[upstreams]]
name = "mlx-server"
base_url = "{upstream.base_url}"
refresh_seconds = 300

[[upstreams]]
name = "mlx-discovered"
base_url = "{upstream.base_url}"
refresh_seconds = 300
"""
    )
    return path


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # Serial, so the cancellation test below proves something: a request waits for the one before it.
    server = start_mlx_lm_server(tmp_path_factory.mktemp("mlx-lm-server"), serial=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxying_gateway(tmp_path_factory: pytest.TempPathFactory, upstream: ServerProcess) -> Iterator[GatewayProcess]:
    log_dir = tmp_path_factory.mktemp("proxying-gateway")
    config = gateway_config(log_dir / "lattice.toml", upstream)
    process = start_gateway(log_dir, LATTICE_CONFIG=str(config))
    yield process
    process.stop()


def user(text: str) -> common_pb2.Message:
    return common_pb2.Message(role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text=text)])


def openai_client(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.http_url}/v1", api_key="unused", max_retries=0)


def test_upstream_models_are_configured_and_discovered(proxying_gateway: GatewayProcess) -> None:
    with grpc.insecure_channel(proxying_gateway.grpc_target) as channel:
        models = resolve_pb2_grpc.ResolveServiceStub(channel).ListModels(resolve_pb2.ListModelsRequest()).models
    by_id = {m.id: m for m in models}
    assert by_id[PROXIED].backend == "openai"
    assert by_id[PROXIED].available
    discovered = by_id[str(smollm2_mlx_dir())]  # mlx_lm.server names its model by path
    assert discovered.backend == "openai"
    assert discovered.owned_by == "mlx-discovered"
    assert "fast" in discovered.roles  # from the built-in `*smollm*` profile pattern
    assert discovered.context_window == 8192


def test_chat_through_the_upstream(proxying_gateway: GatewayProcess) -> None:
    raw = openai_client(proxying_gateway).chat.completions.with_raw_response.create(
        model=PROXIED,
        messages=PARIS,
        temperature=0,
        max_tokens=24,
    )
    completion = raw.parse()
    assert raw.headers["x-lattice-model"] == PROXIED
    assert completion.model == PROXIED
    assert "Paris" in (completion.choices[0].message.content or "")
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 0
    resolution = raw.http_response.json()["lattice"]["resolution"]
    assert resolution["backend"] == "openai"


async def test_stream_through_the_upstream(proxying_gateway: GatewayProcess) -> None:
    request = chat_pb2.ChatRequest(
        model=PROXIED,
        messages=[user(QUESTION)],
        temperature=0,
        max_tokens=24,
    )
    async with grpc.aio.insecure_channel(proxying_gateway.grpc_target) as channel:
        messages = [m async for m in chat_pb2_grpc.ChatServiceStub(channel).StreamChat(request)]
    assert len([m for m in messages if m.HasField("delta")]) > 1  # passed through as it came, not buffered
    assert "Paris" in "".join(m.delta.content for m in messages)
    done = messages[-1].done
    assert done.finish_reason == common_pb2.FINISH_REASON_STOP
    assert done.usage.completion_tokens > 0
    assert done.resolution.backend == "openai"


async def test_cancelling_closes_the_upstream_request(proxying_gateway: GatewayProcess) -> None:
    long = chat_pb2.ChatRequest(
        model=PROXIED,
        messages=[
            common_pb2.Message(role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text="Tell a long story.")])
        ],
        max_tokens=4000,
        seed=3,
    )
    short = chat_pb2.ChatRequest(model=PROXIED, messages=long.messages, max_tokens=3)
    async with grpc.aio.insecure_channel(proxying_gateway.grpc_target) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        stream = stub.StreamChat(long)
        seen = 0
        async for message in stream:
            seen += message.HasField("delta")
            if seen == 3:
                break
        stream.cancel()
        # The upstream runs serially here: this completes only if the long one stopped.
        reply = await stub.Chat(short, timeout=90)
    assert reply.usage.completion_tokens > 0


def test_role_and_priority_lists_through_the_shim(proxying_gateway: GatewayProcess) -> None:
    client = openai_client(proxying_gateway)
    fast = client.chat.completions.create(model="role:fast", messages=PARIS, max_tokens=4)
    assert fast.model == LOCAL
    listed = client.chat.completions.create(
        model=f"gpt-17,{PROXIED}",
        messages=PARIS,
        max_tokens=4,
    )
    assert listed.model == PROXIED


def test_a_request_no_model_can_serve_is_400(proxying_gateway: GatewayProcess) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        }
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client(proxying_gateway).chat.completions.create(model="role:chat", messages=messages)
    assert caught.value.code == "no_model_satisfies"
    assert "vision" in caught.value.message


def resolve_with_grpcurl(gateway: GatewayProcess, request: dict[str, object]) -> subprocess.CompletedProcess[str]:
    grpcurl = str(pathlib.Path(sys.executable).parent / "grpcurl")
    return subprocess.run(
        [grpcurl, "-plaintext", "-d", json.dumps(request), gateway.grpc_target, "lattice.v1.ResolveService/Resolve"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_resolve_through_grpcurl_shows_candidates_and_reasons(proxying_gateway: GatewayProcess) -> None:
    request = {
        "model": f"role:chat,{PROXIED}",
        "request": {
            "messages": [{"role": "ROLE_USER", "content": [{"imageUrl": {"url": "data:image/png;base64,AA=="}}]}],
        },
    }
    grpcurl = str(pathlib.Path(sys.executable).parent / "grpcurl")
    done = subprocess.run(
        [
            grpcurl,
            "-plaintext",
            "-d",
            json.dumps(request),
            proxying_gateway.grpc_target,
            "lattice.v1.ResolveService/Resolve",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0  # nothing here can see images: refused, with every candidate's reason
    assert "FailedPrecondition" in done.stderr
    assert f"{LOCAL}: lacks vision" in done.stderr
    assert f"{PROXIED}: lacks vision" in done.stderr
    ok = subprocess.run(
        [
            grpcurl,
            "-plaintext",
            "-d",
            json.dumps({"model": f"gpt-17,{PROXIED},{LOCAL}"}),
            proxying_gateway.grpc_target,
            "lattice.v1.ResolveService/Resolve",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    resolution = json.loads(ok.stdout)["resolution"]
    assert resolution["model"] == PROXIED
    assert [(c["model"], c["verdict"]) for c in resolution["candidates"]] == [
        (PROXIED, "CANDIDATE_VERDICT_CHOSEN"),
        (LOCAL, "CANDIDATE_VERDICT_OUTRANKED"),
    ]


def test_falls_back_when_the_upstream_dies(tmp_path: pathlib.Path) -> None:
    server = start_mlx_lm_server(tmp_path)
    gateway = start_gateway(tmp_path, LATTICE_CONFIG=str(gateway_config(tmp_path / "lattice.toml", server)))
    try:
        client = openai_client(gateway)
        before = client.chat.completions.create(model=f"{PROXIED},{LOCAL}", messages=PARIS, max_tokens=4)
        assert before.model == PROXIED
        server.stop()
        raw = client.chat.completions.with_raw_response.create(
            model=f"{PROXIED},{LOCAL}",
            messages=PARIS,
            max_tokens=4,
        )
        assert raw.parse().model == LOCAL
        candidates = raw.http_response.json()["lattice"]["resolution"]["candidates"]
        assert candidates[0]["model"] == PROXIED
        assert candidates[0]["verdict"] == "CANDIDATE_VERDICT_FAILED"
        assert "before the first token" in candidates[0]["detail"]
        assert candidates[1] == {**candidates[1], "model": LOCAL, "verdict": "CANDIDATE_VERDICT_CHOSEN"}
        # Marked unhealthy: the next request skips it without trying.
        again = client.chat.completions.with_raw_response.create(
            model=f"{PROXIED},{LOCAL}",
            messages=PARIS,
            max_tokens=4,
        )
        skipped = again.http_response.json()["lattice"]["resolution"]["candidates"][0]
        assert skipped["verdict"] == "CANDIDATE_VERDICT_UNAVAILABLE"
    finally:
        gateway.stop()
        server.stop()


def test_an_upstream_that_cannot_list_its_models_is_served_by_configured_ids(tmp_path: pathlib.Path) -> None:
    server = start_mlx_lm_server(tmp_path, with_hf_cache=False)  # its /v1/models fails, as on a fresh machine
    listed = f"models = [{json.dumps(str(smollm2_mlx_dir()))}]\n"
    config = (
        gateway_config(tmp_path / "lattice.toml", server)
        .read_text()
        .replace('name = "mlx-discovered"\n', f'name = "mlx-discovered"\n{listed}')
    )
    (tmp_path / "lattice.toml").write_text(config)
    gateway = start_gateway(tmp_path, LATTICE_CONFIG=str(tmp_path / "lattice.toml"))
    try:
        client = openai_client(gateway)
        ids = [m.id for m in client.models.list().data]
        assert str(smollm2_mlx_dir()) in ids  # from `models`, not from the broken list
        answer = client.chat.completions.create(model=str(smollm2_mlx_dir()), messages=PARIS, max_tokens=4)
        assert answer.choices[0].message.content
    finally:
        gateway.stop()
        server.stop()
