"""The MLX worker bridge, with plain Python jobs: ordering, errors, cancellation."""

from __future__ import annotations

import threading
from contextlib import aclosing

import pytest

from lattice.server.backends.mlx.worker import Emit, MlxWorker


@pytest.fixture
def worker() -> MlxWorker:
    return MlxWorker(name="test-worker")


async def test_call_returns_on_the_worker_thread(worker: MlxWorker) -> None:
    name = await worker.call(lambda: threading.current_thread().name)
    assert name == "test-worker"


async def test_errors_reach_the_caller(worker: MlxWorker) -> None:
    def boom() -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        await worker.call(boom)
    assert await worker.call(lambda: 1) == 1  # the worker survives


async def test_closing_the_stream_cancels_the_job_at_its_next_step(worker: MlxWorker) -> None:
    produced: list[int] = []
    observed_cancel = threading.Event()

    def endless(emit: Emit[int], cancel: threading.Event) -> None:
        i = 0
        while not cancel.is_set():
            produced.append(i)
            emit(i)
            i += 1
            cancel.wait(0.01)  # one "token step"
        observed_cancel.set()

    received = []
    async with aclosing(worker.stream(endless)) as items:
        async for item in items:
            received.append(item)
            if len(received) == 3:
                break
    assert await worker.call(lambda: observed_cancel.is_set())  # jobs run in order: it has ended
    assert received == [0, 1, 2]
    assert len(produced) <= len(received) + 2  # at most a step or two past the cancel


async def test_a_job_cancelled_while_queued_never_runs(worker: MlxWorker) -> None:
    gate = threading.Event()
    ran: list[str] = []

    def blocker(emit: Emit[str], cancel: threading.Event) -> None:
        gate.wait(5)
        emit("blocker")

    def queued(emit: Emit[str], cancel: threading.Event) -> None:
        ran.append("queued")

    first = worker.stream(blocker)
    second = worker.stream(queued)
    await second.aclose()
    gate.set()
    assert [x async for x in first] == ["blocker"]
    await worker.call(lambda: None)
    assert ran == []
