"""The gateway's event loop: uvloop unless the setting says asyncio's own (lattice.event_loop)."""

from __future__ import annotations

import asyncio

import uvloop

from lattice import event_loop


async def _loop_type() -> type:
    return type(asyncio.get_running_loop())


def test_auto_runs_on_uvloop() -> None:
    assert event_loop.run(_loop_type(), "auto") is uvloop.Loop
    assert event_loop.uvicorn_loop("auto") == "uvloop"


def test_asyncio_runs_on_the_standard_loop() -> None:
    assert not issubclass(event_loop.run(_loop_type(), "asyncio"), uvloop.Loop)
    assert event_loop.uvicorn_loop("asyncio") == "asyncio"
