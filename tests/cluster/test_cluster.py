"""Three gateway replicas on one PostgreSQL database and one NATS server: a daemon connected to one
replica serves chats that land on any replica; a broker outage fails personal-runtime chats fast and
heals by itself; a revocation anywhere closes the stream where it is held.

Heartbeats are 1 s, so a replica gone silent is noticed within 2 s. Every wait is on a condition."""

from __future__ import annotations

import asyncio
import pathlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import httpx
import openai
import pytest

from lattice.v1 import chat_pb2, chat_pb2_grpc, common_pb2
from tests.cluster.processes import Envoy, NatsServer, start_envoy, start_nats, start_replicas
from tests.gateway_process import GatewayProcess, free_port
from tests.personal_runtime_fixtures import (
    Daemon,
    EchoProvider,
    echo_runtime,
    error_code,
    rest,
    runtime_status,
    start_echo_provider,
    stopping_daemons,
    wait_for,
)
from tests.postgres_server import fresh_database

pytestmark = pytest.mark.slow

PERSONAL = "lattice:personal:"


@dataclass
class Cluster:
    nats: NatsServer
    replicas: list[GatewayProcess]
    envoy: Envoy
    env: dict[str, str]
    echo: EchoProvider
    daemons: list[Daemon]


@pytest.fixture(scope="module")
def cluster(postgres: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    logs = tmp_path_factory.mktemp("cluster")
    nats = start_nats(logs)
    env = {
        "LATTICE_DATABASE_URL": asyncio.run(fresh_database(postgres)),
        "LATTICE_BROKER_URL": nats.url,
        "LATTICE_RELAY_HEARTBEAT_SECONDS": "1",
        "LATTICE_AUTH_CACHE_SECONDS": "0",
    }
    # Daemons dial the relay through Envoy, which spreads their streams over the replicas.
    envoy_port = free_port()
    env["LATTICE_RELAY_ENDPOINT"] = f"127.0.0.1:{envoy_port}"
    echo = start_echo_provider()
    replicas: list[GatewayProcess] = []
    envoy: Envoy | None = None
    try:
        replicas = start_replicas(logs, 3, env)
        envoy = start_envoy(logs, envoy_port, replicas)
        with stopping_daemons() as daemons:
            yield Cluster(nats, replicas, envoy, env, echo, daemons)
    finally:
        if envoy is not None:
            envoy.stop()
        for replica in replicas:
            replica.stop()
        echo.stop()
        nats.stop()


def _client(replica: GatewayProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=replica.http_url + "/v1", api_key=key, max_retries=0, timeout=60)


def _streamed(replica: GatewayProcess, key: str, lattice_id: str, prompt: str) -> list[str]:
    stream = _client(replica, key).chat.completions.create(
        model=PERSONAL + lattice_id, messages=[{"role": "user", "content": prompt}], stream=True
    )
    return [chunk.choices[0].delta.content for chunk in stream if chunk.choices and chunk.choices[0].delta.content]


def _runtime(cluster: Cluster, tmp_path: pathlib.Path, account: str) -> tuple[str, Daemon]:
    """A runtime paired through replica 1, its daemon connected through Envoy to any replica."""
    first, home = cluster.replicas[0], tmp_path / "ctl"
    key, daemon = echo_runtime(first, cluster.env, cluster.echo, home, cluster.daemons, account)
    _wait_status(cluster, key, daemon.lattice_id, "reachable")
    return key, daemon


def _wait_status(cluster: Cluster, key: str, lattice_id: str, status: str) -> None:
    """Until every replica reports the runtime's status as `status`."""

    def everywhere() -> bool:
        live = [replica for replica in cluster.replicas if replica.process.poll() is None]
        return all(runtime_status(replica, key, lattice_id) == status for replica in live)

    wait_for(everywhere, f"{lattice_id} {status} on every replica")


def test_any_replica_and_envoy_stream_answers_metered_once(cluster: Cluster, tmp_path: pathlib.Path) -> None:
    key, daemon = _runtime(cluster, tmp_path, "acct_spread")
    started = cluster.echo.stats()["started"]
    for n, replica in enumerate(_others(cluster, daemon.lattice_id)):
        # `slow:` paces the words (0.2 s apart), so they cannot arrive merged into one chunk.
        pieces = _streamed(replica, key, daemon.lattice_id, f"slow: hello from replica {n}")
        assert len(pieces) > 1 and "".join(pieces) == f"slow: hello from replica {n}"
    # And through Envoy, over gRPC, to whichever replica it picks.
    with grpc.insecure_channel(cluster.envoy.grpc_target) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        chunks = list(stub.StreamChat(_request(daemon.lattice_id, "slow: via envoy"), metadata=(("x-api-key", key),)))
    assert "".join(chunk.delta.content for chunk in chunks) == "slow: via envoy"
    assert cluster.echo.stats()["started"] == started + 3  # each chat reached the provider once

    def usage(replica: GatewayProcess) -> dict[str, str]:
        total: dict[str, str] = rest(replica, "GET", "/v1/usage", key).json()["total"]
        return total

    wait_for(lambda: int(usage(cluster.replicas[0]).get("requests", 0)) == 3, "every chat metered")
    assert all(usage(replica) == usage(cluster.replicas[0]) for replica in cluster.replicas)
    assert int(usage(cluster.replicas[0])["totalTokens"]) == 2 * 10 + 2 * 3


def test_a_cancelled_chat_on_another_replica_stops_at_the_daemon(cluster: Cluster, tmp_path: pathlib.Path) -> None:
    key, daemon = _runtime(cluster, tmp_path, "acct_cancel")
    abandoned = cluster.echo.stats()["abandoned"]
    stream = _client(_others(cluster, daemon.lattice_id)[0], key).chat.completions.create(
        model=PERSONAL + daemon.lattice_id,
        messages=[{"role": "user", "content": "slow: " + "word " * 50}],
        stream=True,
    )
    next(iter(stream))
    stream.close()
    wait_for(lambda: cluster.echo.stats()["abandoned"] == abandoned + 1, "the provider's stream to be abandoned")


def test_broker_outage_fails_personal_chats_fast_and_heals(cluster: Cluster, tmp_path: pathlib.Path) -> None:
    key, daemon = _runtime(cluster, tmp_path, "acct_outage")
    replica = _others(cluster, daemon.lattice_id)[0]
    cluster.nats.stop()
    try:
        # The replica notices at once (the broker's socket closed); what it says is checked below.
        def refused() -> bool:
            started = time.monotonic()
            response = _chat(replica, key, PERSONAL + daemon.lattice_id)
            return response.status_code == 503 and time.monotonic() - started < 1.0

        wait_for(refused, "a fast 503 for the personal runtime")
        response = _chat(replica, key, PERSONAL + daemon.lattice_id)
        assert error_code(response) == "runtime_unreachable"
        assert "broker" in response.json()["error"]["message"]
        local = _chat(replica, key, "smollm2-135m-instruct", max_tokens=2)
        assert local.status_code == 200, local.text  # models of its own keep working
    finally:
        cluster.nats.start()
    wait_for(lambda: _chat(replica, key, PERSONAL + daemon.lattice_id).status_code == 200, "the relay to recover")


def test_revoking_on_one_replica_closes_the_stream_held_on_another(cluster: Cluster, tmp_path: pathlib.Path) -> None:
    key, daemon = _runtime(cluster, tmp_path, "acct_revoke")
    revoked = rest(_others(cluster, daemon.lattice_id)[-1], "DELETE", f"/v1/personal-runtimes/{daemon.lattice_id}", key)
    assert revoked.status_code == 200, revoked.text
    # The daemon (on replica 1) is told its runtime is revoked, and stops for good.
    wait_for(lambda: "RUNTIME_REVOKED" in daemon.log() or "revoked" in daemon.log(), "the daemon to hear it")
    wait_for(lambda: not (daemon.home / "daemon.pid").exists() or _exited(daemon), "the daemon to stop")
    for replica in cluster.replicas:
        assert runtime_status(replica, key, daemon.lattice_id) == "revoked"
        response = _chat(replica, key, PERSONAL + daemon.lattice_id)
        assert response.status_code == 403 and error_code(response) == "runtime_revoked"


def _holds(replica: GatewayProcess, lattice_id: str) -> bool:
    """Whether the replica holds the runtime's relay stream (by its log: no test-only API needed)."""
    log = replica.log()
    return log.count(f"personal runtime {lattice_id} connected") > log.count(
        f"personal runtime {lattice_id} disconnected"
    )


def _others(cluster: Cluster, lattice_id: str) -> list[GatewayProcess]:
    """The live replicas that do not hold the runtime's stream: chats there cross the broker."""
    live = [replica for replica in cluster.replicas if replica.process.poll() is None]
    others = [replica for replica in live if not _holds(replica, lattice_id)]
    assert len(others) == len(live) - 1, "exactly one replica holds the stream"
    return others


def _exited(daemon: Daemon) -> bool:
    try:
        pathlib.Path(f"/proc/{daemon.pid()}").stat()
    except (FileNotFoundError, ValueError):
        return True
    return False


def _chat(replica: GatewayProcess, key: str, model: str, max_tokens: int = 16) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": max_tokens, "temperature": 0}
    return rest(replica, "POST", "/v1/chat/completions", key, body)


def test_killing_the_replica_holding_the_stream(cluster: Cluster, tmp_path: pathlib.Path) -> None:
    """Last in this module: it leaves two replicas."""
    key, daemon = _runtime(cluster, tmp_path, "acct_kill")
    holder = next(replica for replica in cluster.replicas if _holds(replica, daemon.lattice_id))
    caller, other = _others(cluster, daemon.lattice_id)
    started = cluster.echo.stats()["started"]
    request = _request(daemon.lattice_id, "slow: " + "word " * 50)  # 10 s of words
    with grpc.insecure_channel(caller.grpc_target) as channel:
        stream = chat_pb2_grpc.ChatServiceStub(channel).StreamChat(request, metadata=(("x-api-key", key),), timeout=60)
        first = next(stream)
        assert first.delta.content or first.delta.role
        holder.process.kill()
        with pytest.raises(grpc.RpcError) as failed:
            for _ in stream:
                pass
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "not reachable" in (failed.value.details() or "")

    # The daemon dials Envoy again, which takes it to a live replica.
    wait_for(lambda: any(_holds(r, daemon.lattice_id) for r in (caller, other)), "the daemon to reconnect")
    wait_for(lambda: _chat(other, key, PERSONAL + daemon.lattice_id).status_code == 200, "a chat to succeed again")
    # The killed chat reached the provider once, the new one once: no work item was run twice.
    assert cluster.echo.stats()["started"] == started + 2


def _request(lattice_id: str, prompt: str) -> chat_pb2.ChatRequest:
    message = common_pb2.Message(role=common_pb2.ROLE_USER, content=[common_pb2.ContentPart(text=prompt)])
    return chat_pb2.ChatRequest(model=PERSONAL + lattice_id, messages=[message])
