"""The `lattice` command: `serve`, `models`, `--version`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import grpc
from pydantic import ValidationError

from lattice import __version__
from lattice.config import Settings, UnsafeBindError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lattice", description="The Lattice inference gateway.")
    parser.add_argument("--version", action="version", version=f"lattice {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gRPC server and the REST shim")
    serve.add_argument("--no-shim", action="store_true", help="run the gRPC server only")
    commands.add_parser("models", help="list the models of a running gateway")
    args = parser.parse_args(argv)

    try:
        settings = Settings()
    except ValidationError as error:
        print(f"lattice: invalid configuration:\n{error}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(settings, with_shim=not args.no_shim)
    return asyncio.run(_models(settings))


def _serve(settings: Settings, *, with_shim: bool) -> int:
    from lattice.serve import StartupError, serve  # heavy imports (MLX) only for the server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(settings, with_shim=with_shim))
    except (UnsafeBindError, StartupError) as error:
        print(f"lattice: {error}", file=sys.stderr)
        return 2
    return 0


async def _models(settings: Settings) -> int:
    from lattice.v1 import resolve_pb2, resolve_pb2_grpc

    metadata = (("x-api-key", settings.api_key.get_secret_value()),) if settings.api_key else ()
    async with grpc.aio.insecure_channel(settings.grpc_target) as channel:
        stub = resolve_pb2_grpc.ResolveServiceStub(channel)
        try:
            reply = await stub.ListModels(resolve_pb2.ListModelsRequest(), metadata=metadata, timeout=10)
        except grpc.aio.AioRpcError as error:
            print(f"lattice: {settings.grpc_target}: {error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    for model in reply.models:
        roles = ",".join(model.roles) or "-"
        print(f"{model.id}\t{model.backend}\tcontext={model.context_window}\troles={roles}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
