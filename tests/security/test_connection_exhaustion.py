"""Connection exhaustion (issue #22, items 1 and 2): thousands of connections to the REST port that
never finish their headers must not take either port down, nor flood the log.

The gateway runs with the hard open-file limit mlx_lm leaves it (4,096; the soft one is 2,048), and the
attacker holds 2,500 half-open connections: without the guards the process runs out of descriptors,
and `/healthz` and gRPC health stop answering while `accept()` fails in a loop, logging each time."""

from __future__ import annotations

import pathlib
import resource
import socket
import time
from collections.abc import Iterator

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.gateway_process import GatewayProcess, start_gateway_limited

GATEWAY_FILE_LIMIT = 4096  # mlx_lm sets (2048, 4096) when imported: the soft limit the probe met
ATTACKERS = 2500
HOLD_SECONDS = 30.0  # as the probe: 2,500 half-open connections held for 30 s
PROBE_TIMEOUT_SECONDS = 5.0  # generous on a loaded CI box; without the guards the probes never answer
HEADER_TIMEOUT_SECONDS = 2.0
HALF_A_REQUEST = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n"


@pytest.fixture
def guarded(tmp_path: pathlib.Path) -> Iterator[GatewayProcess]:
    process = start_gateway_limited(
        tmp_path, GATEWAY_FILE_LIMIT, LATTICE_HTTP_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT_SECONDS)
    )
    yield process
    process.stop()


@pytest.fixture
def file_room() -> Iterator[None]:
    """This process needs a descriptor per attacking connection: its soft limit is raised for the test."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = ATTACKERS + 512
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"the hard open-file limit ({hard}) is below the {needed} this test needs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def half_open(port: int, count: int) -> list[socket.socket]:
    opened = []
    for _ in range(count):
        sock = socket.socket()
        sock.settimeout(5)
        try:
            sock.connect(("127.0.0.1", port))
            sock.sendall(HALF_A_REQUEST)
        except OSError:  # the backlog is full, or the gateway already closed it: the attack goes on
            sock.close()
            continue
        opened.append(sock)
    return opened


def still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def shed_closed(sockets: list[socket.socket]) -> list[socket.socket]:
    """The sockets the server has not closed; the others are closed here too (their files freed)."""
    kept = []
    for sock in sockets:
        if still_open(sock):
            kept.append(sock)
        else:
            sock.close()
    return kept


def probe(gateway: GatewayProcess, health: health_pb2_grpc.HealthStub) -> None:
    answer = httpx.get(gateway.http_url + "/healthz", timeout=PROBE_TIMEOUT_SECONDS)
    assert answer.status_code == 200, answer.text
    reply = health.Check(health_pb2.HealthCheckRequest(), timeout=PROBE_TIMEOUT_SECONDS)  # type: ignore[attr-defined]  # typeshed's HealthStub lists no methods
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_half_open_connections_leave_both_ports_answering(guarded: GatewayProcess, file_room: None) -> None:
    attackers = half_open(guarded.http_port, ATTACKERS)
    try:
        with grpc.insecure_channel(guarded.grpc_target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            deadline = time.monotonic() + HOLD_SECONDS
            probes = 0
            while time.monotonic() < deadline:
                probe(guarded, health)  # a fresh REST connection each time
                probes += 1
                # The attacker keeps coming: what the server closed is opened again.
                attackers = shed_closed(attackers)
                attackers += half_open(guarded.http_port, ATTACKERS - len(attackers))
                time.sleep(0.5)
        assert probes >= 5
        # The server closes what never finished its headers (after the header timeout, or to make room).
        limit = time.monotonic() + 30
        while (attackers := shed_closed(attackers)) and time.monotonic() < limit:
            time.sleep(0.5)
        assert not attackers, f"{len(attackers)} half-open connections still open"
    finally:
        for sock in attackers:
            sock.close()
    probe(guarded, health_pb2_grpc.HealthStub(grpc.insecure_channel(guarded.grpc_target)))
    log = guarded.log_path.stat().st_size
    assert log < 1_000_000, f"the attack wrote {log} bytes of log"
    assert "Too many open files" not in guarded.log()
