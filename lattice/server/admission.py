"""Admission: per-model and global concurrency caps, a bounded queue, priority, fairness.

Work beyond the caps waits in a per-model queue of at most `queue_size`. When a
slot frees, the waiting request with the highest priority goes first; among
equal priorities the caller served longest ago goes first (round-robin between
callers, FIFO within one), so one caller flooding the queue cannot starve
another. Nor can it keep others out by filling the queue: when it is full, a
caller with fewer requests waiting takes the place of the newest request of the
caller with the most (longest-queue drop), which is refused. A full queue or a
wait past the queue timeout is refused with a retry delay computed from the
measured service time and the queue ahead, never a constant. A waiter whose
deadline passes, or who goes away, leaves the queue.

Anonymous callers can mint identities at will, so what is remembered of them
is bounded: a caller idle past `CALLER_IDLE_SECONDS`, or the one served longest
ago once `MAX_REMEMBERED_CALLERS` are remembered, is forgotten. Forgetting the
caller served longest ago keeps the order between the others as it was.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from lattice.errors import DeadlineExceeded, QueueFull, QueueTimeout
from lattice.observability import metrics

PRIORITY_RANGE = range(-10, 11)
INITIAL_SERVICE_SECONDS = 1.0
"""Assumed service time before a model has finished any request."""
SMOOTHING = 0.2
"""Weight of the newest measurement in the moving average of service time."""


CALLER_IDLE_SECONDS = 600.0
"""A caller not served for this long is forgotten, as if never served (which puts it first among equals)."""
MAX_REMEMBERED_CALLERS = 10_000
"""Past this many, the callers served longest ago are forgotten first."""


QueuedCallback = Callable[[int, float], None]
"""Told a waiting request's position (1 = next) and its estimated wait in seconds."""


@dataclass(frozen=True)
class AdmissionLimits:
    max_concurrent_per_model: int
    max_concurrent_total: int
    queue_size: int
    queue_timeout_seconds: float


@dataclass(eq=False)
class _Ticket:
    model: str
    caller: str
    priority: int
    order: int
    granted: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    refusal: QueueFull | None = None
    """Set when another caller took this ticket's place in a full queue."""


