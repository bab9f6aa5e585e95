"""Session fixtures: real gateway processes on loopback (plain fixtures: our servicers are
async, and a subprocess exercises exactly what `make serve` runs)."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest

from lattice.server.store import Store, open_store
from tests.envoy_process import EnvoyProcess, run_envoy
from tests.gateway_process import GatewayProcess, start_gateway
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
