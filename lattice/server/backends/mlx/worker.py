"""One thread for all MLX work, bridged to asyncio.

MLX streams and the models' caches belong to the thread that uses them, and
one forward pass already keeps the CPU (or GPU) busy, so every load and every
generation runs on a single worker thread, in order (as mlx_lm.server does).
Each job reports to its own asyncio queue; a caller that stops listening sets
the job's cancel event, which the generation loop checks at every token.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")

Emit = Callable[[T], None]
StreamJob = Callable[[Emit[T], threading.Event], None]
"""Work that reports items through `emit` and stops soon after the event is set."""


@dataclass
class _Job(Generic[T]):
    work: StreamJob[T]
    loop: asyncio.AbstractEventLoop
    results: asyncio.Queue[tuple[str, Any]]
    cancel: threading.Event = field(default_factory=threading.Event)

    def post(self, kind: str, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening any more
            self.loop.call_soon_threadsafe(self.results.put_nowait, (kind, value))


class JobStream(AsyncIterator[T]):
    """The caller's end of a job. A plain async generator would not do: closing one that
    never started skips its `finally`, and the queued job would run for nobody."""

    def __init__(self, job: _Job[T]) -> None:
        self._job = job

    async def __anext__(self) -> T:
        try:
            kind, value = await self._job.results.get()
        except BaseException:  # the caller was cancelled while waiting
            self._job.cancel.set()
            raise
        if kind == "item":
            return cast(T, value)
        self._job.cancel.set()
        if kind == "error":
            raise value
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self._job.cancel.set()


class MlxWorker:
    def __init__(self, name: str = "lattice-mlx") -> None:
        self._jobs: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def stream(self, work: StreamJob[T]) -> JobStream[T]:
        """Queues `work` now; iterate for what it emits. `aclose()` cancels it, started or not."""
        job: _Job[T] = _Job(work, asyncio.get_running_loop(), asyncio.Queue())
        self._jobs.put(job)
        return JobStream(job)

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
            if job.cancel.is_set():
                continue  # its caller left while it waited
            try:
                job.work(functools.partial(job.post, "item"), job.cancel)
            except BaseException as exc:  # forwarded to the caller, who decides what it means
                job.post("error", exc)
            else:
                job.post("done", None)
