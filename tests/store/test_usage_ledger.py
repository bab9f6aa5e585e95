"""The usage ledger on SQLite and PostgreSQL: what is written is what is summed, by every grouping,
page by page, and never across accounts."""

from __future__ import annotations

import datetime as dt

import pytest

from lattice.errors import InvalidArgument
from lattice.server.store import Store
from lattice.server.store.usage import Metered, UsageLedger, UsageQuery

DAY1 = dt.datetime(2026, 11, 1, 23, 30, tzinfo=dt.UTC)
DAY2 = dt.datetime(2026, 11, 2, 0, 30, tzinfo=dt.UTC)
RANGE = (dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 3, tzinfo=dt.UTC))


def metered(account: str, when: dt.datetime, model: str, prompt: int, completion: int, outcome: str = "ok") -> Metered:
    backend, runtime = ("relay", model.rsplit(":", 1)[-1]) if model.startswith("lattice:personal:") else ("mlx", "")
    return Metered(account, f"key-of-{account}", when, model, backend, runtime, prompt, completion, 100, outcome)


RECORDS = [
    metered("acct_a", DAY1, "smollm2", 10, 5),
    metered("acct_a", DAY1, "smollm2", 20, 7),
    metered("acct_a", DAY2, "lattice:personal:lat_x", 3, 3),
    metered("acct_a", DAY2, "nothing-matches", 0, 0, outcome="model_not_found"),
    metered("acct_b", DAY2, "smollm2", 1000, 1000),
]


async def summarize(
    store: Store, account: str, *group_by: str, page_size: int = 0
) -> tuple[list[dict[str, object]], dict[str, object]]:
    ledger = UsageLedger(store)
    rows, token = [], ""
    while True:
        page, token, total = await ledger.summarize(UsageQuery(account, *RANGE, group_by, page_size, token))
        rows += [
            {**g.keys, "requests": g.requests, "failed": g.failed_requests, "tokens": g.total_tokens} for g in page
        ]
        if not token:
            return rows, {"requests": total.requests, "failed": total.failed_requests, "tokens": total.total_tokens}


async def test_sums_by_model_day_backend_and_runtime(store: Store) -> None:
    await UsageLedger(store).write(RECORDS)
    by_model, total = await summarize(store, "acct_a", "model")
    assert by_model == [
        {"model": "lattice:personal:lat_x", "requests": 1, "failed": 0, "tokens": 6},
        {"model": "nothing-matches", "requests": 1, "failed": 1, "tokens": 0},
        {"model": "smollm2", "requests": 2, "failed": 0, "tokens": 42},
    ]
    assert total == {"requests": 4, "failed": 1, "tokens": 48}
    by_day, _ = await summarize(store, "acct_a", "day", "backend")
    assert [(r["day"], r["backend"], r["requests"]) for r in by_day] == [
        ("2026-11-01", "mlx", 2),
        ("2026-11-02", "mlx", 1),
        ("2026-11-02", "relay", 1),
    ]
    by_runtime, _ = await summarize(store, "acct_a", "runtime", "key")
    assert {(r["runtime"], r["key"]) for r in by_runtime} == {("", "key-of-acct_a"), ("lat_x", "key-of-acct_a")}


async def test_one_account_never_sees_another(store: Store) -> None:
    await UsageLedger(store).write(RECORDS)
    rows, total = await summarize(store, "acct_b", "model")
    assert rows == [{"model": "smollm2", "requests": 1, "failed": 0, "tokens": 2000}] and total["requests"] == 1
    assert (await summarize(store, "acct_nobody"))[1] == {"requests": 0, "failed": 0, "tokens": 0}


async def test_pages_add_up_to_the_whole(store: Store) -> None:
    await UsageLedger(store).write(RECORDS)
    paged, _ = await summarize(store, "acct_a", "model", "day", page_size=1)
    whole, _ = await summarize(store, "acct_a", "model", "day")
    assert paged == whole and len(whole) == 3


async def test_bad_queries_name_the_field(store: Store) -> None:
    ledger = UsageLedger(store)
    with pytest.raises(InvalidArgument) as grouping:
        await ledger.summarize(UsageQuery("acct_a", *RANGE, ("colour",)))
    assert grouping.value.field == "group_by"
    with pytest.raises(InvalidArgument) as backwards:
        await ledger.summarize(UsageQuery("acct_a", RANGE[1], RANGE[0]))
    assert backwards.value.field == "end_time"
    with pytest.raises(InvalidArgument) as token:
        await ledger.summarize(UsageQuery("acct_a", *RANGE, page_token="garbage!"))
    assert token.value.field == "page_token"
