"""The admission queue, in plain asyncio: order, fairness, bounds, timeouts, deadlines, cancellation."""

from __future__ import annotations

import asyncio
import time
import tracemalloc

import pytest

from lattice.errors import DeadlineExceeded, QueueFull, QueueTimeout
from lattice.server.admission import CALLER_IDLE_SECONDS, Admission, AdmissionLimits

ONE_AT_A_TIME = AdmissionLimits(
    max_concurrent_per_model=1, max_concurrent_total=10, queue_size=8, queue_timeout_seconds=5
)


async def hold(admission: Admission, release: asyncio.Event, model: str = "m", caller: str = "holder") -> None:
    async with admission.slot(model, caller=caller):
        await release.wait()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def served_order(admission: Admission, requests: list[tuple[str, int]]) -> list[str]:
    """Queues `(caller, priority)` requests behind a held slot, releases it, returns the order served."""
    release, order = asyncio.Event(), []
    holder = asyncio.create_task(hold(admission, release))
    await settle()

    async def request(name: str, caller: str, priority: int) -> None:
        async with admission.slot("m", caller=caller, priority=priority):
            order.append(name)

    tasks = []
    for i, (caller, priority) in enumerate(requests):
        tasks.append(asyncio.create_task(request(f"{caller}{i}", caller, priority)))
        await settle()  # arrival order is the list's order
    release.set()
    await asyncio.gather(holder, *tasks)
    return order


async def test_higher_priority_goes_first() -> None:
    order = await served_order(Admission(ONE_AT_A_TIME), [("a", 0), ("b", 5), ("c", -3), ("d", 5)])
    assert order == ["b1", "d3", "a0", "c2"]


async def test_a_flooding_caller_does_not_starve_another() -> None:
    flood = [("flood", 0)] * 5 + [("quiet", 0)]
    order = await served_order(Admission(ONE_AT_A_TIME), flood)
    # The quiet caller arrived last but is served second: round-robin between callers.
    assert order[:2] == ["flood0", "quiet5"]
    assert order[2:] == ["flood1", "flood2", "flood3", "flood4"]


async def test_the_queue_is_bounded_and_says_when_to_retry() -> None:
    admission = Admission(AdmissionLimits(1, 10, queue_size=2, queue_timeout_seconds=5))
    release = asyncio.Event()
    holder = asyncio.create_task(hold(admission, release))
    waiters = [asyncio.create_task(hold(admission, release, caller=f"w{i}")) for i in range(2)]
    await settle()
    with pytest.raises(QueueFull) as caught:
        async with admission.slot("m", caller="late"):
            pass
    assert caught.value.retry_after_seconds == pytest.approx(3 * 1.0)  # 2 ahead + itself, 1 s each before data
    assert caught.value.code == "RESOURCE_EXHAUSTED"
    release.set()
    await asyncio.gather(holder, *waiters)


async def test_a_caller_filling_the_queue_gives_way_to_another_caller() -> None:
    admission = Admission(AdmissionLimits(1, 10, queue_size=3, queue_timeout_seconds=5))
    release, served = asyncio.Event(), []
    holder = asyncio.create_task(hold(admission, release))
    await settle()

    async def request(name: str, caller: str) -> None:
        async with admission.slot("m", caller=caller):
            served.append(name)
            await release.wait()

    flood = [asyncio.create_task(request(f"flood{i}", "flood")) for i in range(3)]
    await settle()
    quiet = asyncio.create_task(request("quiet", "quiet"))
    await settle()
    # The flood's newest waiting request was refused, with a delay to retry after, to let the quiet one in.
    with pytest.raises(QueueFull) as caught:
        await flood[2]
    assert caught.value.retry_after_seconds is not None
    assert admission.waiting("m") == 3
    # With the queue full again, the caller with the most waiting is refused rather than displacing anyone.
    with pytest.raises(QueueFull):
        async with admission.slot("m", caller="flood"):
            pass
    release.set()
    await asyncio.gather(holder, flood[0], flood[1], quiet)
    assert served == ["flood0", "quiet", "flood1"]


