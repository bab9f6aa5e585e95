"""The `lattice` command: `serve`, `models`, `resolve`, `keys`, `usage`, `--version`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TypeAlias

import grpc
from pydantic import ValidationError

from lattice import __version__, keys_cli, usage_cli
from lattice.blas import reexec_with_blas
from lattice.config import Settings, UnsafeBindError
from lattice.observability.logs import configure_logging
from lattice.v1 import common_pb2, operations_pb2, operations_pb2_grpc, resolve_pb2, resolve_pb2_grpc
from lattice.wire.names import API_KEY_METADATA_KEY

API_KEY_ENV = "LATTICE_API_KEY"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lattice", description="The Lattice inference gateway.")
    parser.add_argument("--version", action="version", version=f"lattice {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gRPC server and the REST shim")
    serve.add_argument("--no-shim", action="store_true", help="run the gRPC server only")
    serve.add_argument(
        "--shim-workers",
        type=int,
        metavar="N",
        help="REST shim processes sharing the HTTP port (LATTICE_SHIM_WORKERS; default one per core beyond the "
        "first, at most 4; 0 or 1: the shim embedded in-process)",
    )
    # Commands that call the running gateway (on LATTICE_GRPC_HOST:LATTICE_GRPC_PORT) take its key.
    client = argparse.ArgumentParser(add_help=False)
    client.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV),
        help=f"the key sent as x-api-key: the gateway's {API_KEY_ENV}, or a developer key (sk_…); "
        f"default ${API_KEY_ENV}",
    )
    commands.add_parser(
        "models", parents=[client], help="list the models of a running gateway, with their state and queues"
    )
    resolve = commands.add_parser(
        "resolve", parents=[client], help="explain which model an expression picks, without running it"
    )
    resolve.add_argument("expression", help='e.g. "role:coder", "a,b,role:fast", "*coder*", "vision"')
    keys_cli.add_parser(commands)
    usage_cli.add_parser(commands)
    args = parser.parse_args(argv)

    try:
        settings = Settings()
    except ValidationError as error:
        print(f"lattice: invalid configuration:\n{error}", file=sys.stderr)
        return 2
    if args.command == "serve":
        if args.shim_workers is not None:
            try:
                settings = Settings(shim_workers=args.shim_workers)
            except ValidationError as error:
                print(f"lattice: invalid --shim-workers:\n{error}", file=sys.stderr)
                return 2
        configure_logging(settings.log_level, settings.log_format)
        reexec_with_blas(settings.mlx_blas, sys.argv[1:] if argv is None else argv)
        return _serve(settings, with_shim=not args.no_shim)
    if args.command == "keys":
        return keys_cli.run(settings, args)
    if args.command == "usage":
        return usage_cli.run(settings, args)
    key = args.api_key or (settings.api_key.get_secret_value() if settings.api_key else "")
    if args.command == "resolve":
        return asyncio.run(_client_command(settings, key, lambda channel, md: _resolve(channel, md, args.expression)))
    return asyncio.run(_client_command(settings, key, _models))


def _serve(settings: Settings, *, with_shim: bool) -> int:
    from lattice.serve import StartupError, serve  # heavy imports (MLX) only for the server

    try:
        asyncio.run(serve(settings, with_shim=with_shim))
    except (UnsafeBindError, StartupError) as error:
        print(f"lattice: {error}", file=sys.stderr)
        return 2
    return 0


Metadata = tuple[tuple[str, str], ...]
Command: TypeAlias = Callable[[grpc.aio.Channel, Metadata], Awaitable[int]]


async def _client_command(settings: Settings, api_key: str, command: Command) -> int:
    """Runs `command` against the gateway the settings point at, with `api_key` (if any); a gRPC error is
    one line on stderr."""
    metadata = ((API_KEY_METADATA_KEY, api_key),) if api_key else ()
    async with grpc.aio.insecure_channel(settings.grpc_target) as channel:
        try:
            return await command(channel, metadata)
        except grpc.aio.AioRpcError as error:
            print(f"lattice: {settings.grpc_target}: {error.code().name}: {error.details()}", file=sys.stderr)
            return 1


async def _models(channel: grpc.aio.Channel, metadata: Metadata) -> int:
    """One line per model; with its state (`resident`, `loading`, …), slots in use and queue from the
    dashboard's snapshot, so a model still loading says so."""
    stub: resolve_pb2_grpc.ResolveServiceAsyncStub = resolve_pb2_grpc.ResolveServiceStub(channel)
    reply = await stub.ListModels(resolve_pb2.ListModelsRequest(), metadata=metadata, timeout=10)
    states = await _model_states(channel, metadata)
    for model in reply.models:
        roles = ",".join(model.roles) or "-"
        state = "" if model.available else "\tunavailable"
        live = states.get(model.id)
        if live is not None:
            state += f"\tstate={live.state}\trunning={live.running}/{live.max_concurrency}\tqueued={live.queued}"
        print(f"{model.id}\t{model.backend}\tcontext={model.context_window}\troles={roles}{state}")
    return 0


async def _model_states(channel: grpc.aio.Channel, metadata: Metadata) -> dict[str, operations_pb2.ModelState]:
    """Each model's live state; none from a gateway without the operations service."""
    operations: operations_pb2_grpc.OperationsServiceAsyncStub = operations_pb2_grpc.OperationsServiceStub(channel)
    try:
        snapshot = await operations.GetDashboard(
            operations_pb2.GetDashboardRequest(recent_limit=1), metadata=metadata, timeout=10
        )
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.UNIMPLEMENTED:
            return {}
        raise
    return {entry.model.id: entry for entry in snapshot.models}


async def _resolve(channel: grpc.aio.Channel, metadata: Metadata, expression: str) -> int:
    stub: resolve_pb2_grpc.ResolveServiceAsyncStub = resolve_pb2_grpc.ResolveServiceStub(channel)
    reply = await stub.Resolve(resolve_pb2.ResolveRequest(model=expression), metadata=metadata, timeout=10)
    resolution = reply.resolution
    escalated = " (escalated)" if resolution.escalated else ""
    print(f"{resolution.model}\t{resolution.backend}{escalated}")
    for candidate in resolution.candidates:
        verdict = common_pb2.CandidateVerdict.Name(candidate.verdict).removeprefix("CANDIDATE_VERDICT_").lower()
        print(f"  {candidate.model}\t{verdict}\t{candidate.detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
