"""`make cluster`: PostgreSQL, NATS, three gateway replicas and Envoy in front of them, on loopback,
for trying cluster mode. Ctrl-C stops everything; logs are in build/cluster/.

    .venv/bin/python scripts/cluster.py [--replicas 3] [--envoy-port 8080]

Envoy (http://127.0.0.1:8080: REST, gRPC, grpc-web) spreads calls and daemons' relay streams over the
replicas; each replica's OpenAI-compatible shim is on its own port (8001, 8002, …). Pair a daemon
through any replica: its relay stream goes through Envoy to whichever replica it lands on.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = pathlib.Path(__file__).resolve().parent.parent
BIN = pathlib.Path(sys.executable).parent
LOGS = REPO / "build" / "cluster"
POSTGRES = REPO / "scripts" / "postgres.sh"
STARTUP_SECONDS = 180.0


def main() -> int:
    args = _parse()
    # Ctrl-C or a TERM, even while starting, unwinds through `finally`: nothing is left running.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    LOGS.mkdir(parents=True, exist_ok=True)
    # PostgreSQL runs as the postgres user when we are root: its directory must be one it can enter.
    pg_dir = tempfile.mkdtemp(prefix="lattice-cluster-pg-")
    os.chmod(pg_dir, 0o755)
    processes: list[tuple[str, subprocess.Popen[bytes]]] = []
    postgres_started = False
    try:
        subprocess.run(["bash", str(POSTGRES), "start", pg_dir, str(args.postgres_port)], check=True)
        postgres_started = True
        nats = _start("nats", [str(BIN / "nats-server"), "-a", "127.0.0.1", "-p", str(args.nats_port)])
        processes.append(("nats", nats))
        env = {
            "LATTICE_DATABASE_URL": f"postgresql://lattice@127.0.0.1:{args.postgres_port}/lattice",
            "LATTICE_BROKER_URL": f"nats://127.0.0.1:{args.nats_port}",
            "LATTICE_RELAY_ENDPOINT": f"127.0.0.1:{args.envoy_port}",
            "HF_HUB_OFFLINE": "1",
        }
        grpc_ports = [args.grpc_port + i for i in range(args.replicas)]
        for i, port in enumerate(grpc_ports):
            replica_env = {**env, "LATTICE_GRPC_PORT": str(port), "LATTICE_HTTP_PORT": str(args.http_port + i)}
            replica = _start(f"replica-{i + 1}", [str(BIN / "lattice"), "serve"], replica_env)
            processes.append((f"replica-{i + 1}", replica))
            if i == 0:  # the first upgrades the database's schema; the others start once it has
                _wait(_serving(port), f"replica 1 (gRPC {port})", replica)
        for i, port in enumerate(grpc_ports):
            _wait(_serving(port), f"replica {i + 1} (gRPC {port})", processes[1 + i][1])
        upstreams = [arg for port in grpc_ports for arg in ("--upstream", f"127.0.0.1:{port}")]
        envoy_command = [sys.executable, str(REPO / "envoy" / "run.py"), "--port", str(args.envoy_port), *upstreams]
        processes.append(("envoy", _start("envoy", envoy_command)))
        print(f"cluster up: Envoy http://127.0.0.1:{args.envoy_port} (REST, gRPC, grpc-web)", flush=True)
        for i, port in enumerate(grpc_ports):
            print(f"  replica {i + 1}: gRPC 127.0.0.1:{port}, REST http://127.0.0.1:{args.http_port + i}", flush=True)
        print(f"  NATS {env['LATTICE_BROKER_URL']}, {env['LATTICE_DATABASE_URL']}", flush=True)
        print(f"  logs in {LOGS}; Ctrl-C stops everything", flush=True)
        while all(process.poll() is None for _, process in processes):
            time.sleep(1)
        gone = next(name for name, process in processes if process.poll() is not None)
        print(f"{gone} exited (see {LOGS / (gone + '.log')}): stopping the cluster", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for _, process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
        if postgres_started:
            subprocess.run(["bash", str(POSTGRES), "stop", pg_dir], check=False)
        shutil.rmtree(pg_dir, ignore_errors=True)


def _start(name: str, command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    log = (LOGS / f"{name}.log").open("wb")
    return subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)


def _serving(port: int) -> Callable[[], bool]:
    """Whether the replica on `port` reports SERVING (its models are loaded)."""

    def check() -> bool:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)  # type: ignore[attr-defined]  # typeshed's HealthStub lists no methods
            except grpc.RpcError:
                return False
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    return check


def _wait(condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while not condition():
        if process.poll() is not None:
            raise SystemExit(f"{what} exited while starting: see {LOGS}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start within {STARTUP_SECONDS:.0f} s: see {LOGS}")
        time.sleep(0.5)


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=3, help="gateway replicas (default 3)")
    parser.add_argument("--envoy-port", type=int, default=8080, help="Envoy's listener (default 8080)")
    parser.add_argument("--grpc-port", type=int, default=50051, help="replica 1's gRPC port; the next ones follow")
    parser.add_argument("--http-port", type=int, default=8001, help="replica 1's REST shim port; the next ones follow")
    parser.add_argument("--nats-port", type=int, default=4222, help="NATS (default 4222)")
    parser.add_argument("--postgres-port", type=int, default=5433, help="PostgreSQL (default 5433)")
    args = parser.parse_args()
    if args.replicas < 1:
        parser.error("--replicas must be at least 1")
    return args


if __name__ == "__main__":
    sys.exit(main())
