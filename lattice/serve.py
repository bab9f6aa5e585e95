"""`lattice serve`: the gRPC server and the REST shim in one process, until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import socket
from collections.abc import Iterator

import uvicorn

from lattice.config import Settings, check_safe_to_bind, local_address
from lattice.observability import gc_pauses, metrics, tracing
from lattice.observability.metrics import MetricsServer
from lattice.server.app import (
    build_components,
    create_server,
    set_serving,
)
from lattice.server.backends.mlx.worker import MlxWorker
from lattice.server.services.in_process_channel import InProcessChannel, InProcessServer
from lattice.server.store import open_store
from lattice.shim import create_app
from lattice.shim.connections import raise_file_limit
from lattice.shim.workers import SHUTDOWN_GRACE_SECONDS, ShimWorkers, WorkerSpec, default_workers, uvicorn_config

log = logging.getLogger("lattice")


class StartupError(Exception):
    """The gateway cannot start (a port is taken, the default model is not installed), or a shim worker
    it started has died."""


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: `serve` stops both servers on one signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(settings: Settings, *, with_shim: bool = True) -> None:
    check_safe_to_bind(settings)
    file_limit = raise_file_limit()  # thousands of connections must not exhaust the default 1,024
    # Before the servers are built: their interceptors and middleware are installed only when it is on.
    try:
        tracing.configure(settings.otel_exporter, endpoint=settings.otel_endpoint)
    except tracing.TracingUnavailable as error:
        raise StartupError(str(error)) from error
    # Bind both ports before anything slow, so a taken port is a clear error at once.
    http_socket = _bind_http(settings) if with_shim else None
    # Two shims or more run as worker processes (every core answers REST); one is embedded, in-process.
    worker_count = (
        (settings.shim_workers if settings.shim_workers is not None else default_workers()) if with_shim else 0
    )
    metrics_dir = ShimWorkers.metrics_dir() if worker_count >= 2 else None
    if metrics_dir is not None:
        metrics.gather_shim_workers(metrics_dir)
    metrics_server = _start_metrics(settings, internal=metrics_dir is not None)
    gc_pauses.time_full_collections()
    store = await open_store(settings.database_url, settings.home)
    worker = MlxWorker()
    components = build_components(settings, store, worker)
    gateway, personal, usage = components.gateway, components.personal, components.usage
    try:
        await personal.hub.start()  # a cluster's hub joins its broker
    except ConnectionError as error:
        raise StartupError(str(error)) from error
    usage.start()
    # Lets the server trust the client addresses our own shim reports, and no one else's.
    proxy_secret = secrets.token_urlsafe(32)
    # The embedded shim reaches the servicers without sockets, through the same interceptors.
    in_process = InProcessServer() if settings.shim_transport == "in_process" and metrics_dir is None else None
    try:
        server, port, health_servicer = create_server(
            settings, components, proxy_secret=proxy_secret, in_process=in_process
        )
    except RuntimeError as error:
        raise StartupError(f"cannot listen for gRPC on {settings.grpc_host}:{settings.grpc_port}: {error}") from error
    bound = settings.model_copy(update={"grpc_port": port})
    personal.relay_endpoint = settings.relay_endpoint or bound.grpc_target
    personal.gateway_url = settings.public_url or (_http_url(http_socket).removesuffix("/v1") if http_socket else "")
    await set_serving(health_servicer, False)  # the servicer starts out SERVING
    await server.start()
    log.info("gRPC listening on %s:%d (health NOT_SERVING until the models are loaded)", settings.grpc_host, port)

    shim: _EmbeddedUvicorn | None = None
    workers: ShimWorkers | None = None
    tasks: list[asyncio.Task[None]] = []
    if http_socket is not None and metrics_dir is not None:
        assert metrics_server is not None  # the workers' /metrics is the gateway's
        metrics_host = settings.metrics_host if settings.metrics_port is not None else "127.0.0.1"
        metrics_url = f"http://{local_address(metrics_host, metrics_server.port)}/metrics"
        spec = WorkerSpec(bound.grpc_target, proxy_secret, metrics_url)
        workers = await ShimWorkers.start(worker_count, http_socket, spec, metrics_dir)
        tasks.append(asyncio.create_task(workers.exited(), name="workers"))
    elif http_socket is not None:
        app = create_app(
            bound.grpc_target,
            max_body_bytes=settings.max_request_bytes,
            body_timeout_seconds=settings.request_body_timeout_seconds,
            cors_origins=settings.cors_origins,
            metrics=settings.shim_metrics,
            proxy_secret=proxy_secret,
            channel=None if in_process is None else InProcessChannel(in_process),
        )
        shim = _EmbeddedUvicorn(uvicorn_config(app, settings, file_limit))
        tasks.append(asyncio.create_task(shim.serve(sockets=[http_socket])))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks.append(asyncio.create_task(stop.wait(), name="signal"))  # type: ignore[arg-type]

    try:
        log.info("preparing models: %s", ", ".join(m.id for m in settings.models))
        try:
            await gateway.start()
        except FileNotFoundError as error:
            raise StartupError(str(error)) from error
        if settings.gc_freeze:  # everything startup made is here now: out of the full collections' way
            log.info("froze %d objects out of full garbage collections", gc_pauses.freeze_startup_heap())
        await set_serving(health_servicer, True)
        log.info("ready: gRPC %s:%d, REST %s", settings.grpc_host, port, _http_url(http_socket))
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if any(task.get_name() == "workers" for task in done):
            raise StartupError("a shim worker exited, so the gateway stopped (the log above says why)")
    finally:
        log.info("shutting down")
        await set_serving(health_servicer, False)
        if shim is not None:
            shim.should_exit = True
        for task in tasks:
            if task.get_name() in ("signal", "workers"):
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if workers is not None:
            await workers.stop()  # their requests in flight answered while the gRPC server still serves
        await personal.hub.stop()  # relay streams never end by themselves
        await server.stop(SHUTDOWN_GRACE_SECONDS)
        await gateway.close()
        await usage.close()  # the last batch of usage records, before the store closes
        await store.close()
        worker.stop()
        if metrics_server is not None:
            metrics_server.close()
        tracing.shutdown()  # the last spans exported


def _start_metrics(settings: Settings, *, internal: bool) -> MetricsServer | None:
    """The metrics port when configured; else, for shim workers (`internal`), one on loopback they read."""
    if settings.metrics_port is None:
        return MetricsServer("127.0.0.1", 0) if internal else None
    try:
        server = MetricsServer(settings.metrics_host, settings.metrics_port)
    except OSError as error:
        raise StartupError(
            f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port}: {error.strerror}"
        ) from error
    log.info("metrics on http://%s:%d/metrics", settings.metrics_host, server.port)
    return server


def _bind_http(settings: Settings) -> socket.socket:
    family = socket.AF_INET6 if ":" in settings.http_host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only for TCP sockets,
    # and without it every streamed chunk waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.http_host, settings.http_port))
    except OSError as error:
        sock.close()
        raise StartupError(
            f"cannot listen for REST on {settings.http_host}:{settings.http_port}: {error.strerror}"
        ) from error
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _http_url(sock: socket.socket | None) -> str:
    if sock is None:
        return "off"
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}/v1"
