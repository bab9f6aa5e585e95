"""One home for protobuf timestamps, which the services, the relay and the daemon all send."""

from __future__ import annotations

import time

from lattice.timestamps import now_timestamp, timestamp_at


def test_now_is_between_the_moments_before_and_after() -> None:
    before = time.time_ns()
    stamp = now_timestamp()
    after = time.time_ns()
    assert before // 1000 <= stamp.ToMicroseconds() <= after // 1000 + 1


def test_a_moment_in_seconds_keeps_its_fraction() -> None:
    assert timestamp_at(1_700_000_000.5).ToJsonString() == "2023-11-14T22:13:20.500Z"
