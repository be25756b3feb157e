"""Read-side SQL: devices, points, counts from the rollups, and API keys.

Every query that counts reads `device_activity` (hourly) and `point_activity` (daily,
with an hour bitmask); none scans raw samples. Windows are half-open [start, end) and
must be aligned to whole UTC hours (see api/window.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row

GroupBy = Literal["industry", "type", "region", "protocol"]
DeviceStatusFilter = Literal["connected", "online", "offline"]

ALL_HOURS = (1 << 24) - 1

# The effective industry and region of a device fall back to its enterprise's.
_GROUP_EXPR: dict[GroupBy | None, sql.Composable] = {
    None: sql.SQL("NULL::text"),
    "industry": sql.SQL("COALESCE(d.industry, e.industry)"),
    "type": sql.SQL("d.device_type"),
    "region": sql.SQL("COALESCE(d.region, e.region)"),
    "protocol": sql.SQL("d.protocol"),
}

# A device is connected in [start, end) when some hour of it has a good live sample. The
# lateral probe with LIMIT 1 stops at the first good hour of each device, and the partial
# index device_activity_good_idx (first_good_ts IS NOT NULL, which the writer sets with the
# first good sample of the hour) lets it skip hours without good samples, so a device
# without any costs one index probe whatever the window's length.
_CONNECTED_JOIN = sql.SQL(
    "CROSS JOIN LATERAL (SELECT 1 FROM device_activity a WHERE a.device_id = d.id"
    " AND a.hour >= %(start)s AND a.hour < %(end)s"
    " AND a.first_good_ts IS NOT NULL AND a.good_samples > 0 LIMIT 1) connected"
)
_SIMULATED = sql.SQL("(%(include_simulated)s OR NOT d.simulated)")


def _check_aligned(start: datetime, end: datetime) -> None:
    for name, ts in (("start", start), ("end", end)):
        if ts.tzinfo is None or ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0) != ts:
            raise ValueError(f"window {name} {ts!r} must be an aware datetime on a UTC hour")
    if end <= start:
        raise ValueError(f"window end {end} is not after start {start}")


@dataclass(frozen=True)
class HourMask:
    """Which bits of point_activity.good_hours fall inside a window, per edge day."""

    first_day: date
    first_mask: int
    last_day: date
    last_mask: int

    @classmethod
    def of(cls, start: datetime, end: datetime) -> HourMask:
        """Masks for the window [start, end) of whole UTC hours."""
        _check_aligned(start, end)
        first = start.astimezone(UTC)
        last = (end - timedelta(hours=1)).astimezone(UTC)
        first_mask = ALL_HOURS & ~((1 << first.hour) - 1)
        last_mask = (1 << (last.hour + 1)) - 1
        return cls(first.date(), first_mask, last.date(), last_mask)

    def params(self) -> dict[str, Any]:
        """Query parameters for _MASKED_GOOD_HOURS."""
        return {
            "first_day": self.first_day,
            "first_mask": self.first_mask,
            "last_day": self.last_day,
            "last_mask": self.last_mask,
        }


_MASKED_GOOD_HOURS = sql.SQL(
    "(pa.good_hours"
    " & CASE WHEN pa.day = %(first_day)s THEN %(first_mask)s::integer ELSE {all} END"
    " & CASE WHEN pa.day = %(last_day)s THEN %(last_mask)s::integer ELSE {all} END)"
).format(all=sql.Literal(ALL_HOURS))


@asynccontextmanager
async def snapshot(conn: AsyncConnection[Any]) -> AsyncIterator[AsyncConnection[Any]]:
    """Run several reads in one read-only repeatable-read transaction (one consistent view)."""
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        # Index probes, not analytics: JIT compilation would cost more than it saves.
        await conn.execute("SET LOCAL jit = off")
        yield conn


# --- counts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceGroupCounts:
    """Connected devices and distinct device types in one group (group None = all)."""

    grp: str | None
    connected_devices: int
    device_types: int


@dataclass(frozen=True)
class PointGroupCounts:
    """Points with a good live sample in the window, per group and device industry."""

    grp: str | None
    industry: str | None
    points: int


@dataclass(frozen=True)
class OnlineGroupCounts:
    """Devices whose current status is online, per group."""

    grp: str | None
    online_now: int


async def connected_device_counts(
    conn: AsyncConnection[Any],
    start: datetime,
    end: datetime,
    include_simulated: bool,
    group_by: GroupBy | None = None,
) -> list[DeviceGroupCounts]:
    """Count connected devices (a good live sample in [start, end)) and their distinct types."""
    _check_aligned(start, end)
    query = sql.SQL(
        "SELECT {grp} AS grp, count(*) AS connected_devices,"
        " count(DISTINCT d.device_type) AS device_types"
        " FROM device d LEFT JOIN enterprise e ON e.id = d.enterprise_id {connected}"
        " WHERE {simulated} GROUP BY 1 ORDER BY 1"
    ).format(grp=_GROUP_EXPR[group_by], connected=_CONNECTED_JOIN, simulated=_SIMULATED)
    params = {"start": start, "end": end, "include_simulated": include_simulated}
    async with conn.cursor(row_factory=class_row(DeviceGroupCounts)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


@dataclass(frozen=True)
class ManagedGroupCounts:
    """Managed devices (a verified control operation in the window) and their distinct types."""

    grp: str | None
    managed_devices: int
    managed_device_types: int


# A device is managed in [start, end) when a control operation on it that was requested in
# the window ended verified; the partial index control_op_verified_device_idx serves the probe.
_MANAGED_JOIN = sql.SQL(
    "CROSS JOIN LATERAL (SELECT 1 FROM control_op o WHERE o.device_id = d.id"
    " AND o.outcome = 'verified' AND o.requested_at >= %(start)s AND o.requested_at < %(end)s"
    " LIMIT 1) managed"
)


async def managed_device_counts(
    conn: AsyncConnection[Any],
    start: datetime,
    end: datetime,
    include_simulated: bool,
    group_by: GroupBy | None = None,
) -> list[ManagedGroupCounts]:
    """Count managed devices (connected, with a verified control operation in [start, end))."""
    _check_aligned(start, end)
    query = sql.SQL(
        "SELECT {grp} AS grp, count(*) AS managed_devices,"
        " count(DISTINCT d.device_type) AS managed_device_types"
        " FROM device d LEFT JOIN enterprise e ON e.id = d.enterprise_id {connected} {managed}"
        " WHERE {simulated} GROUP BY 1 ORDER BY 1"
    ).format(
        grp=_GROUP_EXPR[group_by],
        connected=_CONNECTED_JOIN,
        managed=_MANAGED_JOIN,
        simulated=_SIMULATED,
    )
    params = {"start": start, "end": end, "include_simulated": include_simulated}
    async with conn.cursor(row_factory=class_row(ManagedGroupCounts)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def simulated_connected_devices(
    conn: AsyncConnection[Any], start: datetime, end: datetime
) -> int:
    """Count simulated devices that would count as connected in [start, end)."""
    _check_aligned(start, end)
    query = sql.SQL("SELECT count(*) FROM device d {connected} WHERE d.simulated").format(
        connected=_CONNECTED_JOIN
    )
    cur = await conn.execute(query, {"start": start, "end": end})
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def active_point_counts(
    conn: AsyncConnection[Any],
    start: datetime,
    end: datetime,
    include_simulated: bool,
    group_by: GroupBy | None = None,
) -> list[PointGroupCounts]:
    """Points with a good live sample in [start, end), exact to the hour, by group and industry."""
    mask = HourMask.of(start, end)
    query = sql.SQL(
        "SELECT {grp} AS grp, COALESCE(d.industry, e.industry) AS industry, count(*) AS points"
        " FROM point p JOIN device d ON d.id = p.device_id"
        " LEFT JOIN enterprise e ON e.id = d.enterprise_id"
        # One probe per point along the (point_id, day) key, stopping at the first good hour.
        " CROSS JOIN LATERAL (SELECT 1 FROM point_activity pa WHERE pa.point_id = p.id"
        " AND pa.day >= %(first_day)s AND pa.day <= %(last_day)s AND {masked} <> 0"
        " LIMIT 1) active"
        " WHERE {simulated} GROUP BY 1, 2 ORDER BY 1, 2"
    ).format(grp=_GROUP_EXPR[group_by], masked=_MASKED_GOOD_HOURS, simulated=_SIMULATED)
    params = {**mask.params(), "include_simulated": include_simulated}
    async with conn.cursor(row_factory=class_row(PointGroupCounts)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def online_device_counts(
    conn: AsyncConnection[Any], include_simulated: bool, group_by: GroupBy | None = None
) -> list[OnlineGroupCounts]:
    """Devices whose status is online now, by group."""
    query = sql.SQL(
        "SELECT {grp} AS grp, count(*) AS online_now"
        " FROM device d LEFT JOIN enterprise e ON e.id = d.enterprise_id"
        " WHERE d.status = 'online' AND {simulated} GROUP BY 1 ORDER BY 1"
    ).format(grp=_GROUP_EXPR[group_by], simulated=_SIMULATED)
    async with conn.cursor(row_factory=class_row(OnlineGroupCounts)) as cur:
        await cur.execute(query, {"include_simulated": include_simulated})
        return await cur.fetchall()


# --- devices ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceFilter:
    """Which devices a listing returns."""

    include_simulated: bool = False
    status: DeviceStatusFilter | None = None
    industry: str | None = None
    device_type: str | None = None
    protocol: str | None = None
    managed: bool = False
    """Only devices with a verified control operation in the window (what managed counts)."""
    industries: tuple[str, ...] | None = None
    """Only devices whose effective industry is one of these stored values."""
    region_prefixes: tuple[str, ...] | None = None
    """Only devices whose effective region starts with one of these GB/T 2260 prefixes."""
    parks: tuple[str, ...] | None = None
    """Only devices whose effective park is one of these."""


@dataclass(frozen=True)
class DeviceRow:
    """A device with its activity in the window."""

    id: int
    key: str
    name: str | None
    protocol: str
    endpoint: str
    device_type: str | None
    industry: str | None
    region: str | None
    park: str | None
    enterprise: str | None
    simulated: bool
    identity: dict[str, Any]
    status: str
    status_changed_at: datetime | None
    registered_at: datetime
    first_seen: datetime | None
    last_seen: datetime | None
    samples: int
    good_samples: int
    imported_samples: int
    first_sample: datetime | None
    last_sample: datetime | None
    first_good_sample: datetime | None
    last_good_sample: datetime | None


_DEVICE_COLUMNS = sql.SQL(
    "d.id, d.key, d.name, d.protocol, d.endpoint, d.device_type,"
    " COALESCE(d.industry, e.industry) AS industry, COALESCE(d.region, e.region) AS region,"
    " COALESCE(d.park, e.park) AS park, e.key AS enterprise, d.simulated, d.identity,"
    " d.status, d.status_changed_at, d.registered_at, d.first_seen, d.last_seen"
)

_ACTIVITY = sql.SQL(
    "LEFT JOIN LATERAL (SELECT"
    " COALESCE(sum(a.samples), 0)::bigint AS samples,"
    " COALESCE(sum(a.good_samples), 0)::bigint AS good_samples,"
    " COALESCE(sum(a.imported_samples), 0)::bigint AS imported_samples,"
    " min(a.first_ts) AS first_sample, max(a.last_ts) AS last_sample,"
    " min(a.first_good_ts) AS first_good_sample, max(a.last_good_ts) AS last_good_sample"
    " FROM device_activity a"
    " WHERE a.device_id = page.id AND a.hour >= %(start)s AND a.hour < %(end)s) act ON true"
)


def device_conditions(
    filt: DeviceFilter,
) -> tuple[list[sql.Composable], list[sql.Composable], dict[str, Any]]:
    """Return (joins, WHERE clauses, parameters) admitting the devices of a filter (d, e)."""
    clauses: list[sql.Composable] = [_SIMULATED]
    params: dict[str, Any] = {"include_simulated": filt.include_simulated}
    joins: list[sql.Composable] = []
    if filt.status == "connected" or filt.managed:
        joins.append(_CONNECTED_JOIN)
    elif filt.status is not None:
        clauses.append(sql.SQL("d.status = %(status)s"))
        params["status"] = filt.status
    if filt.managed:
        joins.append(_MANAGED_JOIN)
    if filt.industry is not None:
        clauses.append(sql.SQL("COALESCE(d.industry, e.industry) = %(industry)s"))
        params["industry"] = filt.industry
    if filt.industries is not None:
        clauses.append(sql.SQL("COALESCE(d.industry, e.industry) = ANY(%(industries)s::text[])"))
        params["industries"] = list(filt.industries)
    if filt.device_type is not None:
        clauses.append(sql.SQL("d.device_type = %(device_type)s"))
        params["device_type"] = filt.device_type
    if filt.protocol is not None:
        clauses.append(sql.SQL("d.protocol = %(protocol)s"))
        params["protocol"] = filt.protocol
    if filt.region_prefixes is not None:
        clauses.append(
            sql.SQL("COALESCE(d.region, e.region) LIKE ANY(%(region_patterns)s::text[])")
        )
        params["region_patterns"] = [_like_prefix(p) for p in filt.region_prefixes]
    if filt.parks is not None:
        clauses.append(sql.SQL("COALESCE(d.park, e.park) = ANY(%(parks)s::text[])"))
        params["parks"] = list(filt.parks)
    return joins, clauses, params


def _like_prefix(prefix: str) -> str:
    """Return a LIKE pattern matching strings that start with prefix (wildcards escaped)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _device_from(filt: DeviceFilter) -> tuple[sql.Composable, dict[str, Any]]:
    """FROM ... WHERE ... selecting the devices a filter admits (aliases d, e)."""
    joins, clauses, params = device_conditions(filt)
    from_where = sql.SQL(
        "FROM device d LEFT JOIN enterprise e ON e.id = d.enterprise_id {joins} WHERE {where}"
    ).format(joins=sql.SQL(" ").join(joins), where=sql.SQL(" AND ").join(clauses))
    return from_where, params


