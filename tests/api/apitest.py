"""Helpers for API tests: write rollup rows directly, run the app with its lifespan, make keys."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from fastapi import FastAPI
from psycopg import AsyncConnection

from api.app import create_app
from api.auth import Role, create_key
from api.deps import current_time
from api.settings import Settings

HOUR = timedelta(hours=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """Build an aware UTC datetime."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


class Seed:
    """Insert device, point and rollup rows as the collector's writer would."""

    def __init__(self, dsn: str) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def _one(self, query: str, params: Iterable[Any]) -> int:
        row = self.conn.execute(query, tuple(params)).fetchone()
        assert row is not None
        return int(row[0])

    def enterprise(self, key: str, industry: str | None = None, region: str | None = None) -> int:
        """Insert an enterprise; return its id."""
        return self._one(
            "INSERT INTO enterprise (key, name, industry, region) VALUES (%s, %s, %s, %s)"
            " RETURNING id",
            (key, key.title(), industry, region),
        )

    def device(
        self,
        key: str,
        *,
        protocol: str = "modbus",
        device_type: str | None = "plc",
        industry: str | None = None,
        region: str | None = None,
        simulated: bool = False,
        status: str = "unknown",
        enterprise_id: int | None = None,
    ) -> int:
        """Insert a device; return its id."""
        return self._one(
            "INSERT INTO device (key, protocol, endpoint, device_type, industry, region,"
            " simulated, status, enterprise_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " RETURNING id",
            (
                key,
                protocol,
                f"tcp://127.0.0.1/{key}",
                device_type,
                industry,
                region,
                simulated,
                status,
                enterprise_id,
            ),
        )

    def point(self, device_id: int, key: str) -> int:
        """Insert a numeric point of a device; return its id."""
        return self._one(
            "INSERT INTO point (device_id, key, address, data_type) VALUES (%s, %s, %s, %s)"
            " RETURNING id",
            (device_id, key, f"40001/{key}", "float32"),
        )

    def device_hour(
        self,
        device_id: int,
        at: datetime,
        *,
        samples: int = 0,
        good: int = 0,
        imported: int = 0,
    ) -> None:
        """Add an hourly rollup row for the hour containing `at` (first/last ts = at)."""
        hour = at.replace(minute=0, second=0, microsecond=0)
        live = samples > 0
        has_good = good > 0
        self.conn.execute(
            "INSERT INTO device_activity (device_id, hour, samples, good_samples,"
            " imported_samples, first_ts, last_ts, first_good_ts, last_good_ts)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (device_id, hour) DO UPDATE SET"
            " samples = device_activity.samples + EXCLUDED.samples,"
            " good_samples = device_activity.good_samples + EXCLUDED.good_samples,"
            " imported_samples = device_activity.imported_samples + EXCLUDED.imported_samples,"
            " first_ts = LEAST(device_activity.first_ts, EXCLUDED.first_ts),"
            " last_ts = GREATEST(device_activity.last_ts, EXCLUDED.last_ts),"
            " first_good_ts = LEAST(device_activity.first_good_ts, EXCLUDED.first_good_ts),"
            " last_good_ts = GREATEST(device_activity.last_good_ts, EXCLUDED.last_good_ts)",
            (
                device_id,
                hour,
                samples,
                good,
                imported,
                at if live else None,
                at if live else None,
                at if has_good else None,
                at if has_good else None,
            ),
        )

    def point_day(self, point_id: int, day: date, good_hours: Iterable[int]) -> None:
        """Add a daily point rollup with good live samples in the given UTC hours."""
        mask = 0
        for h in set(good_hours):
            mask |= 1 << h
        self.conn.execute(
            "INSERT INTO point_activity (point_id, day, good_hours) VALUES (%s, %s, %s)"
            " ON CONFLICT (point_id, day) DO UPDATE SET"
            " good_hours = point_activity.good_hours | EXCLUDED.good_hours",
            (point_id, day, mask),
        )

    def live(self, device_id: int, point_id: int, at: datetime, good: bool = True) -> None:
        """Record one live sample of a point in both rollups, as the writer does."""
        self.device_hour(device_id, at, samples=1, good=1 if good else 0)
        self.point_day(point_id, at.date(), [at.hour] if good else [])


async def add_key(dsn: str, role: Role, label: str | None = None) -> str:
    """Create and store a key; return the token."""
    async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
        new, _ = await create_key(conn, role, label)
    return new.token


