"""Personal runtime records, their bootstrap tokens and daemon credentials.

A token is redeemed with one conditional UPDATE (`used_at IS NULL AND expires_at > now`), so of
two concurrent redemptions exactly one changes a row: that is the atomicity, on SQLite and
PostgreSQL alike, without locks held across calls.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, or_, select, update

from lattice.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from lattice.server.store.database import Store
from lattice.server.store.schema import Account, BootstrapToken, PersonalRuntimeRecord
from lattice.server.store.tokens import (
    BOOTSTRAP_TOKEN_PREFIX,
    DAEMON_CREDENTIAL_PREFIX,
    RUNTIME_ID_PREFIX,
    digest,
    new_id,
    new_secret,
)

EXECUTION_BACKENDS = ("local-model", "assistant-runtime")
TOKEN_TTL_DEFAULT = 600
TOKEN_TTL_RANGE = (60, 3600)
PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 500


@dataclass(frozen=True)
class Redemption:
    record: PersonalRuntimeRecord
    daemon_credential: str


class RuntimeRecords:
    def __init__(self, store: Store, clock: Callable[[], dt.datetime] | None = None) -> None:
        self._store = store
        self._now = clock or _now

    async def create(self, account_id: str, display_name: str, execution_backend: str) -> PersonalRuntimeRecord:
        display_name = display_name.strip()
        if not display_name or len(display_name) > 200:
            raise InvalidArgument("displayName must be 1 to 200 characters", field="display_name")
        if execution_backend not in EXECUTION_BACKENDS:
            raise InvalidArgument(
                f"executionBackend must be one of {', '.join(EXECUTION_BACKENDS)}, got {execution_backend!r}",
                field="execution_backend",
            )
        now = self._now()
        record = PersonalRuntimeRecord(
            lattice_id=new_id(RUNTIME_ID_PREFIX),
            account_id=account_id,
            display_name=display_name,
            execution_backend=execution_backend,
            created_at=now,
            updated_at=now,
        )
        async with self._store.session() as session, session.begin():
            if await session.get(Account, account_id) is None:
                session.add(Account(id=account_id, created_at=now))
                await session.flush()
            session.add(record)
        return record

    async def list(
        self, account_id: str, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[PersonalRuntimeRecord], str]:
        """Newest first; the token is the last row's (created_at, lattice_id), so pages stay stable
        while records are added."""
        if page_size < 0:
            raise InvalidArgument("pageSize must not be negative", field="page_size")
        size = min(page_size or PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX)
        query = select(PersonalRuntimeRecord).where(PersonalRuntimeRecord.account_id == account_id)
        if page_token:
            created, lattice_id = _decode_page_token(page_token)
            query = query.where(
                or_(
                    PersonalRuntimeRecord.created_at < created,
                    and_(PersonalRuntimeRecord.created_at == created, PersonalRuntimeRecord.lattice_id < lattice_id),
                )
            )
        query = query.order_by(PersonalRuntimeRecord.created_at.desc(), PersonalRuntimeRecord.lattice_id.desc())
        async with self._store.session() as session:
            rows = list((await session.scalars(query.limit(size + 1))).all())
        if len(rows) <= size:
            return rows, ""
        rows = rows[:size]
        return rows, _encode_page_token(rows[-1])

    async def list_active(self, account_id: str | None, limit: int) -> Sequence[PersonalRuntimeRecord]:
        """Runtimes not revoked, newest first, at most `limit`: one account's, or every account's (None)."""
        query = select(PersonalRuntimeRecord).where(PersonalRuntimeRecord.revoked_at.is_(None))
        if account_id is not None:
            query = query.where(PersonalRuntimeRecord.account_id == account_id)
        query = query.order_by(PersonalRuntimeRecord.created_at.desc(), PersonalRuntimeRecord.lattice_id.desc())
        async with self._store.session() as session:
            return (await session.scalars(query.limit(limit))).all()

    async def get(self, account_id: str, lattice_id: str) -> PersonalRuntimeRecord:
        """The account's runtime; another account's is NOT_FOUND, exactly like a missing one."""
        async with self._store.session() as session:
            record = await session.get(PersonalRuntimeRecord, lattice_id)
        if record is None or record.account_id != account_id:
            raise NotFound(f"no personal runtime {lattice_id!r}", reason="RUNTIME_NOT_FOUND")
        return record

    async def revoke(self, account_id: str, lattice_id: str) -> PersonalRuntimeRecord:
        await self.get(account_id, lattice_id)
        now = self._now()
        async with self._store.session() as session, session.begin():
            await session.execute(
                update(PersonalRuntimeRecord)
                .where(PersonalRuntimeRecord.lattice_id == lattice_id, PersonalRuntimeRecord.revoked_at.is_(None))
                .values(revoked_at=now, updated_at=now)
            )
        return await self.get(account_id, lattice_id)

    async def mint_bootstrap_token(
        self, account_id: str, lattice_id: str, ttl_seconds: int = 0
    ) -> tuple[str, dt.datetime]:
        ttl = ttl_seconds or TOKEN_TTL_DEFAULT
        low, high = TOKEN_TTL_RANGE
        if not low <= ttl <= high:
            raise InvalidArgument(f"ttlSeconds must be between {low} and {high}, got {ttl}", field="ttl_seconds")
        record = await self.get(account_id, lattice_id)
        if record.revoked_at is not None:
            raise PermissionDenied(
                f"personal runtime {lattice_id} is revoked: it cannot be paired again", reason="RUNTIME_REVOKED"
            )
        token = BOOTSTRAP_TOKEN_PREFIX + new_secret()
        now = self._now()
        expires = now + dt.timedelta(seconds=ttl)
        async with self._store.session() as session, session.begin():
            session.add(
                BootstrapToken(token_hash=digest(token), lattice_id=lattice_id, created_at=now, expires_at=expires)
            )
        return token, expires

    async def redeem(self, token: str, public_key: bytes) -> Redemption:
        """Spends `token` once and pairs its runtime: a new daemon credential and the daemon's key."""
        if len(public_key) != 32:
            raise InvalidArgument("publicKey must be a 32-byte X25519 key (base64 in JSON)", field="public_key")
        token_hash = digest(token)
        now = self._now()
        credential = DAEMON_CREDENTIAL_PREFIX + new_secret()
        async with self._store.session() as session, session.begin():
            row = await session.get(BootstrapToken, token_hash)
            if row is None:
                raise Unauthenticated("the bootstrap token is not valid", reason="BOOTSTRAP_TOKEN_INVALID")
            record = await session.get(PersonalRuntimeRecord, row.lattice_id)
            assert record is not None  # a foreign key
            if record.revoked_at is not None:
                raise Unauthenticated(f"personal runtime {record.lattice_id} is revoked", reason="RUNTIME_REVOKED")
            spent = await session.execute(
                update(BootstrapToken)
                .where(
                    BootstrapToken.token_hash == token_hash,
                    BootstrapToken.used_at.is_(None),
                    BootstrapToken.expires_at > now,
                )
                .values(used_at=now)
            )
            if spent.rowcount != 1:  # type: ignore[attr-defined]  # a CursorResult for UPDATE
                if row.used_at is not None or row.expires_at > now:
                    raise Unauthenticated("the bootstrap token was already used", reason="BOOTSTRAP_TOKEN_USED")
                raise Unauthenticated("the bootstrap token has expired", reason="BOOTSTRAP_TOKEN_EXPIRED")
            await session.execute(
                update(PersonalRuntimeRecord)
                .where(PersonalRuntimeRecord.lattice_id == record.lattice_id)
                .values(public_key=public_key, credential_hash=digest(credential), paired_at=now, updated_at=now)
            )
        async with self._store.session() as session:
            paired = await session.get(PersonalRuntimeRecord, record.lattice_id)
        assert paired is not None
        return Redemption(paired, credential)

    async def by_id(self, lattice_id: str) -> PersonalRuntimeRecord | None:
        async with self._store.session() as session:
            return await session.get(PersonalRuntimeRecord, lattice_id)

    async def by_credential(self, credential: str) -> PersonalRuntimeRecord | None:
        """The runtime a daemon credential belongs to (revoked ones included: the caller decides)."""
        if not credential.startswith(DAEMON_CREDENTIAL_PREFIX):
            return None
        async with self._store.session() as session:
            return (
                await session.scalars(
                    select(PersonalRuntimeRecord).where(PersonalRuntimeRecord.credential_hash == digest(credential))
                )
            ).one_or_none()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _encode_page_token(row: PersonalRuntimeRecord) -> str:
    raw = json.dumps([row.created_at.isoformat(), row.lattice_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_page_token(token: str) -> tuple[dt.datetime, str]:
    try:
        created, lattice_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return dt.datetime.fromisoformat(created), str(lattice_id)
    except (ValueError, TypeError) as error:
        raise InvalidArgument("pageToken is not one this gateway issued", field="page_token") from error
