"""Full garbage collections: timed as a metric, and kept short by freezing what startup made.

CPython's full (generation-2) collection walks every object the collector tracks. Once `lattice serve`
has started that is ~160,000 objects (modules, the app, protobuf descriptors, pydantic's validators),
and walking them took 120-190 ms on this project's 2-core benchmark machine: a stall that every request
in flight waits through, which under load is the p99. `gc.freeze()` moves every object alive at that
moment to a permanent generation the collector no longer walks, so later full collections see only
what was made since. Startup's garbage is collected first, so nothing dead is kept.

The pauses are timed from `gc.callbacks`, which run inside the collection: the callback takes no lock
(prometheus_client's metrics do, and a collection can start while one is held), it only updates plain
numbers that a collector of its own reports at scrape time.
"""

from __future__ import annotations

import bisect
import gc
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from lattice.observability.metrics import REGISTRY

FULL = 2
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class FullCollections(Collector):
    """`lattice_gc_full_collection_seconds` (a histogram) and `lattice_gc_frozen_objects`."""

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # per bucket, not cumulative; the last is +Inf
        self.total_seconds = 0.0
        self.frozen = 0
        self._started: float | None = None

    def on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != FULL:
            return
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            seconds = time.perf_counter() - self._started
            self._started = None
            self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
            self.total_seconds += seconds

    def collect(self) -> Iterator[Any]:
        cumulative, buckets = 0, []
        for bound, count in zip((*map(str, BUCKETS), "+Inf"), self.counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily(
            "lattice_gc_full_collection_seconds",
            "Full (generation-2) garbage collections of the gateway's process, by how long each stopped it.",
            buckets=buckets,
            sum_value=self.total_seconds,
        )
        yield GaugeMetricFamily(
            "lattice_gc_frozen_objects",
            "Objects startup made, frozen out of full collections (gc_freeze); 0 when it is off.",
            value=self.frozen,
        )


_collections: FullCollections | None = None


def time_full_collections() -> FullCollections:
    """Starts timing this process's full collections into the metrics (once; later calls return it)."""
    global _collections
    if _collections is None:
        _collections = FullCollections()
        gc.callbacks.append(_collections.on_collection)
        REGISTRY.register(_collections)
    return _collections


def freeze_startup_heap() -> int:
    """Collects startup's garbage, then freezes every object left; returns how many are frozen."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    if _collections is not None:
        _collections.frozen = frozen
    return frozen
