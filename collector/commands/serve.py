"""`tally serve`: run the HTTP API on config.api.host/port (migrating the store first)."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType
from typing import Any

import psycopg

from collector.commands.common import add_config_option, config_from_args
from collector.logs import configure as configure_logging
from collector.store.migrate import MigrationError, migrate


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Register `serve`."""
    serve = sub.add_parser("serve", help="run the HTTP API (counts, devices, keys, /metrics)")
    add_config_option(serve)
    serve.add_argument("--dsn", help="connection string (overrides store.dsn)")
    serve.add_argument("--host", help="listen address (overrides api.host)")
    serve.add_argument("--port", type=int, help="listen port (overrides api.port)")
    serve.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not apply pending schema migrations at start (default: apply them)",
    )
    serve.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="API processes sharing the port (default 1); each has its own connection "
        "pool and answers /metrics with its own counters",
    )
    serve.set_defaults(handler=run_serve)


def _workers(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"--workers must be 1 or more, got {value}")
    return value


def run_serve(args: argparse.Namespace) -> int:
    """Migrate (unless --no-migrate), then serve until interrupted."""
    import uvicorn  # imported here so other commands start without the web stack

    class _Server(uvicorn.Server):
        """uvicorn's server, remembering whether it stopped for SIGINT."""

        interrupted = False

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            """Note a SIGINT, then shut down as uvicorn does."""
            if sig == signal.SIGINT:
                self.interrupted = True
            super().handle_exit(sig, frame)

    from api.app import create_app
    from api.reporting import signing_key_problem
    from api.settings import Settings
    from collector.gc_tuning import tune_gc

    config = config_from_args(args)
    configure_logging(config.logging.level, config.logging.format)
    settings = Settings.from_config(config, dsn=args.dsn)
    problem = signing_key_problem(settings)
    if problem is not None:
        print(f"tally serve: {problem}", file=sys.stderr)
        return 2
    if not args.no_migrate:
        try:
            result = migrate(settings.dsn, config.store.timescale)
        except (MigrationError, psycopg.Error) as exc:
            print(f"tally serve: cannot migrate the store: {exc}".rstrip(), file=sys.stderr)
            return 1
        for name in result.applied:
            print(f"applied migration {name}", file=sys.stderr)
    host = args.host or config.api.host
    port = config.api.port if args.port is None else args.port
    server_config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_level=config.logging.level.lower(),
        log_config=None,  # keep Tally's handlers (collector/logs.py)
        proxy_headers=False,
    )
    tune_gc()  # before any fork: every worker inherits it (and the frozen start-up heap)
    if args.workers > 1:
        from collector.commands.serve_workers import serve_forked

        return serve_forked(server_config, args.workers)
    server = _Server(server_config)
    server.run()
    if not server.started:
        return 1
    # uvicorn re-raises the SIGINT it shut down for, but asyncio's runner may swallow it
    # when the signal lands as the server task ends: Ctrl-C gives 130 either way.
    return 130 if server.interrupted else 0
