"""`tally import apps|enterprises|users|developers|subscriptions FILE`: bulk registration.

The file (CSV, JSON array or JSON lines; see collector/registry/files.py) is validated
whole, then registered in one transaction: all records or none. The audit log gets ONE
entry for the import, carrying the file name, the SHA-256 of its bytes and the counts.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path
from typing import Any

import psycopg
from psycopg import AsyncConnection

from collector.commands.common import add_config_option, config_from_args
from collector.registry.files import RecordFileError, read_records
from collector.registry.models import RESOURCES, Resource
from collector.store import registry


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Register `import`."""
    parser = sub.add_parser(
        "import",
        help="register apps, enterprises, users, developers or subscriptions from a file",
        description=(
            "Create or update registry records from a CSV (header row), JSON array or JSON "
            "lines file, all or none; one audit entry records the file's SHA-256. Import "
            "enterprises and developers before the apps, users and subscriptions that name them."
        ),
    )
    parser.add_argument("resource", choices=RESOURCES, help="which registry")
    parser.add_argument("file", type=Path, help=".csv, .json, .jsonl or .ndjson")
    add_config_option(parser)
    parser.add_argument("--dsn", help="connection string (overrides store.dsn)")
    parser.set_defaults(handler=run_import)


def actor() -> str:
    """Name the operator running a command, for the audit log."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


async def _import(dsn: str, resource: Resource, file: Path) -> registry.Registered:
    records = read_records(resource, file)
    async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
        return await registry.register_many(
            conn, actor(), resource, records.records, source=file.name, sha256=records.sha256
        )


def run_import(args: argparse.Namespace) -> int:
    """Import one file; print what was created and updated."""
    dsn: str = args.dsn or config_from_args(args).store.dsn
    try:
        result = asyncio.run(_import(dsn, args.resource, args.file))
    except (RecordFileError, registry.RegistryError) as exc:
        print(f"tally import {args.resource}: {exc}; nothing was imported", file=sys.stderr)
        return 1
    except psycopg.Error as exc:
        print(f"tally import {args.resource}: {exc}".rstrip(), file=sys.stderr)
        return 1
    print(f"{args.resource}: {result.created} created, {result.updated} updated from {args.file}")
    return 0