async def device_page(
    conn: AsyncConnection[Any],
    *,
    start: datetime,
    end: datetime,
    filt: DeviceFilter,
    limit: int,
    offset: int,
) -> tuple[int, list[DeviceRow]]:
    """Return (total matching, one page of devices ordered by key) with window activity."""
    _check_aligned(start, end)
    base, params = _device_from(filt)
    params |= {"start": start, "end": end, "limit": limit, "offset": offset}
    count_query = sql.SQL("SELECT count(*) {base}").format(base=base)
    page_query = sql.SQL(
        "SELECT page.*, act.* FROM (SELECT {cols} {base} ORDER BY d.key"
        " LIMIT %(limit)s OFFSET %(offset)s) page {activity} ORDER BY page.key"
    ).format(cols=_DEVICE_COLUMNS, base=base, activity=_ACTIVITY)
    cur = await conn.execute(count_query, params)
    row = await cur.fetchone()
    total = int(row[0]) if row else 0
    async with conn.cursor(row_factory=class_row(DeviceRow)) as dcur:
        await dcur.execute(page_query, params)
        return total, await dcur.fetchall()


async def device_by_id(
    conn: AsyncConnection[Any], device_id: int, start: datetime, end: datetime
) -> DeviceRow | None:
    """Return one device with its activity in [start, end), or None."""
    _check_aligned(start, end)
    query = sql.SQL(
        "SELECT page.*, act.* FROM (SELECT {cols}"
        " FROM device d LEFT JOIN enterprise e ON e.id = d.enterprise_id"
        " WHERE d.id = %(id)s) page {activity}"
    ).format(cols=_DEVICE_COLUMNS, activity=_ACTIVITY)
    async with conn.cursor(row_factory=class_row(DeviceRow)) as cur:
        await cur.execute(query, {"id": device_id, "start": start, "end": end})
        return await cur.fetchone()


