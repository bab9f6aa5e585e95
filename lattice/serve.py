"""`lattice serve`: the gRPC server and the REST shim in one process, until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator

import uvicorn

from lattice.config import Settings, check_safe_to_bind
from lattice.server.app import build_gateway, create_server, set_serving
from lattice.server.backends.mlx.worker import MlxWorker
from lattice.shim import create_app

log = logging.getLogger("lattice")

SHUTDOWN_GRACE_SECONDS = 5.0


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: `serve` stops both servers on one signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(settings: Settings, *, with_shim: bool = True) -> None:
    check_safe_to_bind(settings)
    worker = MlxWorker()
    gateway = build_gateway(settings, worker)
    server, port, health_servicer = create_server(settings, gateway)
    await set_serving(health_servicer, False)  # the servicer starts out SERVING
    await server.start()
    log.info("gRPC listening on %s:%d (health NOT_SERVING until the models are loaded)", settings.grpc_host, port)

    shim: _EmbeddedUvicorn | None = None
    shim_task: asyncio.Task[None] | None = None
    if with_shim:
        target = settings.model_copy(update={"grpc_port": port}).grpc_target
        app = create_app(target, max_body_bytes=settings.max_request_bytes)
        shim = _EmbeddedUvicorn(
            uvicorn.Config(app, host=settings.http_host, port=settings.http_port, log_level="info", lifespan="on")
        )
        shim_task = asyncio.create_task(shim.serve())

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    try:
        log.info("preparing models: %s", ", ".join(m.id for m in settings.models))
        await gateway.start()
        await set_serving(health_servicer, True)
        log.info(
            "ready: gRPC %s:%d, REST http://%s:%d/v1",
            settings.grpc_host,
            port,
            settings.http_host,
            settings.http_port,
        )
        stopped = asyncio.create_task(stop.wait())
        waits: set[asyncio.Future[object]] = {stopped}  # type: ignore[arg-type]
        if shim_task:
            waits.add(shim_task)  # type: ignore[arg-type]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        log.info("shutting down")
        await set_serving(health_servicer, False)
        if shim is not None and shim_task is not None:
            shim.should_exit = True
            with contextlib.suppress(Exception):
                await shim_task
        await server.stop(SHUTDOWN_GRACE_SECONDS)
        await gateway.close()
        worker.stop()
