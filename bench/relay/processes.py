"""The real processes: the providers, the long-poll gateway and daemon, a Lattice gateway and its daemon."""

from __future__ import annotations

import contextlib
import pathlib
import re
import sys
from dataclasses import dataclass

import httpx

from bench.common import REPO, Process, spawn
from bench.fast_upstream import MODEL_ID
from bench.peers import STARTUP_TIMEOUT, lattice_config, peer_env, start_bench_server, start_fast_upstream
from lattice.server.relay import PERSONAL_PREFIX
from tests.gateway_process import GatewayProcess, start_gateway
from tests.personal_runtime_fixtures import Daemon, create_key, pair, runtime_status, wait_for

ACCOUNT = "acct_bench"
# The gateway's limits, raised so that nothing but the relay decides how many chats run at once.
GATEWAY_ENV = {
    "LATTICE_MAX_CONCURRENT_TOTAL": "8192",
    "LATTICE_RELAY_MAX_IN_FLIGHT": "8192",
    "LATTICE_QUEUE_SIZE": "8192",
    "LATTICE_MAX_STREAMS_PER_KEY": "100000",
    "LATTICE_RATE_LIMIT_PER_MINUTE": "0",
    "LATTICE_RATE_LIMIT_BURST": "100000",
}

_RUNNING = re.compile(r'^lattice_running_requests\{model="([^"]+)"\} ([0-9.e+]+)$', re.MULTILINE)


def start_upstream(work: pathlib.Path, name: str, *options: str) -> tuple[Process, str]:
    """`bench.fast_upstream` (logging into its own directory `name`); returns it and its /v1 URL."""
    log_dir = work / name
    log_dir.mkdir()
    process, root = start_fast_upstream(str(log_dir), *options)
    return process, f"{root}/v1"


def start_longpoll_gateway(log_dir: pathlib.Path) -> tuple[Process, str]:
    return start_bench_server("longpoll-gateway", ["bench.longpoll_relay", "gateway"], log_dir, "/healthz")


def start_longpoll_daemon(log_dir: pathlib.Path, gateway_url: str, provider_url: str, name: str) -> Process:
    command = [
        *(sys.executable, "-m", "bench.longpoll_relay", "daemon"),
        *("--gateway", gateway_url, "--provider-url", provider_url),
    ]
    process = spawn(name, command, log_dir, {**peer_env(), "PYTHONPATH": str(REPO)})

    def polling() -> bool:
        if process.process.poll() is not None:
            raise RuntimeError(f"{name} exited:\n{process.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            health = httpx.get(f"{gateway_url}/healthz", timeout=2).json()
            return bool(health["paired"] and health["polls_waiting"])
        return False

    wait_for(polling, f"{name} to poll", STARTUP_TIMEOUT)
    return process


@dataclass
class Lattice:
    gateway: GatewayProcess
    env: dict[str, str]
    key: str
    daemon: Daemon

    @property
    def model(self) -> str:
        return PERSONAL_PREFIX + self.daemon.lattice_id

    def start_daemon(self, provider_url: str) -> None:
        self.daemon.start("--provider-url", provider_url, "--provider-model", MODEL_ID)
        wait_for(
            lambda: runtime_status(self.gateway, self.key, self.daemon.lattice_id) == "reachable",
            "the runtime to be reachable",
        )

    async def running(self, client: httpx.AsyncClient) -> float:
        """The gateway's own count of chats holding a slot on this runtime."""
        text = (await client.get(f"{self.gateway.http_url}/metrics")).text
        return sum(float(v) for model, v in _RUNNING.findall(text) if model == self.model)


def start_lattice(work: pathlib.Path, provider_url: str) -> Lattice:
    """A gateway with its own home and database, a key from `lattice keys create`, a runtime and a bootstrap
    token over REST, and a daemon paired with `lattice-ctl relay connect` and started with `daemon start`."""
    config = work / "lattice.toml"
    lattice_config(str(config), provider_url)  # the provider is also an ordinary upstream: lattice-proxy
    env = {
        "LATTICE_HOME": str(work / "lattice-home"),
        "LATTICE_DATABASE_URL": f"sqlite:///{work / 'lattice.db'}",
        "LATTICE_CONFIG": str(config),
        **GATEWAY_ENV,
    }
    gateway = start_gateway(work, **env)
    try:
        key = create_key(env, ACCOUNT)
        daemon = pair(gateway, key, work / "ctl", "bench runtime", "--provider-url", provider_url)
        lattice = Lattice(gateway, env, key, daemon)
        lattice.start_daemon(provider_url)
    except BaseException:
        gateway.stop()
        raise
    return lattice
