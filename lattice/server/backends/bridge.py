"""Results from a worker thread to an asyncio caller, and the caller's cancel back.

A `StreamBridge` is an asyncio queue fed from the thread that does the work, plus a
`threading.Event` the caller sets by closing its end (`JobStream`). Both in-process
engines use it: MLX's single worker thread and llama.cpp's per-request threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")


class StreamBridge(Generic[T]):
    """The worker-thread end posts; the event-loop end (`JobStream`) reads and may cancel."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.results: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.cancel = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set()

    def post_item(self, item: T) -> None:
        self._post("item", item)

    def post_error(self, error: BaseException) -> None:
        self._post("error", error)

    def post_done(self) -> None:
        self._post("done", None)

    def _post(self, kind: str, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening any more
            self._loop.call_soon_threadsafe(self.results.put_nowait, (kind, value))


class JobStream(AsyncIterator[T]):
    """The caller's end. A plain async generator would not do: closing one that never
    started skips its `finally`, and the queued work would run for nobody."""

    def __init__(self, bridge: StreamBridge[T]) -> None:
        self._bridge = bridge

    async def __anext__(self) -> T:
        try:
            kind, value = await self._bridge.results.get()
        except BaseException:  # the caller was cancelled while waiting
            self._bridge.cancel.set()
            raise
        if kind == "item":
            return cast(T, value)
        self._bridge.cancel.set()
        if kind == "error":
            raise value
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self._bridge.cancel.set()

    @property
    def unread(self) -> int:
        """Results posted but not read yet (after `aclose`: what the work produced past the cancel)."""
        return self._bridge.results.qsize()
