"""Accounts and their developer API keys (`sk_<id>_<secret>`, stored as the secret's hash)."""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass

from sqlalchemy import select, update

from lattice.errors import InvalidArgument, NotFound
from lattice.server.principals import ALL_SCOPES, Principal, parse_scopes
from lattice.server.store.database import Store
from lattice.server.store.schema import Account, ApiKey
from lattice.server.store.tokens import ACCOUNT_ID_PREFIX, API_KEY_PREFIX, digest, new_id, new_secret


@dataclass(frozen=True)
class KeyInfo:
    """A key as listed: never its secret."""

    id: str
    account_id: str
    scopes: tuple[str, ...]
    created_at: dt.datetime
    revoked_at: dt.datetime | None


class ApiKeys:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def create(self, account_id: str, scopes: frozenset[str]) -> tuple[str, KeyInfo]:
        """A new key for `account_id` (the account is created on first use); returns the key once."""
        if not account_id.startswith(ACCOUNT_ID_PREFIX) or len(account_id) <= len(ACCOUNT_ID_PREFIX):
            raise InvalidArgument(f"an account id looks like acct_…, got {account_id!r}", field="account")
        unknown = scopes - ALL_SCOPES
        if unknown or not scopes:
            raise InvalidArgument(
                f"scopes must be among {', '.join(sorted(ALL_SCOPES))}; got {', '.join(sorted(scopes)) or 'none'}",
                field="scopes",
            )
        now = dt.datetime.now(dt.UTC)
        key_id = new_id("", 12)
        secret = new_secret()
        row = ApiKey(
            id=key_id,
            account_id=account_id,
            secret_hash=digest(secret),
            scopes=" ".join(sorted(scopes)),
            created_at=now,
        )
        async with self._store.session() as session, session.begin():
            if await session.get(Account, account_id) is None:
                session.add(Account(id=account_id, created_at=now))
                await session.flush()
            session.add(row)
        return f"{API_KEY_PREFIX}{key_id}_{secret}", _info(row)

    async def list(self, account_id: str | None = None) -> list[KeyInfo]:
        query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
        if account_id:
            query = query.where(ApiKey.account_id == account_id)
        async with self._store.session() as session:
            return [_info(row) for row in (await session.scalars(query)).all()]

    async def revoke(self, key_id: str) -> KeyInfo:
        key_id = key_id.removeprefix(API_KEY_PREFIX).split("_", 1)[0]
        async with self._store.session() as session, session.begin():
            await session.execute(
                update(ApiKey)
                .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
                .values(revoked_at=dt.datetime.now(dt.UTC))
            )
            row = await session.get(ApiKey, key_id)
        if row is None:
            raise NotFound(f"no API key {key_id!r}", reason="API_KEY_NOT_FOUND")
        return _info(row)

    async def authenticate(self, key: str) -> Principal | None:
        """The key's principal, or None when it is not a live key of ours."""
        if not key.startswith(API_KEY_PREFIX):
            return None
        key_id, _, secret = key[len(API_KEY_PREFIX) :].partition("_")
        if not key_id or not secret:
            return None
        async with self._store.session() as session:
            row = await session.get(ApiKey, key_id)
        if row is None or row.revoked_at is not None or not hmac.compare_digest(row.secret_hash, digest(secret)):
            return None
        return Principal("key", row.account_id, parse_scopes(row.scopes), credential_id=row.id)


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.id, row.account_id, tuple(row.scopes.split()), row.created_at, row.revoked_at)