@dataclass(frozen=True)
class PointRow:
    """A data collection point with the hours in the window it had a good live sample."""

    id: int
    key: str
    address: str
    data_type: str
    unit: str | None
    writable: bool
    description: str | None
    first_seen: datetime | None
    last_seen: datetime | None
    last_value: float | None
    last_value_text: str | None
    last_quality: int | None
    good_hours: int


async def device_points(
    conn: AsyncConnection[Any], device_id: int, start: datetime, end: datetime
) -> list[PointRow]:
    """Points of one device ordered by key, with their good hours in [start, end)."""
    mask = HourMask.of(start, end)
    query = sql.SQL(
        "SELECT p.id, p.key, p.address, p.data_type, p.unit, p.writable, p.description,"
        " p.first_seen, p.last_seen, p.last_value, p.last_value_text,"
        " p.last_quality::integer AS last_quality,"
        " COALESCE((SELECT sum(bit_count({masked}::bit(32)))"
        "  FROM point_activity pa WHERE pa.point_id = p.id"
        "  AND pa.day >= %(first_day)s AND pa.day <= %(last_day)s), 0)::integer AS good_hours"
        " FROM point p WHERE p.device_id = %(id)s ORDER BY p.key"
    ).format(masked=_MASKED_GOOD_HOURS)
    async with conn.cursor(row_factory=class_row(PointRow)) as cur:
        await cur.execute(query, {**mask.params(), "id": device_id})
        return await cur.fetchall()


