"""Helpers for MQTT tests through the whole collector: fleets, CollectorService, store, API."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from collector.config import parse_config
from collector.service import CollectorService

T = TypeVar("T")


def unique(prefix: str) -> str:
    """Return a name no other test uses (topics and groups on a shared broker)."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def collector(
    dsn: str, devices: Sequence[Any], data_dir: Path
) -> AsyncIterator[CollectorService]:
    """Run a CollectorService on `dsn` for `devices`, flushing batches every 0.2 s."""
    config = parse_config(
        {
            "version": 1,
            "site": "mqtt-test",
            "data_dir": str(data_dir),
            "store": {"dsn": dsn},
            "pipeline": {"batch_age": 0.2},
        },
        "<test>",
        environ={},
    )
    async with CollectorService(config, devices) as service:
        yield service


async def until(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    within: float,
    every: float = 0.2,
) -> tuple[T, float]:
    """Call `probe` until `done(result)` or `within` seconds pass; return (last, seconds)."""
    started = time.monotonic()
    result = await probe()
    while not done(result) and time.monotonic() - started < within:
        await asyncio.sleep(every)
        result = await probe()
    return result, time.monotonic() - started


def query(dsn: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one read-only query and return its rows."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


SAMPLES_BY_DEVICE = (
    "SELECT d.key, count(*), max(s.ts) FROM sample s JOIN point p ON p.id = s.point_id "
    "JOIN device d ON d.id = p.device_id GROUP BY d.key"
)
