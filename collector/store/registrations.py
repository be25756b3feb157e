"""Device and point registrations and availability events, applied in the writer's transaction.

Registrations are upserts: a device is identified by its key, a point by (device,
key). Descriptive fields an adapter leaves as None (name, type, industry, region,
park, enterprise, unit, description) mean "not stated" and keep what is recorded,
so a protocol adapter never erases what an operator imported; stated values win.
Points missing from a later registration are kept (their history stays countable).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from adapters.base import DeviceEvent, DeviceEventKind, DeviceInfo

log = logging.getLogger(__name__)

PointKey = tuple[str, str]
"""(device key, point key): how samples name their point."""

STATUS_OF = {
    DeviceEventKind.ONLINE: "online",
    DeviceEventKind.OFFLINE: "offline",
    DeviceEventKind.VANISHED: "vanished",
}

UPSERT_DEVICE = """
INSERT INTO device AS d (key, name, protocol, endpoint, device_type, industry, region, park,
                         enterprise_id, simulated, identity)
VALUES (%(key)s, %(name)s, %(protocol)s, %(endpoint)s, %(device_type)s, %(industry)s,
        %(region)s, %(park)s, (SELECT id FROM enterprise WHERE key = %(enterprise)s),
        %(simulated)s, %(identity)s)
ON CONFLICT (key) DO UPDATE SET
    name = COALESCE(EXCLUDED.name, d.name),
    protocol = EXCLUDED.protocol,
    endpoint = EXCLUDED.endpoint,
    device_type = COALESCE(EXCLUDED.device_type, d.device_type),
    industry = COALESCE(EXCLUDED.industry, d.industry),
    region = COALESCE(EXCLUDED.region, d.region),
    park = COALESCE(EXCLUDED.park, d.park),
    enterprise_id = COALESCE(EXCLUDED.enterprise_id, d.enterprise_id),
    simulated = EXCLUDED.simulated,
    identity = d.identity || EXCLUDED.identity,
    updated_at = now()
RETURNING id, (SELECT id FROM enterprise WHERE key = %(enterprise)s) IS NOT NULL
"""

UPSERT_POINTS = """
INSERT INTO point AS p (device_id, key, address, data_type, unit, writable, description)
SELECT %s, k, a, t, u, w, x
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::bool[], %s::text[])
     AS i(k, a, t, u, w, x)
ON CONFLICT (device_id, key) DO UPDATE SET
    address = EXCLUDED.address,
    data_type = EXCLUDED.data_type,
    unit = COALESCE(EXCLUDED.unit, p.unit),
    writable = EXCLUDED.writable,
    description = COALESCE(EXCLUDED.description, p.description),
    updated_at = now()
RETURNING id, key
"""

# A status change older than the recorded one (e.g. replayed from the spool) is ignored.
UPDATE_STATUS = """
UPDATE device SET status = %(status)s, status_changed_at = %(ts)s, updated_at = now()
WHERE key = %(key)s AND status <> %(status)s
  AND (status_changed_at IS NULL OR status_changed_at <= %(ts)s)
"""

LOOKUP_POINTS = """
SELECT d.key, p.key, p.id, d.id
FROM unnest(%s::text[], %s::text[]) AS k(device_key, point_key)
JOIN device d ON d.key = k.device_key
JOIN point p ON p.device_id = d.id AND p.key = k.point_key
"""


PointsByDevice = dict[str, dict[str, int]]
"""device key → point key → point id: two lookups of strings, no tuple built per sample."""


@dataclass(slots=True)
class PointIds:
    """Point ids learnt in one transaction; merged into the writer's cache after commit."""

    by_device: PointsByDevice = field(default_factory=dict)
    device_of: dict[int, int] = field(default_factory=dict)

    def add(self, device_key: str, point_key: str, point_id: int, device_id: int) -> None:
        """Record one point."""
        self.by_device.setdefault(device_key, {})[point_key] = point_id
        self.device_of[point_id] = device_id

    def over(self, cache: PointsByDevice) -> PointsByDevice:
        """Return `cache` with these points added (a new mapping; `cache` is unchanged)."""
        if not self.by_device:
            return cache
        merged = dict(cache)
        for device_key, points in self.by_device.items():
            merged[device_key] = {**cache.get(device_key, {}), **points}
        return merged

    def merge_into(self, cache: PointsByDevice) -> None:
        """Add these points to `cache`."""
        for device_key, points in self.by_device.items():
            cache.setdefault(device_key, {}).update(points)

    def __bool__(self) -> bool:
        return bool(self.by_device)


