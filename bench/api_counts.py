"""Counts API benchmark: /v1/counts, its series and /v1/devices over a 30-day rollup.

Usage::

    python bench/api_counts.py [--devices 5000] [--points-per-device 10] [--days 30]
                               [--requests 20]

Starts its own ThrowawayPostgres, migrates it and fills the rollups with SQL as the
writer would leave them after `--days` of hourly activity: one device_activity row
per device and hour, one point_activity row per point and day (90 % of devices
connected, 10 % simulated, industries spread over process and discrete codes).
Then it runs the API in-process (ASGI, lifespan included) and times requests.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
from psycopg import AsyncConnection

from api.app import create_app
from api.auth import Role, create_key
from api.settings import Settings
from collector.embedded.postgres import ThrowawayPostgres
from collector.store.migrate import migrate

INDUSTRIES = ["C26", "C25", "C34", "C38", "C39", "C13", "C31", "D44"]


def fill(dsn: str, devices: int, points: int, days: int, end: datetime) -> None:
    """Write devices, points and their rollups with set-based SQL."""
    start = end - timedelta(days=days)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO device (key, protocol, endpoint, device_type, industry, region,"
            " simulated, status)"
            " SELECT 'dev-' || lpad(i::text, 6, '0'), (ARRAY['modbus','opcua','mqtt'])[1 + i %% 3],"
            " 'tcp://10.0.0.1/' || i, 'type-' || (i %% 40), (%s::text[])[1 + i %% %s],"
            " '3601' || lpad((i %% 12)::text, 2, '0'), i %% 10 = 0,"
            " CASE WHEN i %% 5 = 0 THEN 'offline' ELSE 'online' END"
            " FROM generate_series(1, %s) i",
            (INDUSTRIES, len(INDUSTRIES), devices),
        )
        conn.execute(
            "INSERT INTO point (device_id, key, address, data_type)"
            " SELECT d.id, 'p' || j, '4000' || j, 'float32'"
            " FROM device d CROSS JOIN generate_series(1, %s) j",
            (points,),
        )
        # 90 % of devices active every hour; the rest only imported history.
        conn.execute(
            "INSERT INTO device_activity (device_id, hour, samples, good_samples,"
            " imported_samples, first_ts, last_ts, first_good_ts, last_good_ts)"
            " SELECT d.id, h, CASE WHEN d.id %% 10 <> 7 THEN 3600 * %s ELSE 0 END,"
            " CASE WHEN d.id %% 10 <> 7 THEN 3500 * %s ELSE 0 END,"
            " CASE WHEN d.id %% 10 = 7 THEN 100 ELSE 0 END,"
            " CASE WHEN d.id %% 10 <> 7 THEN h END,"
            " CASE WHEN d.id %% 10 <> 7 THEN h + interval '59 minutes' END,"
            " CASE WHEN d.id %% 10 <> 7 THEN h END,"
            " CASE WHEN d.id %% 10 <> 7 THEN h + interval '59 minutes' END"
            " FROM device d CROSS JOIN generate_series(%s::timestamptz, %s::timestamptz"
            " - interval '1 hour', interval '1 hour') h",
            (points, points, start, end),
        )
        conn.execute(
            "INSERT INTO point_activity (point_id, day, good_hours)"
            " SELECT p.id, day::date, %s"
            " FROM point p JOIN device d ON d.id = p.device_id AND d.id %% 10 <> 7"
            " CROSS JOIN generate_series(%s::date, %s::date, interval '1 day') day",
            ((1 << 24) - 1, start.date(), (end - timedelta(hours=1)).date()),
        )
        conn.execute("ANALYZE")


async def measure(dsn: str, requests: int) -> dict[str, list[float]]:
    """Time each endpoint `requests` times; return seconds per request."""
    async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
        new, _ = await create_key(conn, Role.AUDITOR, "bench")
    headers = {"Authorization": f"Bearer {new.token}"}
    app = create_app(Settings(dsn=dsn, pool_max_size=4))
    paths = {
        "counts 30d": "/v1/counts?window=30d",
        "counts 30d group_by=industry": "/v1/counts?window=30d&group_by=industry",
        "counts series 30d step=1d": "/v1/counts/series?window=30d&step=1d",
        "devices connected, page of 100": "/v1/devices?status=connected&limit=100&offset=1000",
        "device detail": "/v1/devices/42",
    }
    times: dict[str, list[float]] = {name: [] for name in paths}
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
    ):
        for name, path in paths.items():
            await client.get(path, headers=headers)  # warm the cache
            for _ in range(requests):
                t0 = time.perf_counter()
                answer: httpx.Response = await client.get(path, headers=headers)
                times[name].append(time.perf_counter() - t0)
                assert answer.status_code == 200, answer.text
    return times


def main() -> int:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--points-per-device", type=int, default=10)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    with ThrowawayPostgres(durable=False) as pg:
        migrate(pg.dsn)
        t0 = time.perf_counter()
        fill(pg.dsn, args.devices, args.points_per_device, args.days, now)
        rows = args.devices * args.days * 24
        print(
            f"filled {args.devices} devices, {args.devices * args.points_per_device} points, "
            f"{rows} device_activity rows in {time.perf_counter() - t0:.1f} s"
        )
        times = asyncio.run(measure(pg.dsn, args.requests))
    print(f"{'endpoint':<34}{'median ms':>10}{'p95 ms':>10}")
    for name, values in times.items():
        values.sort()
        p95 = values[min(len(values) - 1, int(0.95 * len(values)))]
        print(f"{name:<34}{statistics.median(values) * 1000:>10.1f}{p95 * 1000:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
