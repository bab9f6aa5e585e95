"""The event loop the gateway's processes run on: uvloop where it is installed, asyncio's own otherwise.

uvloop (libuv) makes the shim's socket reads and writes and the loop's callbacks cheaper than the
standard loop's selector (bench/README.md, "#19"). gRPC's asyncio API runs on any loop: it polls its
completion queue from a thread of its own and hands the events to the running loop. Windows has no
uvloop; `event_loop = "asyncio"` (LATTICE_EVENT_LOOP) chooses the standard loop anyway.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

T = TypeVar("T")


def uvloop_wanted(setting: Literal["auto", "asyncio"]) -> bool:
    """True when the setting allows uvloop and it is installed."""
    return setting == "auto" and importlib.util.find_spec("uvloop") is not None


def run(main: Coroutine[Any, Any, T], setting: Literal["auto", "asyncio"]) -> T:
    """`asyncio.run(main)`, on uvloop when `uvloop_wanted(setting)`."""
    if uvloop_wanted(setting):
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def uvicorn_loop(setting: Literal["auto", "asyncio"]) -> Literal["uvloop", "asyncio"]:
    """uvicorn's `loop` setting to match (a shim worker's loop is uvicorn's)."""
    return "uvloop" if uvloop_wanted(setting) else "asyncio"