# --- API keys -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiKeyRow:
    """One stored API key (the secret only as its hash)."""

    id: int
    prefix: str
    secret_hash: bytes
    role: str
    label: str | None
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


_KEY_COLUMNS = sql.SQL("id, prefix, secret_hash, role, label, created_at, revoked_at, last_used_at")


async def insert_api_key(
    conn: AsyncConnection[Any], prefix: str, secret_hash: bytes, role: str, label: str | None
) -> ApiKeyRow:
    """Store a new key's prefix and hash; return the stored row."""
    query = sql.SQL(
        "INSERT INTO api_key (prefix, secret_hash, role, label) VALUES (%s, %s, %s, %s)"
        " RETURNING {cols}"
    ).format(cols=_KEY_COLUMNS)
    async with conn.cursor(row_factory=class_row(ApiKeyRow)) as cur:
        await cur.execute(query, (prefix, secret_hash, role, label))
        row = await cur.fetchone()
    if row is None:  # pragma: no cover - INSERT ... RETURNING always returns the row
        raise RuntimeError("INSERT INTO api_key returned no row")
    return row


async def find_api_key(conn: AsyncConnection[Any], prefix: str) -> ApiKeyRow | None:
    """Return the key with this prefix, or None."""
    query = sql.SQL("SELECT {cols} FROM api_key WHERE prefix = %s").format(cols=_KEY_COLUMNS)
    async with conn.cursor(row_factory=class_row(ApiKeyRow)) as cur:
        await cur.execute(query, (prefix,))
        return await cur.fetchone()


