"""`lattice usage`: the operator's view of metered usage, straight from the store (every account,
or one)."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt

from lattice.config import Settings
from lattice.server.store import Store
from lattice.server.store.usage import DEFAULT_RANGE, GROUPS, UsageLedger, UsageQuery, UsageSum
from lattice.store_cli import run_on_store

COLUMNS = ("requests", "failed", "prompt_tokens", "completion_tokens", "total_tokens", "duration_ms")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    usage = commands.add_parser("usage", help="metered usage from the store, summed by group")
    usage.add_argument("--account", help="one account (default: every account)")
    usage.add_argument("--since", type=_moment, help="start, inclusive: a date or an ISO time (default: 30 days ago)")
    usage.add_argument("--until", type=_moment, help="end, exclusive (default: now)")
    usage.add_argument("--group-by", default="", help=f"comma-separated, any of: {', '.join(GROUPS)}")


def run(settings: Settings, args: argparse.Namespace) -> int:
    until = args.until or dt.datetime.now(dt.UTC)
    query = UsageQuery(
        account_id=args.account,
        start=args.since or until - DEFAULT_RANGE,
        end=until,
        group_by=tuple(g.strip() for g in args.group_by.split(",") if g.strip()),
        page_size=1000,
    )

    async def command(store: Store) -> int:
        ledger = UsageLedger(store)
        rows: list[UsageSum] = []
        token = ""
        while True:
            page, token, total = await ledger.summarize(dataclasses.replace(query, page_token=token))
            rows += page
            if not token:
                break
        first = query.group_by[:1]
        print("\t".join((*query.group_by, *COLUMNS)))
        for row in [*rows, dataclasses.replace(total, keys=dict.fromkeys(first, "TOTAL"))]:
            print("\t".join((*(row.keys.get(g, "") for g in query.group_by), *(str(n) for n in _cells(row)))))
        return 0

    return run_on_store(settings, "usage", command)


def _cells(summed: UsageSum) -> tuple[int, ...]:
    return (
        summed.requests,
        summed.failed_requests,
        summed.prompt_tokens,
        summed.completion_tokens,
        summed.total_tokens,
        summed.duration_ms,
    )


def _moment(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
