"""Helpers of `tally report`, `tally snapshot` and `tally evaluate`: options, store, output."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.errors import UndefinedTable

import criteria
from adapters.base import utcnow
from collector.commands.common import add_config_option, config_from_args
from collector.store.snapshot import Evidence, gather
from criteria.report import LANGS


class CommandError(Exception):
    """A command that cannot go on; the message is printed after the command's name."""


def add_programme_options(parser: argparse.ArgumentParser) -> None:
    """Add --program and --tier."""
    parser.add_argument(
        "--program", required=True, choices=criteria.list_programs(), help="programme id"
    )
    parser.add_argument(
        "--tier", required=True, help="tier id or Chinese name (e.g. enterprise or 企业级)"
    )


def add_output_options(parser: argparse.ArgumentParser, formats: list[str], default: str) -> None:
    """Add --format, --lang and -o/--output."""
    parser.add_argument("--format", choices=formats, default=default, help=f"default {default}")
    parser.add_argument(
        "--lang", choices=list(LANGS), default="both", help="label language (default both)"
    )
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """Add the window, simulated and store options of commands that read the store."""
    parser.add_argument(
        "--window", default="30d", help="whole days or hours ending now, e.g. 30d (default 30d)"
    )
    parser.add_argument(
        "--include-simulated",
        action="store_true",
        help="count simulated devices too (the output then says, on every page, it proves nothing)",
    )
    add_config_option(parser)
    parser.add_argument("--dsn", help="connection string (overrides store.dsn)")


def check_programme(program: str, tier: str) -> tuple[criteria.RuleSet, criteria.Tier]:
    """Return the rule set and tier; CommandError lists the valid tiers."""
    ruleset = criteria.load_ruleset(program)
    try:
        return ruleset, ruleset.tier(tier)
    except criteria.UnknownTierError as exc:
        raise CommandError(str(exc)) from None


def evidence_from_store(args: argparse.Namespace) -> Evidence:
    """Read the snapshot and declarations for the window the options name."""
    from api.window import WindowError, resolve_window

    config = config_from_args(args)
    dsn: str = args.dsn or config.store.dsn
    try:
        window = resolve_window(args.window, None, None, utcnow())
    except WindowError as exc:
        raise CommandError(str(exc)) from None

    async def read() -> Evidence:
        async with await AsyncConnection.connect(
            dsn, autocommit=True, connect_timeout=max(1, round(config.store.connect_timeout))
        ) as conn:
            return await gather(
                conn,
                window.start,
                window.end,
                include_simulated=args.include_simulated,
                collector=config.site,
                timezone=config.timezone,
            )

    try:
        return asyncio.run(read())
    except UndefinedTable as exc:
        raise CommandError(f"the store is not migrated ({exc}); run `tally db migrate`") from None
    except psycopg.Error as exc:
        raise CommandError(f"cannot read the store: {exc}".rstrip()) from None


def write_output(text: str, output: Path | None) -> None:
    """Write to the file named by -o (saying where on stderr), else to stdout."""
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot write {output}: {exc}") from None
    print(f"wrote {output}", file=sys.stderr)


def run_guarded(name: str, body: Any, args: argparse.Namespace) -> int:
    """Run a command body; print CommandError as `tally NAME: message` and exit 1."""
    try:
        code: int = body(args)
    except CommandError as exc:
        print(f"tally {name}: {exc}", file=sys.stderr)
        return 1
    return code
