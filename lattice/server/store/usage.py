"""The usage ledger: metered chats written in batches, read back summed by group."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, case, func, insert, select

from lattice.errors import InvalidArgument
from lattice.server.store.database import Store
from lattice.server.store.schema import UsageRecord

GROUPS = {
    "day": UsageRecord.day,
    "model": UsageRecord.model,
    "backend": UsageRecord.backend,
    "runtime": UsageRecord.runtime_id,
    "key": UsageRecord.key_id,
}
DEFAULT_RANGE = dt.timedelta(days=30)
"""How far back a usage query reaches when it does not say."""
PAGE_SIZE_DEFAULT = 100
PAGE_SIZE_MAX = 1000


@dataclass(frozen=True)
class Metered:
    """One chat as the gateway saw it."""

    account_id: str
    key_id: str
    created_at: dt.datetime
    model: str
    backend: str
    runtime_id: str
    prompt_tokens: int
    completion_tokens: int
    duration_ms: int
    outcome: str


@dataclass(frozen=True)
class UsageQuery:
    account_id: str | None
    """None: every account (the operator's CLI)."""
    start: dt.datetime
    end: dt.datetime
    group_by: tuple[str, ...] = ()
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class UsageSum:
    keys: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    failed_requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    duration_ms: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class UsageLedger:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def write(self, records: Sequence[Metered]) -> None:
        if not records:
            return
        rows = [{**r.__dict__, "day": r.created_at.astimezone(dt.UTC).strftime("%Y-%m-%d")} for r in records]
        async with self._store.session() as session, session.begin():
            await session.execute(insert(UsageRecord), rows)

    async def summarize(self, query: UsageQuery) -> tuple[list[UsageSum], str, UsageSum]:
        """The groups of one page, the next page's token, and the whole range's total."""
        unknown = [g for g in query.group_by if g not in GROUPS]
        if unknown:
            raise InvalidArgument(f"groupBy takes {', '.join(GROUPS)}; not {', '.join(unknown)}", field="group_by")
        if query.page_size < 0:
            raise InvalidArgument("pageSize must not be negative", field="page_size")
        if query.end <= query.start:
            raise InvalidArgument("endTime must be after startTime", field="end_time")
        size = min(query.page_size or PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX)
        offset = _decode_offset(query.page_token)
        group_by = list(dict.fromkeys(query.group_by))
        columns = [GROUPS[g] for g in group_by]
        where = [UsageRecord.created_at >= query.start, UsageRecord.created_at < query.end]
        if query.account_id is not None:
            where.append(UsageRecord.account_id == query.account_id)
        paged = select(*columns, *_sums()).where(*where).group_by(*columns).order_by(*columns)
        total = select(*_sums()).where(*where)
        async with self._store.session() as session:
            rows = (await session.execute(paged.offset(offset).limit(size + 1))).all()
            whole = (await session.execute(total)).one()
        groups = [_sum(dict(zip(group_by, row[: len(group_by)], strict=True)), row[len(group_by) :]) for row in rows]
        token = _encode_offset(offset + size) if len(groups) > size else ""
        return groups[:size], token, _sum({}, tuple(whole))


def _sums() -> list[ColumnElement[int]]:
    failed = case((UsageRecord.outcome == "ok", 0), else_=1)
    return [
        func.count(UsageRecord.id),
        func.coalesce(func.sum(failed), 0),
        func.coalesce(func.sum(UsageRecord.prompt_tokens), 0),
        func.coalesce(func.sum(UsageRecord.completion_tokens), 0),
        func.coalesce(func.sum(UsageRecord.duration_ms), 0),
    ]


def _sum(keys: dict[str, str], values: Sequence[object]) -> UsageSum:
    requests, failed, prompt, completion, duration = (int(v or 0) for v in values)  # type: ignore[call-overload]
    return UsageSum({k: str(v) for k, v in keys.items()}, requests, failed, prompt, completion, duration)


def _encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o{offset}".encode()).decode().rstrip("=")


def _decode_offset(token: str) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if not text.startswith("o"):
            raise ValueError(text)
        return int(text[1:])
    except ValueError as error:
        raise InvalidArgument("pageToken is not one this gateway issued", field="page_token") from error
