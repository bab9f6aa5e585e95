"""The OpenAI-compatible REST shim: a gRPC client of the server that translates, and owns no logic."""

from lattice.shim.app import create_app

__all__ = ["create_app"]
