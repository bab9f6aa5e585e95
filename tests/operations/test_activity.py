"""The dashboard's memory of recent requests: intervals over a sliding window, per account and for the
whole gateway, the latest requests newest first, bounded; a fake clock, no sleeps."""

from __future__ import annotations

from lattice.server.activity import GATEWAY, Activity, FinishedRequest


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def finished(clock: Clock, account: str, outcome: str = "ok", *, tokens: int = 5, ms: int = 100) -> FinishedRequest:
    return FinishedRequest(
        end_time=clock.now,
        request_id=f"r{clock.now}",
        account_id=account,
        model="m",
        backend="mlx",
        outcome=outcome,
        duration_ms=ms,
        first_token_ms=None if outcome != "ok" else ms // 2,
        prompt_tokens=tokens,
        completion_tokens=tokens if outcome == "ok" else 0,
    )


def test_intervals_sum_what_ended_in_them_for_the_gateway_and_each_account() -> None:
    clock = Clock(1_000_000.0)
    activity = Activity(bucket_seconds=10, window_seconds=60, clock=clock)
    activity.record(finished(clock, "a", ms=100))
    activity.record(finished(clock, "a", ms=300))
    clock.now += 10
    activity.record(finished(clock, "b", "queue_full", ms=2))

    everyone = activity.buckets(GATEWAY)
    assert len(everyone) == 6 and everyone[-1].start == 1_000_010  # the window up to now, empty ones included
    assert [b.requests for b in everyone] == [0, 0, 0, 0, 2, 1]
    assert (everyone[-2].mean_duration_ms, everyone[-2].mean_first_token_ms) == (200.0, 100.0)
    assert (everyone[-1].failed_requests, everyone[-1].mean_first_token_ms) == (1, 0.0)
    assert [b.requests for b in activity.buckets("a")] == [0, 0, 0, 0, 2, 0]
    assert [b.completion_tokens for b in activity.buckets("a")][-2] == 10
    assert [b.requests for b in activity.buckets("nobody")] == [0] * 6


def test_intervals_leave_the_window_and_idle_accounts_are_forgotten() -> None:
    clock = Clock(2_000_000.0)
    activity = Activity(bucket_seconds=10, window_seconds=60, clock=clock)
    activity.record(finished(clock, "a"))
    clock.now += 60
    assert sum(b.requests for b in activity.buckets(GATEWAY)) == 0
    assert sum(b.requests for b in activity.buckets("a")) == 0
    assert "a" not in activity._buckets  # nothing is kept for an account idle past the window


def test_recent_requests_newest_first_per_account_and_bounded() -> None:
    clock = Clock(3_000_000.0)
    activity = Activity(recent=4, clock=clock)
    for account in ("a", "b", "a", "b", "a"):
        clock.now += 1
        activity.record(finished(clock, account))
    assert [r.end_time - 3_000_000 for r in activity.recent(GATEWAY, 10)] == [5, 4, 3, 2]  # the first fell off
    assert [r.end_time - 3_000_000 for r in activity.recent("a", 10)] == [5, 3]
    assert [r.end_time - 3_000_000 for r in activity.recent("b", 1)] == [4]
    assert activity.recent("c", 10) == []
