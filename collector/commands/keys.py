"""`tally keys create|list|revoke`: manage API keys (stored hashed; a key is shown once)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.errors import UndefinedTable

from api.auth import Role, create_key, revoke_key
from collector.commands.common import add_config_option, config_from_args
from collector.store import queries


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Register `keys` and its subcommands."""
    keys = sub.add_parser("keys", help="API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    create = keys_sub.add_parser(
        "create", help="create a key and print it once (only the key goes to stdout)"
    )
    create.add_argument(
        "--role", required=True, choices=[r.value for r in Role], help="what the key may do"
    )
    create.add_argument("--label", help="who or what the key is for")
    create.set_defaults(handler=run_create)

    listing = keys_sub.add_parser("list", help="list keys (never their secrets)")
    listing.set_defaults(handler=run_list)

    revoke = keys_sub.add_parser("revoke", help="revoke a key by its prefix")
    revoke.add_argument("prefix", help="the 8 hex digits after tly_")
    revoke.set_defaults(handler=run_revoke)

    for parser in (create, listing, revoke):
        add_config_option(parser)
        parser.add_argument("--dsn", help="connection string (overrides store.dsn)")


def _dsn(args: argparse.Namespace) -> str:
    dsn: str = args.dsn or config_from_args(args).store.dsn
    return dsn


async def _connect(dsn: str) -> AsyncConnection[Any]:
    return await AsyncConnection.connect(dsn, autocommit=True)


def _fail(action: str, exc: psycopg.Error) -> int:
    if isinstance(exc, UndefinedTable):
        print(
            f"tally keys {action}: the database has no api_key table; run `tally db migrate`",
            file=sys.stderr,
        )
    else:
        print(f"tally keys {action}: {exc}".rstrip(), file=sys.stderr)
    return 1


async def _create(dsn: str, role: Role, label: str | None) -> str:
    async with await _connect(dsn) as conn:
        new, row = await create_key(conn, role, label)
    print(
        f"created {row.role} key {row.prefix}"
        + (f" ({row.label})" if row.label else "")
        + "; it is shown once, store it now",
        file=sys.stderr,
    )
    return new.token


def run_create(args: argparse.Namespace) -> int:
    """Create a key; print only the key on stdout, so scripts can capture it."""
    dsn = _dsn(args)
    try:
        token = asyncio.run(_create(dsn, Role(args.role), args.label))
    except psycopg.Error as exc:
        return _fail("create", exc)
    print(token)
    return 0


async def _list(dsn: str) -> list[queries.ApiKeyRow]:
    async with await _connect(dsn) as conn:
        return await queries.list_api_keys(conn)


def _when(ts: Any) -> str:
    return ts.isoformat(timespec="seconds") if ts is not None else "-"


def run_list(args: argparse.Namespace) -> int:
    """Print one line per key: prefix, role, state, created, last used, label."""
    dsn = _dsn(args)
    try:
        rows = asyncio.run(_list(dsn))
    except psycopg.Error as exc:
        return _fail("list", exc)
    print(f"{'PREFIX':<10}{'ROLE':<10}{'STATE':<9}{'CREATED':<27}{'LAST USED':<27}LABEL")
    for row in rows:
        state = "revoked" if row.revoked_at else "active"
        print(
            f"{row.prefix:<10}{row.role:<10}{state:<9}{_when(row.created_at):<27}"
            f"{_when(row.last_used_at):<27}{row.label or ''}"
        )
    return 0


async def _revoke(dsn: str, prefix: str) -> queries.ApiKeyRow | None:
    async with await _connect(dsn) as conn:
        return await revoke_key(conn, prefix)


def run_revoke(args: argparse.Namespace) -> int:
    """Revoke a key; exit 1 when no key has that prefix."""
    dsn = _dsn(args)
    prefix = args.prefix.removeprefix("tly_").split("_", 1)[0]
    try:
        row = asyncio.run(_revoke(dsn, prefix))
    except psycopg.Error as exc:
        return _fail("revoke", exc)
    if row is None:
        print(f"tally keys revoke: no key with prefix {prefix!r}", file=sys.stderr)
        return 1
    print(f"revoked {row.role} key {row.prefix} at {_when(row.revoked_at)}")
    return 0
