"""One thread for all MLX work, bridged to asyncio.

MLX streams and the models' caches belong to the thread that uses them, and
one forward pass already keeps the CPU (or GPU) busy, so every load and every
batch loop runs on a single worker thread, in order (as mlx_lm.server does).
Results reach their caller through a `StreamBridge` (`lattice.server.backends.bridge`).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import TypeVar

from lattice.server.backends.bridge import JobStream, StreamBridge

T = TypeVar("T")

Emit = Callable[[T], None]
StreamJob = Callable[[Emit[T], threading.Event], None]
"""Work that reports items through `emit` and stops soon after the event is set."""


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
