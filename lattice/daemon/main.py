"""`lattice-daemon`: the personal-runtime daemon in the foreground (`lattice-ctl daemon start` runs it
in the background). Exits 3 when the gateway refuses it (a revoked runtime)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import pathlib
import signal
import sys

from lattice import __version__
from lattice.blas import reexec_with_blas
from lattice.config import Settings
from lattice.daemon import config as daemon_config
from lattice.daemon.executor import Executor
from lattice.daemon.relay_client import Refused, RelayClient
from lattice.daemon.state import StateFile, pid_path
from lattice.observability import tracing
from lattice.observability.logs import configure_logging

EXIT_REFUSED = 3
log = logging.getLogger("lattice.daemon")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lattice-daemon", description="Runs this machine's personal runtime.")
    parser.add_argument("--version", action="version", version=f"lattice-daemon {__version__}")
    add_run_options(parser)
    return parser


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--provider-url", help="a local OpenAI-compatible server, e.g. http://127.0.0.1:11434/v1")
    parser.add_argument("--provider-model", help="the provider's model to use (default: the first it lists)")
    parser.add_argument(
        "--max-backoff-seconds", type=float, default=30.0, help="longest wait between reconnects (default 30)"
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings()
    # JSON lines in daemon.log (readable ones in a terminal), each work item's with the gateway's request id.
    configure_logging(settings.log_level, settings.log_format)
    home = daemon_config.ctl_home()
    try:
        config = daemon_config.load(home)
    except daemon_config.NotPaired as error:
        print(f"lattice-daemon: {error}", file=sys.stderr)
        return 2
    provider_url = args.provider_url if args.provider_url is not None else config.provider_url
    if not provider_url:
        reexec_with_blas(settings.mlx_blas, sys.argv[1:] if argv is None else argv, module="lattice.daemon.main")
    executor = Executor(
        settings,
        provider_url=provider_url,
        provider_model=args.provider_model if args.provider_model is not None else config.provider_model,
    )
    try:
        tracing.configure(settings.otel_exporter, endpoint=settings.otel_endpoint, service_name="lattice-daemon")
    except tracing.TracingUnavailable as error:
        print(f"lattice-daemon: {error}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(home, config, executor, args.max_backoff_seconds))
    finally:
        tracing.shutdown()


async def _run(home: pathlib.Path, config: daemon_config.DaemonConfig, executor: Executor, max_backoff: float) -> int:
    pid_file = pid_path(home)
    pid_file.write_text(f"{os.getpid()}\n")
    state = StateFile(home)
    state.update(relay="starting", lattice_id=config.lattice_id, backend=executor.description)
    client = RelayClient(config, executor, state, max_backoff_seconds=max_backoff)
    running = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, running.cancel if running else lambda: None)
    try:
        log.info("starting %s for personal runtime %s", executor.description, config.lattice_id)
        await executor.start()
        await client.run_forever()
    except Refused as refusal:
        if refusal.credential_ended:
            # Revoked, or paired again elsewhere: the credential can never work again, so it is not kept.
            path = daemon_config.config_path(home)
            path.unlink(missing_ok=True)
            log.error(
                "the gateway refused this daemon for good (%s): stopping; removed its credential %s", refusal, path
            )
        else:
            log.error("the gateway refused this daemon: %s", refusal)
        return EXIT_REFUSED
    except asyncio.CancelledError:
        log.info("stopping")
    finally:
        state.update(relay="stopped")
        await executor.close()
        pid_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
