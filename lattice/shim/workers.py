"""Shim worker processes: `lattice serve --shim-workers N` (N ≥ 2) answers REST on every core.

The gateway binds the HTTP port once and each worker inherits the listening socket (the kernel hands
each new connection to one worker that is waiting in accept). A worker is the shim and nothing
else: a gRPC client of the gateway's server over a real channel, with the server's proxy secret (read
from its stdin, never from its environment or arguments) so the server trusts the client addresses it
reports. It logs to the gateway's stdout/stderr, in the gateway's format.

Metrics: a worker records its HTTP metrics in prometheus_client's multiprocess files (the directory
is in its environment from its first import); the gateway's registry reads them all and drops its own
empty HTTP series, and a worker's `GET /metrics` is the gateway's, fetched from its metrics server:
the same numbers whichever worker answers. SIGTERM stops a worker the way uvicorn stops: no new
connections, the requests in flight answered (up to the grace period), then exit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

from lattice.config import Settings
from lattice.observability import tracing
from lattice.observability.gc_pauses import freeze_startup_heap
from lattice.observability.logs import configure_logging
from lattice.shim.connections import connection_cap, guarded_protocol, raise_file_limit

log = logging.getLogger("lattice")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SHUTDOWN_GRACE_SECONDS = 5.0
"""How long requests in flight may take to finish when the gateway stops (the gRPC server's grace too)."""
MAX_DEFAULT_WORKERS = 4


def default_workers(cores: int | None = None) -> int:
    """One per core beyond the first (which the gateway's server and engines use), at most four."""
    return max(0, min(MAX_DEFAULT_WORKERS, (cores or os.cpu_count() or 1) - 1))


def uvicorn_config(app: FastAPI, settings: Settings, file_limit: int) -> uvicorn.Config:
    """How every shim serves HTTP, embedded or in a worker."""
    cap = connection_cap(settings.http_max_connections, file_limit)
    log.info("REST: at most %d connections (open-file limit %d)", cap, file_limit)
    # Keep idle connections longer than clients do (the OpenAI SDK pools them): a server that closes
    # first races the client reusing the connection, which then fails with a read error.
    # uvicorn logs through the root logger (JSON or not, with request ids); the shim logs each request itself.
    return uvicorn.Config(
        app,
        log_level=settings.log_level,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_keep_alive=75,
        timeout_graceful_shutdown=int(SHUTDOWN_GRACE_SECONDS),
        http=guarded_protocol(header_timeout=settings.http_header_timeout_seconds, max_connections=cap),
    )


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker learns from the gateway at start (on its stdin)."""

    grpc_target: str
    proxy_secret: str
    metrics_url: str | None


class ShimWorkers:
    """The gateway's worker processes: started on its HTTP socket, stopped gracefully."""

    def __init__(self, processes: list[asyncio.subprocess.Process], metrics_dir: str) -> None:
        self._processes = processes
        self._metrics_dir = metrics_dir

    @staticmethod
    def metrics_dir() -> str:
        """A fresh directory for the workers' metric files (made before any worker starts)."""
        return tempfile.mkdtemp(prefix="lattice-shim-metrics-")

    @classmethod
    async def start(cls, count: int, http_socket: socket.socket, spec: WorkerSpec, metrics_dir: str) -> ShimWorkers:
        env = {**os.environ, MULTIPROC_ENV: metrics_dir}
        payload = json.dumps({**spec.__dict__, "fd": http_socket.fileno()}).encode() + b"\n"
        processes = []
        for _ in range(count):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "lattice.shim.workers",
                stdin=asyncio.subprocess.PIPE,
                env=env,
                pass_fds=(http_socket.fileno(),),
            )
            assert process.stdin is not None
            process.stdin.write(payload)
            await process.stdin.drain()
            process.stdin.close()
            processes.append(process)
        log.info("REST: %d shim workers (pids %s)", count, ", ".join(str(p.pid) for p in processes))
        return cls(processes, metrics_dir)

    async def exited(self) -> None:
        """Returns when a worker exits (which, while the gateway runs, is a failure)."""
        waits = [asyncio.ensure_future(p.wait()) for p in self._processes]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        died = [p for p in self._processes if p.returncode is not None]
        log.error("a shim worker exited (pid %d, code %s): stopping the gateway", died[0].pid, died[0].returncode)

    async def stop(self) -> None:
        """SIGTERM to each: they finish their requests in flight; past the grace period they are killed."""
        for process in self._processes:
            if process.returncode is None:
                process.terminate()
        waits = [p.wait() for p in self._processes]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), SHUTDOWN_GRACE_SECONDS + 5)
        except TimeoutError:
            for process in self._processes:
                if process.returncode is None:
                    log.warning("shim worker %d did not stop in time: killed", process.pid)
                    process.kill()
            await asyncio.gather(*(p.wait() for p in self._processes))
        shutil.rmtree(self._metrics_dir, ignore_errors=True)


def _run_worker() -> int:
    spec = json.loads(sys.stdin.readline())
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per /metrics fetched from the gateway: noise
    tracing.configure(settings.otel_exporter, endpoint=settings.otel_endpoint)
    from lattice.shim.app import create_app  # after the tracing configuration: it installs its middleware

    app = create_app(
        spec["grpc_target"],
        max_body_bytes=settings.max_request_bytes,
        body_timeout_seconds=settings.request_body_timeout_seconds,
        cors_origins=settings.cors_origins,
        metrics=settings.shim_metrics,
        proxy_secret=spec["proxy_secret"],
        metrics_url=spec["metrics_url"],
    )
    if settings.gc_freeze:  # as the gateway does: full collections walk only what requests make
        freeze_startup_heap()
    sock = socket.socket(fileno=spec["fd"])
    server = uvicorn.Server(uvicorn_config(app, settings, raise_file_limit()))
    try:
        server.run(sockets=[sock])
    finally:
        tracing.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(_run_worker())
