"""The relay, as operators see it: the request id reaches the daemon's log, and the relay's metrics
(streams connected, work in flight per runtime, heartbeats missed) follow a daemon that connects,
works, freezes and comes back. Real processes: a gateway, `lattice-ctl` daemons, the echo provider."""

from __future__ import annotations

import json
import os
import pathlib
import signal
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway_process import GatewayProcess, start_gateway
from tests.personal_runtime_fixtures import Daemon, EchoProvider, echo_runtime, gateway_env, runtime_status, wait_for

pytestmark = pytest.mark.slow

PROMPT = "please echo the marmalade sentence"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return gateway_env(tmp_path_factory.mktemp("relay-observed-db"))


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Iterator[GatewayProcess]:
    process = start_gateway(tmp_path_factory.mktemp("relay-observed"), **env)
    yield process
    process.stop()


@pytest.fixture
def runtime(
    gateway: GatewayProcess, env: dict[str, str], echo: EchoProvider, tmp_path: pathlib.Path, daemons: list[Daemon]
) -> tuple[str, Daemon]:
    """A new account's key and its running daemon, whose provider is the echo server."""
    account = f"acct_{tmp_path.name[-12:].replace('-', '_')}"
    key, daemon = echo_runtime(gateway, env, echo, tmp_path / "ctl", daemons, account, name="observed")
    wait_for(lambda: runtime_status(gateway, key, daemon.lattice_id) == "reachable", "the daemon to connect")
    return key, daemon


def metric(gateway: GatewayProcess, name: str, **labels: str) -> float | None:
    """The sample's value from the gateway's /metrics; None when there is no such series."""
    text = httpx.get(f"{gateway.http_url}/metrics", timeout=30).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


def log_lines(daemon: Daemon) -> list[dict[str, Any]]:
    """daemon.log is JSON lines (its stderr is a file, not a terminal)."""
    return [json.loads(line) for line in daemon.log().splitlines() if line.startswith("{")]


def test_the_request_id_flows_to_the_daemons_log(gateway: GatewayProcess, runtime: tuple[str, Daemon]) -> None:
    key, daemon = runtime
    client = openai.OpenAI(base_url=gateway.http_url + "/v1", api_key=key, max_retries=0, timeout=60)
    answer = client.chat.completions.with_raw_response.create(
        model=f"lattice:personal:{daemon.lattice_id}",
        messages=[{"role": "user", "content": PROMPT}],
        extra_headers={"x-request-id": "abc-relay-0001"},
    )
    assert answer.headers["x-request-id"] == "abc-relay-0001"
    assert answer.parse().choices[0].message.content == PROMPT

    def work_line() -> dict[str, Any] | None:
        return next((line for line in log_lines(daemon) if line.get("event") == "work"), None)

    wait_for(lambda: work_line() is not None, "the daemon's line about the work")
    line = work_line()
    assert line is not None
    assert (line["request_id"], line["outcome"]) == ("abc-relay-0001", "ok")
    assert line["work_id"] and line["duration_ms"] >= 0
    assert "marmalade" not in daemon.log()  # the prompt and the answer never reach its log
    # The same id finds the gateway's lines (its rpc and http lines follow the answer, so wait for them).
    wait_for(lambda: "abc-relay-0001" in gateway.log(), "the gateway's lines of abc-relay-0001")


def test_relay_metrics_follow_streams_work_and_missed_heartbeats(
    gateway: GatewayProcess, runtime: tuple[str, Daemon]
) -> None:
    key, daemon = runtime
    runtime_id = daemon.lattice_id
    connected = metric(gateway, "lattice_relay_streams_connected")
    assert connected is not None and connected >= 1
    assert metric(gateway, "lattice_relay_work_in_flight", runtime=runtime_id) == 0

    client = openai.OpenAI(base_url=gateway.http_url + "/v1", api_key=key, max_retries=0, timeout=60)
    stream = client.chat.completions.create(  # the echo provider takes ~40 s over a "slow:" prompt
        model=f"lattice:personal:{runtime_id}",
        messages=[{"role": "user", "content": "slow: " + " ".join(f"word{i}" for i in range(200))}],
        stream=True,
    )
    chunks = iter(stream)
    next(chunks)
    assert metric(gateway, "lattice_relay_work_in_flight", runtime=runtime_id) == 1
    stream.close()
    wait_for(lambda: metric(gateway, "lattice_relay_work_in_flight", runtime=runtime_id) == 0, "the work to end")

    os.kill(daemon.pid(), signal.SIGSTOP)  # a frozen daemon: only the heartbeats can tell
    try:
        wait_for(lambda: runtime_status(gateway, key, runtime_id) == "offline", "the silent runtime to go offline")
        assert metric(gateway, "lattice_relay_heartbeats_missed_total", runtime=runtime_id) == 1
        assert metric(gateway, "lattice_relay_streams_connected") == connected - 1
        assert metric(gateway, "lattice_relay_work_in_flight", runtime=runtime_id) is None  # its series is gone
    finally:
        os.kill(daemon.pid(), signal.SIGCONT)
    wait_for(lambda: runtime_status(gateway, key, runtime_id) == "reachable", "the thawed daemon to reconnect")
    assert metric(gateway, "lattice_relay_streams_connected") == connected
