"""A daemon's credential after re-pairing and revocation (issue #22, items 4 and 7; issue #17, item 8),
with real processes: a gateway, `lattice-ctl` daemons whose provider is the echo server, plain HTTP
as the app."""

from __future__ import annotations

import base64
import pathlib
import threading
from collections.abc import Iterator

import httpx
import openai
import pytest
from nacl.public import PrivateKey

from tests.gateway_process import GatewayProcess, start_gateway
from tests.personal_runtime_fixtures import (
    Daemon,
    EchoProvider,
    echo_runtime,
    error_code,
    gateway_env,
    rest,
    runtime_status,
    wait_for,
)

pytestmark = pytest.mark.slow

PROMPTLY = 15.0  # seconds: generous on a loaded box; the slow chat below would take the echo provider 40 s


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return gateway_env(tmp_path_factory.mktemp("relay-credentials-db"))


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Iterator[GatewayProcess]:
    process = start_gateway(tmp_path_factory.mktemp("relay-credentials"), **env)
    yield process
    process.stop()


def slow_chat_in_background(gateway: GatewayProcess, key: str, daemon: Daemon) -> tuple[threading.Thread, list[str]]:
    """A streamed chat the echo provider answers one word per 0.2 s (40 s in all); what became of it
    lands in the returned list."""
    outcome: list[str] = []
    started = threading.Event()

    def run() -> None:
        client = openai.OpenAI(base_url=gateway.http_url + "/v1", api_key=key, max_retries=0, timeout=60)
        try:
            stream = client.chat.completions.create(
                model=f"lattice:personal:{daemon.lattice_id}",
                messages=[{"role": "user", "content": "slow: " + " ".join(f"w{i}" for i in range(200))}],
                stream=True,
            )
            for _ in stream:
                started.set()
            outcome.append("finished")
        except openai.APIError as error:
            outcome.append(f"failed: {error}")
        finally:
            started.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(30), "the slow chat never started"
    return thread, outcome


def daemon_exited(daemon: Daemon) -> bool:
    return daemon.ctl("daemon", "status", check=False).returncode == 1


def test_re_pairing_drops_the_old_daemon_at_once(
    gateway: GatewayProcess, env: dict[str, str], echo: EchoProvider, tmp_path: pathlib.Path, daemons: list[Daemon]
) -> None:
    key, old = echo_runtime(gateway, env, echo, tmp_path / "old", daemons, "acct_repaired")
    wait_for(lambda: runtime_status(gateway, key, old.lattice_id) == "reachable", "the daemon to connect")
    thread, outcome = slow_chat_in_background(gateway, key, old)
    # The owner pairs again (say, their credential leaked): a new token, redeemed with a fresh key.
    minted = rest(gateway, "POST", f"/v1/personal-runtimes/{old.lattice_id}/bootstrap-tokens", key, {})
    fresh_key = base64.b64encode(bytes(PrivateKey.generate().public_key)).decode()
    redeemed = httpx.post(
        gateway.http_url + "/v1/personal-runtime-bootstrap-redemptions",
        json={"bootstrapToken": minted.json()["bootstrapToken"], "publicKey": fresh_key},
        timeout=30,
    )
    assert redeemed.status_code == 200, redeemed.text
    thread.join(PROMPTLY)
    assert outcome and outcome[0].startswith("failed"), outcome  # the old daemon's work stopped with its stream
    assert runtime_status(gateway, key, old.lattice_id) == "offline"  # nobody holds the new credential yet
    after = rest(
        gateway,
        "POST",
        "/v1/chat/completions",
        key,
        {"model": f"lattice:personal:{old.lattice_id}", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert (after.status_code, error_code(after)) == (503, "runtime_unreachable")  # the old daemon answers no more
    wait_for(lambda: daemon_exited(old), "the old daemon to give up", PROMPTLY)
    assert "paired again" in old.log()
    assert not (old.home / "relay.toml").exists()  # a dead credential is not kept


def test_revocation_stops_the_daemons_work_and_it_exits_saying_why(
    gateway: GatewayProcess, env: dict[str, str], echo: EchoProvider, tmp_path: pathlib.Path, daemons: list[Daemon]
) -> None:
    key, daemon = echo_runtime(gateway, env, echo, tmp_path / "ctl", daemons, "acct_revoked")
    wait_for(lambda: runtime_status(gateway, key, daemon.lattice_id) == "reachable", "the daemon to connect")
    abandoned = echo.stats()["abandoned"]
    thread, outcome = slow_chat_in_background(gateway, key, daemon)
    revoked = rest(gateway, "DELETE", f"/v1/personal-runtimes/{daemon.lattice_id}", key)
    assert revoked.status_code == 200
    thread.join(PROMPTLY)
    assert outcome and outcome[0].startswith("failed"), outcome
    # The daemon stopped its work (the provider saw its stream abandoned), and exited.
    wait_for(lambda: echo.stats()["abandoned"] > abandoned, "the daemon to stop its work", PROMPTLY)
    wait_for(lambda: daemon_exited(daemon), "the daemon to exit", PROMPTLY)
    log = daemon.log()
    assert "revoked" in log and "removed" in log, log
    assert not (daemon.home / "relay.toml").exists()  # issue #17: the credential does not outlive the runtime
    for mess in ("Task was destroyed", "cannot reuse already awaited coroutine", "terminate called", "Traceback"):
        assert mess not in log, log
