"""What the operator's store commands (`lattice keys`, `lattice usage`) share: the store opened from
the settings and closed after, and a refusal as one line on stderr."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

from lattice.config import Settings
from lattice.errors import LatticeError
from lattice.server.store import Store, open_store


def run_on_store(settings: Settings, command: str, work: Callable[[Store], Awaitable[int]]) -> int:
    """Runs `work` against the store; a LatticeError is printed as `lattice <command>: …`, exit 2."""

    async def opened() -> int:
        store = await open_store(settings.database_url, settings.home)
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(opened())
    except LatticeError as error:
        print(f"lattice {command}: {error.message}", file=sys.stderr)
        return 2
