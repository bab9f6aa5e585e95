"""`lattice serve --shim-workers 3`: three shim processes on one HTTP port, the metrics of all of them
in every `/metrics`, the embedded shim's answers from each (its OpenAPI document, answers larger than
gRPC's default message size), and a stop that lets the requests in flight finish."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import pathlib
import signal
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lattice.server.embeddings import MAX_INPUTS
from lattice.shim import create_app
from lattice.shim.workers import default_workers
from tests.gateway_process import GatewayProcess, start_gateway
from tests.operations.test_metrics import Samples, parse, value
from tests.shim.test_compat_embeddings import VECTOR_SIZE

WORKERS = 3
MODELS_ROUTE = {"route": "/v1/models", "method": "GET", "status": "200"}
LIST_MODELS = {"service": "lattice.v1.ResolveService", "method": "ListModels", "code": "OK"}


def test_the_default_is_one_shim_per_core_beyond_the_first_at_most_four() -> None:
    assert [default_workers(cores) for cores in (1, 2, 3, 5, 6, 64)] == [0, 1, 2, 4, 4, 4]


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = start_gateway(tmp_path_factory.mktemp("workers"), LATTICE_SHIM_WORKERS=str(WORKERS))
    yield process
    process.stop()


def children(pid: int) -> list[int]:
    return [int(p) for p in pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def worker_pids(gateway: GatewayProcess) -> list[int]:
    return [p for p in children(gateway.process.pid) if "lattice.shim.workers" in _cmdline(p)]


def _cmdline(pid: int) -> str:
    return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def metric_files(gateway: GatewayProcess) -> list[pathlib.Path]:
    """The workers' counter files: one per worker that has answered a request."""
    environ = pathlib.Path(f"/proc/{worker_pids(gateway)[0]}/environ").read_bytes().split(b"\0")
    directory = next(e.split(b"=", 1)[1].decode() for e in environ if e.startswith(b"PROMETHEUS_MULTIPROC_DIR="))
    return sorted(pathlib.Path(directory).glob("counter_*.db"))


async def scrape(gateway: GatewayProcess) -> Samples:
    async with httpx.AsyncClient(timeout=30) as client:  # a connection of its own: any worker may answer
        return parse((await client.get(f"{gateway.http_url}/metrics")).text)


@pytest.mark.slow
async def test_workers_serve_and_every_metrics_answer_counts_them_all(workers: GatewayProcess) -> None:
    assert len(worker_pids(workers)) == WORKERS
    before = await scrape(workers)
    requests = 60

    async def models() -> int:
        # A client per request: a connection each, which any worker may accept.
        async with httpx.AsyncClient(timeout=30) as client:
            return (await client.get(f"{workers.http_url}/v1/models")).status_code

    assert await asyncio.gather(*(models() for _ in range(requests))) == [200] * requests
    assert len(metric_files(workers)) >= 2  # more than one worker answered
    for _ in range(WORKERS):  # whichever worker answers /metrics says the same
        after = await scrape(workers)
        name = "lattice_http_requests_total"
        assert value(after, name, **MODELS_ROUTE) - value(before, name, **MODELS_ROUTE) == requests
        rpcs = "lattice_grpc_server_handled_total"
        assert value(after, rpcs, **LIST_MODELS) - value(before, rpcs, **LIST_MODELS) == requests


@pytest.mark.slow
async def test_every_worker_serves_the_document_the_app_builds(workers: GatewayProcess) -> None:
    async def served() -> Any:
        async with httpx.AsyncClient(timeout=30) as client:  # a connection each: any worker may answer
            return (await client.get(f"{workers.http_url}/openapi.json")).json()

    built = create_app("127.0.0.1:1").openapi()
    assert await asyncio.gather(*(served() for _ in range(4 * WORKERS))) == [built] * (4 * WORKERS)


@pytest.mark.slow
def test_the_largest_embeddings_answer_reaches_the_client(workers: GatewayProcess) -> None:
    # 2,048 of SmolLM2's vectors are 4.7 MB of floats. A worker reaches the server over a real channel, whose
    # default limit on a received message (4 MiB) refused them as a 429 `resource_exhausted`; the embedded
    # shim's in-process channel has none.
    body = {"model": "smollm2", "input": ["a"] * MAX_INPUTS, "encoding_format": "base64"}
    response = httpx.post(f"{workers.http_url}/v1/embeddings", json=body, timeout=300)
    assert response.status_code == 200, response.text[:500]
    data = response.json()["data"]
    assert [item["index"] for item in data] == list(range(MAX_INPUTS))
    assert {len(base64.b64decode(item["embedding"])) for item in data} == {4 * VECTOR_SIZE}


@pytest.mark.slow
def test_a_stop_lets_streams_in_flight_finish(tmp_path: pathlib.Path) -> None:
    gateway = start_gateway(tmp_path, LATTICE_SHIM_WORKERS=str(WORKERS))
    try:
        pids = worker_pids(gateway)
        body = {
            "messages": [{"role": "user", "content": "Count from one to twenty."}],
            "max_tokens": 40,
            "temperature": 0,
            "stream": True,
        }
        with httpx.stream("POST", f"{gateway.http_url}/v1/chat/completions", json=body, timeout=60) as answer:
            assert answer.status_code == 200
            lines = answer.iter_lines()
            first = next(line for line in lines if line.startswith("data: "))
            assert "choices" in json.loads(first.removeprefix("data: "))
            gateway.process.send_signal(signal.SIGTERM)  # mid-stream
            rest = [line for line in lines if line.startswith("data: ")]
        assert rest[-1] == "data: [DONE]"
        assert all("error" not in json.loads(line.removeprefix("data: ")) for line in rest[:-1])
        assert gateway.process.wait(timeout=60) == 0
        assert not [pid for pid in pids if pathlib.Path(f"/proc/{pid}").exists()]  # the workers are gone
    finally:
        gateway.stop()


@pytest.mark.slow
def test_a_worker_that_dies_stops_the_gateway_loudly(tmp_path: pathlib.Path) -> None:
    gateway = start_gateway(tmp_path, LATTICE_SHIM_WORKERS="2")
    try:
        os.kill(worker_pids(gateway)[0], signal.SIGKILL)
        assert gateway.process.wait(timeout=60) == 2  # not a port that answers half its connections
        assert "a shim worker exited" in gateway.log()
    finally:
        gateway.stop()
