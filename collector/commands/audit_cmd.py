"""`tally audit verify`: walk the hash-chained audit log and name the first broken entry."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import psycopg
from psycopg import AsyncConnection

from collector.commands.common import add_config_option, config_from_args
from collector.store import audit


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Register `audit verify`."""
    parser = sub.add_parser("audit", help="the hash-chained audit log")
    audit_sub = parser.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    check = audit_sub.add_parser(
        "verify", help="verify the chain (exit 0 intact, 1 broken; names the first broken entry)"
    )
    add_config_option(check)
    check.add_argument("--dsn", help="connection string (overrides store.dsn)")
    check.set_defaults(handler=run_verify)


async def _verify(dsn: str) -> audit.ChainVerdict:
    async with await AsyncConnection.connect(dsn) as conn:
        return await audit.verify(conn)


def run_verify(args: argparse.Namespace) -> int:
    """Verify the chain and print the verdict."""
    config = config_from_args(args)
    try:
        verdict = asyncio.run(_verify(args.dsn or config.store.dsn))
    except psycopg.Error as exc:
        print(f"tally audit verify: {exc}".rstrip(), file=sys.stderr)
        return 1
    if verdict.ok:
        print(f"audit log intact: {verdict.entries} entries; head {verdict.head or '-'}")
        return 0
    print(
        f"audit log BROKEN at entry {verdict.broken_seq}: {verdict.reason} "
        f"({verdict.entries} entries before it verified)",
        file=sys.stderr,
    )
    return 1
