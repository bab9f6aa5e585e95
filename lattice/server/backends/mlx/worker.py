"""One thread for all MLX work, bridged to asyncio.

MLX streams and the models' caches belong to the thread that uses them, and
one forward pass already keeps the CPU (or GPU) busy, so every load and every
batch loop runs on a single worker thread, in order (as mlx_lm.server does).
Results reach their caller through a `StreamBridge`: an asyncio queue fed from
the worker thread, and a cancel event the caller sets by closing its stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")

Emit = Callable[[T], None]
StreamJob = Callable[[Emit[T], threading.Event], None]
"""Work that reports items through `emit` and stops soon after the event is set."""


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


class MlxWorker:
    def __init__(self, name: str = "lattice-mlx") -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def stream(self, work: StreamJob[T]) -> JobStream[T]:
        """Queues `work` now; iterate for what it emits. `aclose()` cancels it, started or not."""
        bridge: StreamBridge[T] = StreamBridge(asyncio.get_running_loop())

        def run() -> None:
            if bridge.cancelled:
                return  # its caller left while it waited
            try:
                work(bridge.post_item, bridge.cancel)
            except BaseException as exc:  # forwarded to the caller, who decides what it means
                bridge.post_error(exc)
            else:
                bridge.post_done()

        self._jobs.put(run)
        return JobStream(bridge)

    def submit(self, work: Callable[[], None]) -> None:
        """Queues `work`, which reports through its own bridges and must not raise."""
        self._jobs.put(work)

    async def call(self, fn: Callable[[], T]) -> T:
        """Runs `fn` on the worker and returns its result."""

        def work(emit: Emit[T], _cancel: threading.Event) -> None:
            emit(fn())

        async with contextlib.aclosing(self.stream(work)) as results:
            async for result in results:
                return result
        raise AssertionError("unreachable: a call job always emits once")

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()
