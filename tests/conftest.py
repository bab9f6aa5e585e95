"""Session fixtures: real gateway processes on loopback (plain fixtures: our servicers are
async, and a subprocess exercises exactly what `make serve` runs)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import grpc
import pytest

from tests.gateway_process import GatewayProcess, start_gateway

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
