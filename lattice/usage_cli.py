"""`lattice usage`: the operator's view of metered usage, straight from the store (every account,
or one)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys

from lattice.config import Settings
from lattice.errors import LatticeError
from lattice.server.store import open_store
from lattice.server.store.usage import GROUPS, UsageLedger, UsageQuery, UsageSum

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
        start=args.since or until - dt.timedelta(days=30),
        end=until,
        group_by=tuple(g.strip() for g in args.group_by.split(",") if g.strip()),
        page_size=1000,
    )
    try:
        return asyncio.run(_run(settings, query))
    except LatticeError as error:
        print(f"lattice usage: {error.message}", file=sys.stderr)
        return 2


async def _run(settings: Settings, query: UsageQuery) -> int:
    store = await open_store(settings.database_url, settings.home)
    try:
        ledger = UsageLedger(store)
        rows: list[UsageSum] = []
        token = ""
        while True:
            page, token, total = await ledger.summarize(UsageQuery(**{**query.__dict__, "page_token": token}))
            rows += page
            if not token:
                break
    finally:
        await store.close()
    print("\t".join((*query.group_by, *COLUMNS)))
    for row in [
        *rows,
        UsageSum({g: "TOTAL" if i == 0 else "" for i, g in enumerate(query.group_by)}, *_numbers(total)),
    ]:
        print("\t".join((*(row.keys.get(g, "") for g in query.group_by), *(str(n) for n in _cells(row)))))
    return 0


def _numbers(summed: UsageSum) -> tuple[int, int, int, int, int]:
    return summed.requests, summed.failed_requests, summed.prompt_tokens, summed.completion_tokens, summed.duration_ms


def _cells(summed: UsageSum) -> tuple[int, ...]:
    requests, failed, prompt, completion, duration = _numbers(summed)
    return requests, failed, prompt, completion, summed.total_tokens, duration


def _moment(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
