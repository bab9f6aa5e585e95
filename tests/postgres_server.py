"""A throwaway PostgreSQL server for the tests, started with the project's own scripts/postgres.sh."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from tests.gateway_process import REPO, free_port

SCRIPT = REPO / "scripts" / "postgres.sh"


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yields the server's URL (user and database `lattice`, trust auth on loopback)."""
    # Not under pytest's tmp_path: PostgreSQL runs as the postgres user, who cannot enter it.
    directory = tempfile.mkdtemp(prefix="lattice-pg-")
    os.chmod(directory, 0o755)
    port = free_port()
    subprocess.run(["bash", SCRIPT, "start", directory, str(port)], check=True)
    try:
        yield f"postgresql://lattice@127.0.0.1:{port}/lattice"
    finally:
        subprocess.run(["bash", SCRIPT, "stop", directory], check=False)
        shutil.rmtree(directory, ignore_errors=True)


async def fresh_database(server_url: str) -> str:
    """A new, empty database on the server: each test gets its own schema from the migrations."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(server_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return server_url.rsplit("/", 1)[0] + "/" + name
