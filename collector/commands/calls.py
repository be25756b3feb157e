"""`tally calls import FILE` (access logs) and `tally calls consume` (an MQTT topic)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg
from psycopg import AsyncConnection

from adapters.mqtt.tls_files import tls_files_problem
from collector.calls.files import NOT_JSON, read_events
from collector.calls.mqtt import DEFAULT_TOPIC, CallConsumer
from collector.commands.common import add_config_option, config_from_args
from collector.logs import configure as configure_logging
from collector.runtime import stop_on_signals
from collector.store.calls import CallIngest, IngestResult, ZoneMismatch

SHOWN_REJECTIONS = 20
PASSWORD_VAR = "TALLY_MQTT_PASSWORD"


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Register `calls` and its subcommands."""
    calls = sub.add_parser("calls", help="call events of models, algorithms, APPs and tools")
    calls_sub = calls.add_subparsers(dest="calls_command", metavar="ACTION", required=True)

    imp = calls_sub.add_parser(
        "import",
        help="store the call events of an access log (JSON lines or CSV)",
        description=(
            "Each event is stored once (by event id; importing a file again stores nothing "
            "new). Bad events are reported with their line and skipped; the rest are stored. "
            "Exit status 1 when any event was rejected."
        ),
    )
    imp.add_argument("file", type=Path, help=".jsonl/.ndjson/.log (JSON lines) or .csv")
    imp.add_argument("--batch-size", type=int, default=5000, help="events per transaction")
    imp.set_defaults(handler=run_import)

    consume = calls_sub.add_parser(
        "consume", help="store call events published on an MQTT topic until interrupted"
    )
    consume.add_argument("--broker", required=True, help="mqtt://host:port or mqtts://host:port")
    consume.add_argument(
        "--topic", default=DEFAULT_TOPIC, help=f"topic filter (default {DEFAULT_TOPIC})"
    )
    consume.add_argument("--qos", type=int, choices=(0, 1, 2), default=1)
    consume.add_argument("--client-id", default="", help="MQTT client id (default: random)")
    consume.add_argument(
        "--session",
        choices=("clean", "persistent"),
        default="clean",
        help="persistent: the broker keeps the subscription and queues QoS 1/2 call messages "
        "while the consumer is away (needs --client-id); default clean",
    )
    login = consume.add_argument_group(
        "login and TLS",
        f"The password is read from --password-file (its first line) or from {PASSWORD_VAR}, "
        "never from the command line. A CA or client certificate turns TLS on, as mqtts:// "
        "does; without --ca-file the system's CAs are trusted.",
    )
    login.add_argument("--username", help="MQTT user name")
    login.add_argument("--password-file", type=Path, help="file whose first line is the password")
    login.add_argument("--ca-file", type=Path, help="PEM CA bundle that signed the broker's cert")
    login.add_argument("--cert-file", type=Path, help="PEM client certificate")
    login.add_argument("--key-file", type=Path, help="PEM private key of --cert-file (unencrypted)")
    consume.set_defaults(handler=run_consume)

    for parser in (imp, consume):
        add_config_option(parser)
        parser.add_argument("--dsn", help="connection string (overrides store.dsn)")


async def _import(dsn: str, zone: str, file: Path, batch_size: int) -> tuple[int, int, list[str]]:
    ingest = CallIngest(zone, source="file")
    stored = duplicates = 0
    problems: list[str] = []

    async def flush(lines: list[int], raw: list[Any]) -> None:
        nonlocal stored, duplicates
        result: IngestResult = await ingest.ingest(conn, raw)
        stored += result.stored
        duplicates += result.duplicates
        problems.extend(f"line {lines[r.index]}: {r.reason}" for r in result.rejected)

    async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
        lines: list[int] = []
        raw: list[Any] = []
        for number, item in read_events(file):
            if isinstance(item, str) and item.startswith(NOT_JSON):
                problems.append(f"line {number}: {item}")
                continue
            lines.append(number)
            raw.append(item)
            if len(raw) >= batch_size:
                await flush(lines, raw)
                lines, raw = [], []
        if raw:
            await flush(lines, raw)
    return stored, duplicates, problems


