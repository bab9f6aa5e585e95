"""Session fixtures: real gateway processes on loopback (plain fixtures: our servicers are
async, and a subprocess exercises exactly what `make serve` runs)."""

from __future__ import annotations

import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import grpc
import httpx
import pytest

from lattice.server.store import Store, open_store
from tests.gateway_process import REPO, GatewayProcess, free_port, lattice_env, start_gateway
from tests.personal_runtime_fixtures import Daemon, EchoProvider, start_echo_provider, stopping_daemons
from tests.postgres_server import fresh_database, postgres_server
from tests.self_signed import SelfSigned, self_signed

# One printed hypothesis seed per run, fixed under CI=true.
pytest_plugins = ["tests.hypothesis_seed"]

API_KEY = "test-key-0123456789"


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The gateway on its defaults (no API key)."""
    process = start_gateway(tmp_path_factory.mktemp("gateway"))
    yield process
    process.stop()


@pytest.fixture(scope="session")
def keyed_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway with LATTICE_API_KEY set."""
    process = start_gateway(tmp_path_factory.mktemp("keyed"), LATTICE_API_KEY=API_KEY)
    yield process
    process.stop()


@pytest.fixture
async def channel(gateway: GatewayProcess) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(gateway.grpc_target) as ch:
        yield ch


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoProvider]:
    """The echo provider (tests/echo_upstream.py) a module's daemons run their work on."""
    provider = start_echo_provider()
    yield provider
    provider.stop()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Daemons a test started; stopped whatever happens."""
    with stopping_daemons() as started:
        yield started


# The browser origin the test Envoy allows (every other origin is refused).
ENVOY_CORS_ORIGIN = "http://localhost:5173"


@dataclass(frozen=True)
class EnvoyProcess:
    """Envoy as `make envoy` runs it (envoy/run.py), in front of one gateway's gRPC port."""

    process: subprocess.Popen[bytes]
    port: int
    admin_port: int
    log_path: pathlib.Path
    tls: SelfSigned | None = None  # the listener's certificate, when it serves TLS

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def run_envoy(upstream: GatewayProcess, log_dir: pathlib.Path, tls: SelfSigned | None = None) -> Iterator[EnvoyProcess]:
    port, admin_port = free_port(), free_port()
    log_path = log_dir / f"envoy-{port}.log"
    command = [sys.executable, str(REPO / "envoy" / "run.py"), "--port", str(port), "--admin-port", str(admin_port)]
    command += ["--grpc-port", str(upstream.grpc_port), "--cors-origin", ENVOY_CORS_ORIGIN, "--log-level", "info"]
    if tls is not None:
        command += ["--tls-cert", str(tls.certificate), "--tls-key", str(tls.private_key)]
    process = subprocess.Popen(command, env=lattice_env(), stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
    envoy = EnvoyProcess(process, port, admin_port, log_path, tls)
    try:
        _wait_until_routing(envoy)
        yield envoy
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_routing(envoy: EnvoyProcess) -> None:
    # Ready means a REST call reaches the gateway through the transcoder.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if envoy.process.poll() is not None:
            raise RuntimeError(f"envoy exited early:\n{envoy.log()}")
        try:
            verify = envoy.tls.client_context() if envoy.tls else True
            if httpx.get(f"{envoy.url}/v1/models", timeout=2, verify=verify).status_code in (200, 401):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"envoy did not route to the gateway within 60 s:\n{envoy.log()}")


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> SelfSigned:
    """A self-signed certificate for 127.0.0.1 and localhost, made for this test run."""
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_envoy(
    gateway: GatewayProcess, certificate: SelfSigned, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EnvoyProcess]:
    """Envoy serving TLS with `certificate`, in front of the `gateway` fixture (or a module's own)."""
    yield from run_envoy(gateway, tmp_path_factory.mktemp("tls-envoy"), certificate)


@pytest.fixture(scope="session")
def envoy(gateway: GatewayProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvoyProcess]:
    """Envoy in front of the `gateway` fixture: REST/JSON, grpc-web and gRPC on one port."""
    yield from run_envoy(gateway, tmp_path_factory.mktemp("envoy"))


@pytest.fixture(scope="session")
def keyed_envoy(keyed_gateway: GatewayProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvoyProcess]:
    """Envoy in front of the gateway that requires API_KEY."""
    yield from run_envoy(keyed_gateway, tmp_path_factory.mktemp("keyed-envoy"))


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server (scripts/postgres.sh) for a module's tests."""
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> AsyncIterator[Store]:
    """An empty store, once on SQLite and once on PostgreSQL: the same queries must hold on both."""
    url = None if request.param == "sqlite" else await fresh_database(request.getfixturevalue("postgres"))
    opened = await open_store(url, tmp_path)
    yield opened
    await opened.close()