class Admission:
    def __init__(
        self,
        limits: AdmissionLimits,
        *,
        model_caps: Mapping[str, int] | None = None,
        prefix_caps: Mapping[str, int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`model_caps` overrides `limits.max_concurrent_per_model` for some models, `prefix_caps` for
        every model whose id starts with a prefix (each personal runtime, `lattice:personal:`)."""
        self._limits = limits
        self._caps = dict(model_caps or {})
        self._prefix_caps = tuple((prefix_caps or {}).items())
        self._clock = clock
        self._running: dict[str, int] = {}
        self._waiting: dict[str, list[_Ticket]] = {}
        self._service_seconds: dict[str, float] = {}
        # Caller -> (serve order, when served), oldest first: the front is what is forgotten.
        self._last_served: collections.OrderedDict[str, tuple[int, float]] = collections.OrderedDict()
        self._order = itertools.count()

    def remembered_callers(self) -> int:
        """How many callers' last service is remembered for fairness (bounded)."""
        return len(self._last_served)

    def running(self, model: str) -> int:
        return self._running.get(model, 0)

    def waiting(self, model: str) -> int:
        return len(self._waiting.get(model, ()))

    def retry_after(self, model: str, ahead: int | None = None) -> float:
        """How long until a request queued behind `ahead` others would likely start."""
        ahead = self.waiting(model) if ahead is None else ahead
        per_request = self._service_seconds.get(model, INITIAL_SERVICE_SECONDS)
        return max(0.1, (ahead + 1) * per_request / self.cap(model))

    def cap(self, model: str) -> int:
        cap = self._caps.get(model)
        if cap is None:
            cap = next((c for prefix, c in self._prefix_caps if model.startswith(prefix)), None)
        return cap if cap is not None else self._limits.max_concurrent_per_model

    @asynccontextmanager
    async def slot(
        self,
        model: str,
        *,
        caller: str,
        priority: int = 0,
        deadline: float | None = None,
        on_queued: QueuedCallback | None = None,
    ) -> AsyncIterator[None]:
        """Holds a slot on `model` for the body; waits for one within the limits or refuses.
        `on_queued(position, estimated_wait_seconds)` is told when the request has to wait."""
        await self._acquire(model, caller, priority, deadline, on_queued)
        started = self._clock()
        try:
            yield
        finally:
            self._release(model, self._clock() - started)

    async def _acquire(
        self, model: str, caller: str, priority: int, deadline: float | None, on_queued: QueuedCallback | None
    ) -> None:
        if self._has_room(model) and not self.waiting(model):
            self._start(model, caller)
            metrics.queue_waited(model, 0.0)
            return
        queue = self._waiting.setdefault(model, [])
        if len(queue) >= self._limits.queue_size and not self._displace(model, queue, caller, priority):
            metrics.admission_refused(model, "queue_full")
            raise QueueFull(
                f"the queue for {model!r} is full ({len(queue)} waiting)",
                retry_after_seconds=self.retry_after(model),
                metadata={"model": model},
            )
        ticket = _Ticket(model, caller, priority, next(self._order))
        queue.append(ticket)
        self._report(model)
        enqueued = self._clock()
        if on_queued is not None:
            on_queued(len(queue), self.retry_after(model, ahead=len(queue) - 1))
        timeout = self._limits.queue_timeout_seconds
        if deadline is not None:
            timeout = min(timeout, deadline - self._clock())
        try:
            await asyncio.wait_for(asyncio.shield(ticket.granted), timeout=max(0.0, timeout))
        except TimeoutError:
            if ticket.refusal is not None:  # displaced in the same instant: it has left the queue
                raise ticket.refusal from None
            if ticket.granted.done():  # granted in the same instant: keep it
                metrics.queue_waited(model, self._clock() - enqueued)
                return
            queue.remove(ticket)
            self._report(model)
            if deadline is not None and self._clock() >= deadline:
                metrics.admission_refused(model, "deadline")
                raise DeadlineExceeded(f"the deadline passed while queued for {model!r}") from None
            metrics.admission_refused(model, "queue_timeout")
            raise QueueTimeout(
                f"waited {self._limits.queue_timeout_seconds:g}s in the queue for {model!r}",
                retry_after_seconds=self.retry_after(model),
                metadata={"model": model},
            ) from None
        except BaseException:  # cancelled, or displaced (QueueFull: it has left the queue)
            if ticket.granted.done() and not ticket.granted.cancelled() and ticket.refusal is None:
                self._release(model, None)  # granted as we were cancelled: hand the slot on
            elif ticket in queue:
                queue.remove(ticket)
                self._report(model)
            raise
        metrics.queue_waited(model, self._clock() - enqueued)

    def _displace(self, model: str, queue: list[_Ticket], caller: str, priority: int) -> bool:
        """Makes room in the full `queue` for `caller` by refusing the newest waiting request of the caller
        with the most waiting, if that is at least two more than `caller` has (so two callers never
        trade places back and forth) and of no higher priority. False when no request qualifies."""
        waiting = collections.Counter(t.caller for t in queue)
        mine = waiting[caller]
        candidates = [t for t in queue if t.priority <= priority and waiting[t.caller] >= mine + 2]
        if not candidates:
            return False
        victim = max(candidates, key=lambda t: (waiting[t.caller], -t.priority, t.order))
        queue.remove(victim)
        metrics.admission_refused(model, "queue_full")
        victim.refusal = QueueFull(
            f"the queue for {model!r} is full, and this caller had the most requests waiting in it "
            f"({waiting[victim.caller]}): its newest gave way to another caller's",
            retry_after_seconds=self.retry_after(model),
            metadata={"model": model},
        )
        victim.granted.set_exception(victim.refusal)
        return True

    def _has_room(self, model: str) -> bool:
        total = sum(self._running.values())
        return self.running(model) < self.cap(model) and total < self._limits.max_concurrent_total

    def _start(self, model: str, caller: str) -> None:
        self._running[model] = self.running(model) + 1
        self._remember_served(caller)
        self._report(model)

    def _remember_served(self, caller: str) -> None:
        now = self._clock()
        self._last_served[caller] = (next(self._order), now)
        self._last_served.move_to_end(caller)
        served = self._last_served
        while len(served) > MAX_REMEMBERED_CALLERS or next(iter(served.values()))[1] < now - CALLER_IDLE_SECONDS:
            served.popitem(last=False)

    def _report(self, model: str) -> None:
        metrics.admission_state(model, running=self.running(model), waiting=self.waiting(model))

    def _release(self, model: str, service_seconds: float | None) -> None:
        self._running[model] = self.running(model) - 1
        self._report(model)
        if service_seconds is not None:
            previous = self._service_seconds.get(model)
            self._service_seconds[model] = (
                service_seconds if previous is None else (1 - SMOOTHING) * previous + SMOOTHING * service_seconds
            )
        self._grant()

    def _grant(self) -> None:
        """Starts the best waiting tickets while there is room (any model: the global cap is shared)."""
        while True:
            eligible = [t for m, q in self._waiting.items() if q and self._has_room(m) for t in q]
            if not eligible:
                return
            # Highest priority; then the caller served longest ago; then first come.
            best = min(eligible, key=lambda t: (-t.priority, self._last_served.get(t.caller, (-1,))[0], t.order))
            self._waiting[best.model].remove(best)
            self._start(best.model, best.caller)
            best.granted.set_result(None)