def run_import(args: argparse.Namespace) -> int:
    """Import an access log; print the counts and the first rejections."""
    config = config_from_args(args)
    dsn: str = args.dsn or config.store.dsn
    if not 1 <= args.batch_size <= 10_000:
        print("tally calls import: --batch-size must be 1..10000", file=sys.stderr)
        return 2
    try:
        stored, duplicates, problems = asyncio.run(
            _import(dsn, config.timezone, args.file, args.batch_size)
        )
    except OSError as exc:
        print(f"tally calls import: {args.file}: {exc.strerror}", file=sys.stderr)
        return 1
    except (ZoneMismatch, psycopg.Error) as exc:
        print(f"tally calls import: {exc}".rstrip(), file=sys.stderr)
        return 1
    print(
        f"{args.file}: {stored} call events stored, {duplicates} already recorded, "
        f"{len(problems)} rejected"
    )
    for problem in problems[:SHOWN_REJECTIONS]:
        print(f"  {problem}", file=sys.stderr)
    if len(problems) > SHOWN_REJECTIONS:
        print(f"  ... and {len(problems) - SHOWN_REJECTIONS} more", file=sys.stderr)
    return 1 if problems else 0


def broker_options(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Any]:
    """Return the session, login and TLS options of `calls consume` (ValueError: a bad one)."""
    options: dict[str, Any] = {}
    if args.session == "persistent":
        if not args.client_id:
            raise ValueError("--session persistent needs --client-id (the broker keys the session)")
        options["persistent_session"] = True
    password: str | None = environ.get(PASSWORD_VAR)
    if args.password_file is not None:
        try:
            password = args.password_file.read_text().splitlines()[0]
        except OSError as exc:
            raise ValueError(f"--password-file {args.password_file}: {exc.strerror}") from exc
        except IndexError:
            raise ValueError(f"--password-file {args.password_file} is empty") from None
    if password is not None and args.username is None:
        source = "--password-file" if args.password_file is not None else PASSWORD_VAR
        raise ValueError(f"a password ({source}) needs --username")
    if args.username is not None:
        options.update(username=args.username, password=password)
    if args.ca_file or args.cert_file or args.key_file:
        problem = tls_files_problem(args.ca_file, args.cert_file, args.key_file)
        if problem is not None:
            for name in ("ca_file", "cert_file", "key_file"):  # as the options are spelled
                problem = problem.replace(name, "--" + name.replace("_", "-"))
            raise ValueError(problem)
        options["tls"] = True
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(args, name)
            options[name] = str(path) if path is not None else None
    return options


async def _consume(args: argparse.Namespace, dsn: str, zone: str, options: dict[str, Any]) -> None:
    consumer = CallConsumer(
        args.broker,
        dsn,
        zone,
        topic=args.topic,
        qos=args.qos,
        client_id=args.client_id,
        broker_options=options,
    )
    stop = asyncio.Event()
    with stop_on_signals(stop):
        stats = await consumer.run(stop)
    print(
        f"{stats.messages} messages ({stats.bad_messages} bad), {stats.stored} call events "
        f"stored, {stats.duplicates} already recorded, {stats.rejected} rejected"
    )


def run_consume(args: argparse.Namespace) -> int:
    """Consume until SIGINT/SIGTERM."""
    config = config_from_args(args)
    configure_logging(config.logging.level, config.logging.format)
    dsn: str = args.dsn or config.store.dsn
    try:
        options = broker_options(args, os.environ)
        asyncio.run(_consume(args, dsn, config.timezone, options))
    except ValueError as exc:
        print(f"tally calls consume: {exc}", file=sys.stderr)
        return 2
    return 0