async def test_retry_after_grows_with_depth_and_follows_the_measured_service_time() -> None:
    now = [0.0]
    admission = Admission(ONE_AT_A_TIME, clock=lambda: now[0])
    async with admission.slot("m", caller="x"):
        now[0] += 4.0  # this request took 4 s
    assert admission.retry_after("m", ahead=0) == pytest.approx(4.0)
    assert admission.retry_after("m", ahead=3) == pytest.approx(16.0)
    async with admission.slot("m", caller="x"):
        now[0] += 2.0  # a faster one pulls the average down, not to it
    assert 2.0 < admission.retry_after("m", ahead=0) < 4.0


async def test_a_wait_past_the_queue_timeout_is_refused() -> None:
    admission = Admission(AdmissionLimits(1, 10, queue_size=8, queue_timeout_seconds=0.05))
    release = asyncio.Event()
    holder = asyncio.create_task(hold(admission, release))
    await settle()
    with pytest.raises(QueueTimeout) as caught:
        async with admission.slot("m", caller="w"):
            pass
    assert caught.value.retry_after_seconds is not None
    assert admission.waiting("m") == 0
    release.set()
    await holder


async def test_work_whose_deadline_passes_while_queued_never_runs() -> None:
    admission = Admission(ONE_AT_A_TIME)
    release, ran = asyncio.Event(), []
    holder = asyncio.create_task(hold(admission, release))
    await settle()
    with pytest.raises(DeadlineExceeded):
        async with admission.slot("m", caller="w", deadline=time.monotonic() + 0.05):
            ran.append(True)
    assert admission.waiting("m") == 0
    release.set()
    await holder
    assert ran == []


async def test_a_caller_that_goes_away_leaves_the_queue_at_once() -> None:
    admission = Admission(ONE_AT_A_TIME)
    release = asyncio.Event()
    holder = asyncio.create_task(hold(admission, release))
    await settle()
    waiter = asyncio.create_task(hold(admission, release, caller="gone"))
    await settle()
    assert admission.waiting("m") == 1
    waiter.cancel()
    await settle()
    assert admission.waiting("m") == 0
    release.set()
    await holder
    assert admission.running("m") == 0


async def test_the_global_cap_spans_models() -> None:
    admission = Admission(AdmissionLimits(5, max_concurrent_total=1, queue_size=8, queue_timeout_seconds=5))
    release = asyncio.Event()
    holder = asyncio.create_task(hold(admission, release, model="a"))
    other = asyncio.create_task(hold(admission, release, model="b", caller="other"))
    await settle()
    assert admission.running("b") == 0
    assert admission.waiting("b") == 1
    release.set()
    await asyncio.gather(holder, other)


async def test_a_million_distinct_callers_leave_memory_flat() -> None:
    """Anonymous callers can mint identities at will: what admission remembers of them must not grow."""
    admission = Admission(ONE_AT_A_TIME)

    async def serve(first: int, last: int) -> None:
        for i in range(first, last):
            async with admission.slot("m", caller=f"caller-{i}"):
                pass

    await serve(0, 750_000)
    tracemalloc.start()
    try:
        await serve(750_000, 800_000)  # whatever is remembered now was allocated while traced
        before = tracemalloc.get_traced_memory()[0]
        await serve(800_000, 1_000_000)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # Remembering each of these 200,000 callers would take well over 10 MB.
    assert grown < 1_000_000, f"{grown:,} bytes more after 200,000 more callers"


async def test_an_idle_caller_is_forgotten_and_fairness_between_the_rest_holds() -> None:
    now = [0.0]
    admission = Admission(ONE_AT_A_TIME, clock=lambda: now[0])
    for caller in ("a", "b"):
        async with admission.slot("m", caller=caller):
            pass
    assert admission.remembered_callers() == 2
    now[0] += CALLER_IDLE_SECONDS + 1
    async with admission.slot("m", caller="c"):
        pass
    assert admission.remembered_callers() == 1  # a and b were idle too long
    # c was served more recently than a, who is now as good as never served: a goes first.
    assert await served_order(admission, [("c", 0), ("a", 0)]) == ["a1", "c0"]
