"""Full garbage collections are timed in the metrics, and freezing startup's heap keeps nothing dead."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from lattice.observability import gc_pauses
from lattice.observability.metrics import REGISTRY


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the test session's objects go back to the collector


def full_collections() -> float:
    return REGISTRY.get_sample_value("lattice_gc_full_collection_seconds_count") or 0.0


class Node:
    """Something in a reference cycle: only the cycle collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_a_full_collection_is_counted_and_timed_and_a_younger_one_is_not() -> None:
    gc_pauses.time_full_collections()
    before = full_collections()
    seconds_before = REGISTRY.get_sample_value("lattice_gc_full_collection_seconds_sum") or 0.0
    gc.collect(0)
    gc.collect(1)
    assert full_collections() == before
    gc.collect()
    assert full_collections() == before + 1
    assert (REGISTRY.get_sample_value("lattice_gc_full_collection_seconds_sum") or 0.0) > seconds_before
    # The one collection is in a bucket, and the +Inf bucket counts every one.
    assert REGISTRY.get_sample_value("lattice_gc_full_collection_seconds_bucket", {"le": "+Inf"}) == before + 1


def test_timing_twice_installs_one_callback() -> None:
    first = gc_pauses.time_full_collections()
    assert gc_pauses.time_full_collections() is first
    assert gc.callbacks.count(first.on_collection) == 1


def test_freezing_collects_startup_garbage_first_and_then_freezes_the_rest(unfrozen: None) -> None:
    gc_pauses.time_full_collections()
    dead = Node()
    dead_ref = weakref.ref(dead)
    alive = Node()
    del dead
    frozen = gc_pauses.freeze_startup_heap()
    assert dead_ref() is None  # garbage is not frozen alive
    assert frozen == gc.get_freeze_count() > 10_000  # this test process's modules and objects
    assert REGISTRY.get_sample_value("lattice_gc_frozen_objects") == frozen
    # A full collection now walks only what was made since: a new cycle is still freed.
    later = Node()
    later_ref = weakref.ref(later)
    del later
    gc.collect()
    assert later_ref() is None
    assert alive.me is alive