async def role_keys(dsn: str) -> dict[Role, str]:
    """Create one key per role."""
    return {role: await add_key(dsn, role, f"test {role.value}") for role in Role}


def bearer(token: str) -> dict[str, str]:
    """Return the Authorization header for a key."""
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and yield a client speaking ASGI to it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tally.test") as client:
            yield client


@asynccontextmanager
async def api_client(
    dsn: str,
    now: datetime | None = None,
    connect_timeout: float = 5.0,
    data_dir: Path | None = None,
    signing_key: Path | None = None,
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """Create the app on `dsn` (clock pinned to `now`, data in `data_dir`) and yield a client."""
    settings = Settings(
        dsn=dsn,
        pool_min_size=1,
        pool_max_size=2,
        connect_timeout=connect_timeout,
        signing_key=signing_key,
        **({"data_dir": data_dir} if data_dir is not None else {}),
    )
    app = create_app(settings)
    if now is not None:
        app.dependency_overrides[current_time] = lambda: now
    async with running(app) as client:
        yield client, app


# Asked for 10:30 .. 05:10; counted over the whole hours [05-01 10:00, 05-03 06:00).
WINDOW = {"start": "2024-05-01T10:30:00Z", "end": "2024-05-03T05:10:00Z"}


def build_fleet(s: Seed) -> dict[str, int]:
    """Devices on both sides of every rule; returns device ids by key."""
    ids: dict[str, int] = {}
    ent = s.enterprise("acme-refinery", industry="C25", region="320100")

    # Process industry (C26), connected: good samples in the first and a middle hour.
    ids["a-reactor"] = d = s.device(
        "a-reactor", protocol="opcua", device_type="reactor", industry="C26",
        region="360100", status="online",
    )  # fmt: skip
    p1, p2, p3 = s.point(d, "temp"), s.point(d, "pressure"), s.point(d, "level")
    s.live(d, p1, utc(2024, 5, 1, 10, 45))  # in the partial first hour
    s.live(d, p2, utc(2024, 5, 2, 3, 0))
    s.live(d, p3, utc(2024, 5, 2, 4, 0), good=False)  # only bad: not a counted point

    # Discrete industry (C34), connected only in the last hour of the window.
    ids["b-lathe"] = d = s.device(
        "b-lathe", protocol="modbus", device_type="cnc", industry="C34", region="360100",
        status="offline",
    )  # fmt: skip
    s.live(d, s.point(d, "spindle"), utc(2024, 5, 3, 5, 59))

    # Good samples just before the window and exactly at its (exclusive) end: not connected.
    ids["c-before"] = d = s.device("c-before", device_type="pump", industry="C26")
    s.live(d, s.point(d, "flow"), utc(2024, 5, 1, 9, 59))
    ids["d-after"] = d = s.device("d-after", device_type="pump", industry="C26")
    s.live(d, s.point(d, "flow"), utc(2024, 5, 3, 6, 0))

    # Live but only bad quality: not connected, but online now.
    ids["e-bad"] = d = s.device("e-bad", device_type="meter", industry="C26", status="online")
    s.live(d, s.point(d, "kwh"), utc(2024, 5, 2, 1, 0), good=False)

    # Bulk-imported history only: never connected.
    ids["f-imported"] = d = s.device("f-imported", device_type="boiler", industry="C26")
    s.device_hour(d, utc(2024, 5, 2, 2, 0), imported=500)

    # Simulated, connected, process industry: excluded unless asked.
    ids["g-sim"] = d = s.device(
        "g-sim", protocol="mqtt", device_type="reactor", industry="C26", simulated=True,
        status="online", region="360100",
    )  # fmt: skip
    s.live(d, s.point(d, "temp"), utc(2024, 5, 2, 12, 0))
    s.live(d, s.point(d, "ph"), utc(2024, 5, 2, 13, 0))

    # No own industry or region: the enterprise's (C25, process; 320100) apply.
    ids["h-ent"] = d = s.device(
        "h-ent", protocol="modbus", device_type="compressor", enterprise_id=ent
    )
    s.live(d, s.point(d, "rpm"), utc(2024, 5, 2, 20, 0))
    s.live(d, s.point(d, "vib"), utc(2024, 5, 2, 21, 0))

    # An industry the bundled table does not classify (agriculture): no process points.
    ids["i-farm"] = d = s.device("i-farm", protocol="opcua", device_type=None, industry="A01")
    s.live(d, s.point(d, "soil"), utc(2024, 5, 2, 6, 0))
    return ids