def check_events(events: Sequence[DeviceEvent]) -> None:
    """Raise ValueError for an event that cannot be applied (naive time, missing info)."""
    for event in events:
        if not isinstance(event.ts, datetime) or event.ts.utcoffset() is None:
            raise ValueError(
                f"{event.kind.value} event of device {event.device!r} has time stamp "
                f"{event.ts!r}: expected a timezone-aware UTC datetime"
            )
        if event.kind is DeviceEventKind.REGISTERED:
            if event.info is None:
                raise ValueError(
                    f"registered event of device {event.device!r} carries no DeviceInfo"
                )
            if event.info.key != event.device:
                raise ValueError(
                    f"registered event of device {event.device!r} carries the DeviceInfo "
                    f"of {event.info.key!r}: the keys must match"
                )


async def apply_events(
    conn: AsyncConnection[Any], events: Iterable[DeviceEvent], learnt: PointIds
) -> int:
    """Apply events in order (registrations, status changes); return how many were applied."""
    applied = 0
    for event in events:
        if event.kind is DeviceEventKind.REGISTERED:
            assert event.info is not None  # checked by check_events
            await register_device(conn, event.info, learnt)
        else:
            await conn.execute(
                UPDATE_STATUS,
                {"status": STATUS_OF[event.kind], "ts": event.ts, "key": event.device},
            )
        applied += 1
    return applied


async def register_device(conn: AsyncConnection[Any], info: DeviceInfo, learnt: PointIds) -> int:
    """Upsert a device and its points; return the device id."""
    cur = await conn.execute(
        UPSERT_DEVICE,
        {
            "key": info.key,
            "name": info.name,
            "protocol": info.protocol,
            "endpoint": info.endpoint,
            "device_type": info.device_type,
            "industry": info.industry,
            "region": info.region,
            "park": info.park,
            "enterprise": info.enterprise,
            "simulated": info.simulated,
            "identity": Jsonb(dict(info.identity)),
        },
    )
    row = await cur.fetchone()
    assert row is not None  # INSERT .. ON CONFLICT DO UPDATE always returns the row
    device_id, enterprise_known = int(row[0]), bool(row[1])
    if info.enterprise is not None and not enterprise_known:
        log.warning(
            "device %r names enterprise %r, which is not registered: the device is "
            "recorded without an enterprise until it is imported (tally import)",
            info.key,
            info.enterprise,
        )
    points = {p.key: p for p in info.points}  # a repeated key: the last one wins
    if points:
        cur = await conn.execute(
            UPSERT_POINTS,
            (
                device_id,
                list(points),
                [p.address for p in points.values()],
                [p.data_type for p in points.values()],
                [p.unit for p in points.values()],
                [p.writable for p in points.values()],
                [p.description for p in points.values()],
            ),
        )
        for point_id, point_key in await cur.fetchall():
            learnt.add(info.key, point_key, int(point_id), device_id)
    return device_id


async def lookup_points(
    conn: AsyncConnection[Any], keys: Iterable[PointKey], learnt: PointIds
) -> None:
    """Find registered points by (device key, point key) and add them to `learnt`."""
    wanted = list(keys)
    cur = await conn.execute(
        LOOKUP_POINTS, ([k[0] for k in wanted], [k[1] for k in wanted]), prepare=False
    )
    for device_key, point_key, point_id, device_id in await cur.fetchall():
        learnt.add(device_key, point_key, int(point_id), int(device_id))
