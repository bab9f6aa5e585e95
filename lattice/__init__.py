"""Lattice: a gRPC inference gateway that resolves capabilities to models.

The packages: `lattice.v1` (generated from proto/), `lattice.server` (the gRPC
server and its domain), `lattice.shim` (the OpenAI-compatible REST shim, a gRPC
client of the server), `lattice.config` (the one settings object).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
