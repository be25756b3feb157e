"""`tally collect` and `tally run`: the collector alone, or collector and API together."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from collector.commands.common import add_config_option, config_from_args
from collector.config import TallyConfig
from collector.gc_tuning import tune_gc
from collector.logs import configure as configure_logging
from collector.runtime import ApiServer, stop_on_signals
from collector.service import CollectorService
from collector.store.migrate import MigrationError


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Register `collect` and `run`."""
    collect = sub.add_parser("collect", help="run the collector (adapters → pipeline → store)")
    add_config_option(collect)
    collect.set_defaults(handler=run_collect, with_api=False)
    run = sub.add_parser("run", help="run the collector and the HTTP API in one process")
    add_config_option(run)
    run.set_defaults(handler=run_collect, with_api=True)


async def collect(config: TallyConfig, with_api: bool, stop: asyncio.Event) -> int:
    """Run until `stop` is set; return an exit code."""
    service = CollectorService(config)
    api: ApiServer | None = None
    try:
        await service.start()
    except MigrationError as exc:
        print(f"tally: cannot use the store: {exc}", file=sys.stderr)
        return 1
    try:
        if with_api:
            from api.app import create_app
            from api.settings import Settings

            api = ApiServer(
                create_app(Settings.from_config(config), control=service.control),
                config.api.host,
                config.api.port,
                log_level=config.logging.level,
            )
            await api.start()
            print(f"API listening on {api.url} (OpenAPI at {api.url}/docs)", flush=True)
        elif config.metrics.port:
            start_metrics_listener(config.metrics.host, config.metrics.port)
            print(
                f"metrics at http://{config.metrics.host}:{config.metrics.port}/metrics",
                flush=True,
            )
        await stop.wait()
    finally:
        if api is not None:
            await api.stop()
        report = await service.stop()
    return 0 if not report.samples_dropped else 3


def start_metrics_listener(host: str, port: int) -> None:
    """Serve the collector's Prometheus metrics on host:port (a daemon thread)."""
    from prometheus_client import start_http_server

    from collector import metrics

    start_http_server(port, addr=host, registry=metrics.REGISTRY)


def run_collect(args: argparse.Namespace) -> int:
    """Load the configuration and run until SIGINT/SIGTERM."""
    config = config_from_args(args)
    configure_logging(config.logging.level, config.logging.format)
    if args.with_api:
        from api.reporting import signing_key_problem
        from api.settings import Settings

        problem = signing_key_problem(Settings.from_config(config))
        if problem is not None:
            print(f"tally run: {problem}", file=sys.stderr)
            return 2
    tune_gc()

    async def main() -> int:
        stop = asyncio.Event()
        with stop_on_signals(stop):
            return await collect(config, args.with_api, stop)

    return asyncio.run(main())
