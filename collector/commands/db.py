"""`tally db migrate`: apply the schema migrations."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import psycopg

from collector.commands.common import add_config_option, config_from_args
from collector.store.migrate import MigrationError, migrate


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Register `db` and its subcommands."""
    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    mig = db_sub.add_parser("migrate", help="apply pending schema migrations (idempotent)")
    add_config_option(mig)
    mig.add_argument("--dsn", help="connection string (overrides store.dsn)")
    mig.set_defaults(handler=run_migrate)


def run_migrate(args: argparse.Namespace) -> int:
    """Apply migrations and say what was done."""
    config = config_from_args(args)
    dsn = args.dsn or config.store.dsn
    try:
        result = migrate(dsn, config.store.timescale)
    except (MigrationError, psycopg.Error) as exc:
        print(f"tally db migrate: {exc}".rstrip(), file=sys.stderr)
        return 1
    for name in result.applied:
        print(f"applied {name}")
    backend = "TimescaleDB" if result.timescale else "plain PostgreSQL"
    counts = f"{result.already} already applied, {len(result.applied)} new"
    print(f"schema up to date ({counts}; {backend})")
    return 0
