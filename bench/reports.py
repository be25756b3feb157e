"""Evidence benchmark: drill-downs (JSON pages, CSV exports) and signed report bundles.

Usage::

    python bench/reports.py [--devices 5000] [--points-per-device 10] [--days 30]
                            [--requests 5]

Fills a throwaway PostgreSQL like bench/api_counts.py (the same rollups), runs the API
in-process and times, against the evaluation of the same tier as the unit: a page of
the connected-device drill-down, the full CSV of connected devices and of points,
POST /v1/reports (evaluation, every CSV, render, sign, store) and `tally verify` of
the bundle. Wall time and this process's CPU-seconds (the API and client; PostgreSQL's
own processes are not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from api_counts import fill
from psycopg import AsyncConnection

from api.app import create_app
from api.auth import Role, create_key
from api.settings import Settings
from collector.bundles.bundle import read_zip
from collector.bundles.verify import verify_bundle
from collector.embedded.postgres import ThrowawayPostgres
from collector.store.migrate import migrate

EVALUATION = "/v1/programs/jiangsu-2018/tiers/enterprise/evaluation?window=30d"
REPORT = {"program": "jiangsu-2018", "tier": "enterprise", "window": "30d"}


async def measure(dsn: str, requests: int, data_dir: Path) -> dict[str, list[tuple[float, float]]]:
    """Time each step `requests` times; return (wall s, CPU s) per run."""
    async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
        new, _ = await create_key(conn, Role.AUDITOR, "bench")
    headers = {"Authorization": f"Bearer {new.token}"}
    app = create_app(Settings(dsn=dsn, pool_max_size=4, data_dir=data_dir))
    gets = {
        "evaluation (unit)": EVALUATION,
        "devices drill-down, page of 100": "/v1/drilldowns/devices?window=30d&limit=100",
        "devices CSV, every row": "/v1/drilldowns/devices?window=30d&format=csv",
        "points CSV, every row": "/v1/drilldowns/points?window=30d&format=csv",
    }
    times: dict[str, list[tuple[float, float]]] = {n: [] for n in [*gets, "POST /v1/reports"]}
    times["tally verify (offline)"] = []
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as client,
    ):
        for name, path in gets.items():
            await client.get(path, headers=headers)  # warm the cache
            for _ in range(requests):
                t0, c0 = time.perf_counter(), time.process_time()
                answer = await client.get(path, headers=headers)
                times[name].append((time.perf_counter() - t0, time.process_time() - c0))
                assert answer.status_code == 200, answer.text
        bundle = b""
        for _ in range(requests):
            t0, c0 = time.perf_counter(), time.process_time()
            made = await client.post("/v1/reports", json=REPORT, headers=headers)
            assert made.status_code == 201, made.text
            times["POST /v1/reports"].append((time.perf_counter() - t0, time.process_time() - c0))
            bundle = (await client.get(made.json()["bundle_url"], headers=headers)).content
    for _ in range(requests):
        t0, c0 = time.perf_counter(), time.process_time()
        verdict = verify_bundle(read_zip(bundle, "bench"), None)
        times["tally verify (offline)"].append((time.perf_counter() - t0, time.process_time() - c0))
        assert verdict.ok, verdict.problems
    print(f"bundle: {len(bundle):,} bytes, {len(read_zip(bundle, 'bench'))} files")
    return times


def main() -> int:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--points-per-device", type=int, default=10)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--requests", type=int, default=5)
    args = parser.parse_args()
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    with ThrowawayPostgres(durable=False) as pg, tempfile.TemporaryDirectory() as data_dir:
        migrate(pg.dsn)
        t0 = time.perf_counter()
        fill(pg.dsn, args.devices, args.points_per_device, args.days, now)
        print(
            f"filled {args.devices} devices, {args.devices * args.points_per_device} points "
            f"over {args.days} days in {time.perf_counter() - t0:.1f} s"
        )
        times = asyncio.run(measure(pg.dsn, args.requests, Path(data_dir)))
    unit = statistics.median(w for w, _ in times["evaluation (unit)"])
    print(f"{'step':<34}{'median s':>10}{'CPU s':>8}{'x evaluation':>14}")
    for name, runs in times.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"{name:<34}{wall:>10.3f}{cpu:>8.3f}{wall / unit:>14.2f}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
