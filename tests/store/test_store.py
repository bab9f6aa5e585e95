"""The store on real databases, SQLite and PostgreSQL (a throwaway server from scripts/postgres.sh):
keys, runtime records, bootstrap tokens (single use, TTL, concurrent redemption), pagination and
account isolation. The same queries must hold on both."""

from __future__ import annotations

import asyncio
import datetime as dt
import pathlib

import pytest

from lattice.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from lattice.server.principals import INFERENCE, MANAGE_RUNTIMES
from lattice.server.store import Store, open_store
from lattice.server.store.accounts import ApiKeys
from lattice.server.store.runtimes import RuntimeRecords

KEY = b"k" * 32


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


async def test_keys_are_stored_hashed_and_checked(store: Store, tmp_path: pathlib.Path) -> None:
    keys = ApiKeys(store)
    key, info = await keys.create("acct_demo", frozenset({INFERENCE}))
    assert key.startswith(f"sk_{info.id}_")
    principal = await keys.authenticate(key)
    assert principal is not None and principal.account_id == "acct_demo" and principal.scopes == {INFERENCE}
    if store.is_sqlite:
        assert key.split("_", 2)[2].encode() not in (tmp_path / "lattice.db").read_bytes()  # only its hash
    assert await keys.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    await keys.revoke(info.id)
    assert await keys.authenticate(key) is None
    assert (await keys.list("acct_demo"))[0].revoked_at is not None


async def test_key_creation_checks_account_and_scopes(store: Store) -> None:
    keys = ApiKeys(store)
    with pytest.raises(InvalidArgument, match="acct_"):
        await keys.create("demo", frozenset({INFERENCE}))
    with pytest.raises(InvalidArgument, match="scopes"):
        await keys.create("acct_demo", frozenset({"lattice:compute:everything"}))


async def test_a_token_is_redeemed_once_even_concurrently(store: Store) -> None:
    records = RuntimeRecords(store)
    runtime = await records.create("acct_demo", "Mac Studio", "local-model")
    token, _ = await records.mint_bootstrap_token("acct_demo", runtime.lattice_id, 600)
    outcomes = await asyncio.gather(*(records.redeem(token, KEY) for _ in range(8)), return_exceptions=True)
    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    losers = [o for o in outcomes if isinstance(o, Unauthenticated)]
    assert len(winners) == 1 and len(losers) == 7
    assert {loser.reason for loser in losers} == {"BOOTSTRAP_TOKEN_USED"}
    assert winners[0].daemon_credential.startswith("lrd_")
    assert (await records.by_credential(winners[0].daemon_credential)) is not None


async def test_expired_and_unknown_tokens_are_refused(store: Store) -> None:
    clock = Clock()
    records = RuntimeRecords(store, clock)
    runtime = await records.create("acct_demo", "laptop", "assistant-runtime")
    token, expires = await records.mint_bootstrap_token("acct_demo", runtime.lattice_id, 60)
    assert expires == clock.now + dt.timedelta(seconds=60)
    clock.now += dt.timedelta(seconds=61)
    with pytest.raises(Unauthenticated) as expired:
        await records.redeem(token, KEY)
    assert expired.value.reason == "BOOTSTRAP_TOKEN_EXPIRED"
    with pytest.raises(Unauthenticated) as unknown:
        await records.redeem("plrt_v1_nonsense", KEY)
    assert unknown.value.reason == "BOOTSTRAP_TOKEN_INVALID"
    for ttl in (59, 3601):
        with pytest.raises(InvalidArgument, match="ttlSeconds"):
            await records.mint_bootstrap_token("acct_demo", runtime.lattice_id, ttl)


async def test_a_revoked_runtime_refuses_tokens_old_and_new(store: Store) -> None:
    records = RuntimeRecords(store)
    runtime = await records.create("acct_demo", "laptop", "local-model")
    token, _ = await records.mint_bootstrap_token("acct_demo", runtime.lattice_id)
    revoked = await records.revoke("acct_demo", runtime.lattice_id)
    assert revoked.revoked_at is not None
    with pytest.raises(Unauthenticated) as old:
        await records.redeem(token, KEY)
    assert old.value.reason == "RUNTIME_REVOKED"
    with pytest.raises(PermissionDenied) as new:
        await records.mint_bootstrap_token("acct_demo", runtime.lattice_id)
    assert new.value.reason == "RUNTIME_REVOKED"
    listed, _ = await records.list("acct_demo")
    assert [r.lattice_id for r in listed] == [runtime.lattice_id]  # the record stays


async def test_another_accounts_runtime_does_not_exist(store: Store) -> None:
    records = RuntimeRecords(store)
    runtime = await records.create("acct_alice", "alice's", "local-model")
    for call in (
        records.get("acct_mallory", runtime.lattice_id),
        records.revoke("acct_mallory", runtime.lattice_id),
        records.mint_bootstrap_token("acct_mallory", runtime.lattice_id),
    ):
        with pytest.raises(NotFound) as refused:
            await call
        assert refused.value.reason == "RUNTIME_NOT_FOUND"
    assert (await records.list("acct_mallory"))[0] == []


async def test_pages_cover_every_runtime_once_newest_first(store: Store) -> None:
    clock = Clock()
    records = RuntimeRecords(store, clock)
    made = []
    for i in range(7):
        clock.now += dt.timedelta(seconds=1 if i != 3 else 0)  # two share a creation time
        made.append((await records.create("acct_demo", f"machine {i}", "local-model")).lattice_id)
    seen: list[str] = []
    token = ""
    while True:
        page, token = await records.list("acct_demo", 3, token)
        assert len(page) <= 3
        seen += [r.lattice_id for r in page]
        if not token:
            break
    assert sorted(seen) == sorted(made) and len(seen) == 7
    created = [(await records.get("acct_demo", i)).created_at for i in seen]
    assert created == sorted(created, reverse=True)
    with pytest.raises(InvalidArgument, match="pageToken"):
        await records.list("acct_demo", 3, "not-a-token")


async def test_the_schema_upgrade_is_idempotent(tmp_path: pathlib.Path) -> None:
    first = await open_store(None, tmp_path)
    await ApiKeys(first).create("acct_demo", frozenset({MANAGE_RUNTIMES}))
    await first.close()
    again = await open_store(None, tmp_path)
    assert len(await ApiKeys(again).list()) == 1
    await again.close()