async def touch_api_key(conn: AsyncConnection[Any], key_id: int, resolution: timedelta) -> None:
    """Set last_used_at to now unless it was set less than `resolution` ago (cheap on hot keys)."""
    await conn.execute(
        "UPDATE api_key SET last_used_at = now() WHERE id = %s"
        " AND (last_used_at IS NULL OR last_used_at < now() - %s)",
        (key_id, resolution),
    )


async def list_api_keys(conn: AsyncConnection[Any]) -> list[ApiKeyRow]:
    """Every stored key, oldest first."""
    query = sql.SQL("SELECT {cols} FROM api_key ORDER BY id").format(cols=_KEY_COLUMNS)
    async with conn.cursor(row_factory=class_row(ApiKeyRow)) as cur:
        await cur.execute(query)
        return await cur.fetchall()


async def revoke_api_key(conn: AsyncConnection[Any], prefix: str) -> ApiKeyRow | None:
    """Mark the key revoked (once; the first revocation time stays); None if unknown."""
    query = sql.SQL(
        "UPDATE api_key SET revoked_at = COALESCE(revoked_at, now()) WHERE prefix = %s"
        " RETURNING {cols}"
    ).format(cols=_KEY_COLUMNS)
    async with conn.cursor(row_factory=class_row(ApiKeyRow)) as cur:
        await cur.execute(query, (prefix,))
        return await cur.fetchone()
