"""Envoy as `make envoy` runs it (envoy/run.py), started in front of a gateway process for the tests."""

from __future__ import annotations

import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from tests.gateway_process import REPO, GatewayProcess, free_port, lattice_env
from tests.self_signed import SelfSigned

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
