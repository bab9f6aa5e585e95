"""Starts a real `lattice serve` process on free loopback ports, for end-to-end tests."""

from __future__ import annotations

import os
import pathlib
import resource
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = pathlib.Path(__file__).resolve().parent.parent
# Converted models are cached across runs here (the conversion is still tested on its own).
TEST_HOME = REPO / "build" / "test-home"
STARTUP_TIMEOUT_SECONDS = 180.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class GatewayProcess:
    process: subprocess.Popen[bytes]
    grpc_port: int
    http_port: int
    log_path: pathlib.Path

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


# Passed through to the gateways tests start: `LATTICE_SHIM_TRANSPORT=channel` runs the shim's tests over
# a loopback gRPC channel instead of the in-process one (the Makefile's `test` runs them both ways), and
# `LATTICE_SHIM_WORKERS=3` through worker processes.
PASSED_THROUGH = ("LATTICE_SHIM_TRANSPORT", "LATTICE_SHIM_WORKERS")


def lattice_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATTICE_") or k in PASSED_THROUGH}
    # One embedded shim whatever the machine's cores (the default scales with them), unless the run asks
    # for workers: tests/shim/test_shim_workers.py starts them itself.
    env.setdefault("LATTICE_SHIM_WORKERS", "1")
    env.update({"LATTICE_HOME": str(TEST_HOME), "HF_HUB_OFFLINE": "1", **overrides})
    return env


def start_gateway(log_dir: pathlib.Path, **env: str) -> GatewayProcess:
    """On free ports, unless `env` names them (to restart a gateway where its clients expect it)."""
    return start_gateway_limited(log_dir, None, **env)


def start_gateway_limited(log_dir: pathlib.Path, file_limit: int | None, **env: str) -> GatewayProcess:
    """`start_gateway`, with the process's open-file limit (soft and hard) set to `file_limit`."""
    grpc_port = int(env.pop("LATTICE_GRPC_PORT", "0")) or free_port()
    http_port = int(env.pop("LATTICE_HTTP_PORT", "0")) or free_port()
    log_path = log_dir / f"gateway-{grpc_port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "lattice", "serve"],
        env=lattice_env(LATTICE_GRPC_PORT=str(grpc_port), LATTICE_HTTP_PORT=str(http_port), **env),
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        preexec_fn=None if file_limit is None else lambda: _limit_files(file_limit),
    )
    gateway = GatewayProcess(process, grpc_port, http_port, log_path)
    try:
        _wait_until_serving(gateway)
    except BaseException:
        gateway.stop()
        raise
    return gateway


def _limit_files(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


def _wait_until_serving(gateway: GatewayProcess) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if gateway.process.poll() is not None:
                raise RuntimeError(f"lattice serve exited early:\n{gateway.log()}")
            try:
                reply = health.Check(health_pb2.HealthCheckRequest(), timeout=2)  # type: ignore[attr-defined]  # typeshed's HealthStub lists no methods
                if reply.status == health_pb2.HealthCheckResponse.SERVING and _http_up(gateway.http_port):
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise TimeoutError(f"lattice serve was not SERVING after {STARTUP_TIMEOUT_SECONDS}s:\n{gateway.log()}")


def _http_up(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
