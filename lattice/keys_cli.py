"""`lattice keys create|list|revoke`: the operator's commands for developer API keys, run against the
store directly (the gateway need not be running)."""

from __future__ import annotations

import argparse

from lattice.config import Settings
from lattice.server.principals import INFERENCE, parse_scopes
from lattice.server.store import Store
from lattice.server.store.accounts import ApiKeys, KeyInfo
from lattice.store_cli import run_on_store


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="create, list and revoke developer API keys (sk_…)")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    create = actions.add_parser("create", help="make a key and print it (only the key, once)")
    create.add_argument("--account", required=True, help="the account it acts for, e.g. acct_demo (made if new)")
    create.add_argument(
        "--scopes",
        default=INFERENCE,
        help=f"comma-separated; default {INFERENCE}. Also: lattice:compute:personal_runtime:manage",
    )
    listing = actions.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--account", help="only this account's")
    revoke = actions.add_parser("revoke", help="revoke a key by its id (or the key itself)")
    revoke.add_argument("key_id")


def run(settings: Settings, args: argparse.Namespace) -> int:
    async def command(store: Store) -> int:
        keys = ApiKeys(store)
        if args.keys_command == "create":
            key, _ = await keys.create(args.account, parse_scopes(args.scopes))
            print(key)
        elif args.keys_command == "list":
            for info in await keys.list(args.account):
                print(_line(info))
        else:
            print(_line(await keys.revoke(args.key_id)))
        return 0

    return run_on_store(settings, "keys", command)


def _line(info: KeyInfo) -> str:
    state = f"revoked {info.revoked_at:%Y-%m-%dT%H:%M:%SZ}" if info.revoked_at else "active"
    return f"{info.id}\t{info.account_id}\t{','.join(info.scopes)}\t{info.created_at:%Y-%m-%dT%H:%M:%SZ}\t{state}"
