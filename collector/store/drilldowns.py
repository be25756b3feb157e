"""The lists behind every figure: devices, points and apps, read from the rollups.

Each list admits exactly what the figure it explains counts, through the same
predicates as the counts and the snapshot (collector/store/queries.py,
collector/store/call_months.py): connected devices through ``device_activity``,
managed devices through verified ``control_op`` rows, points through
``point_activity`` hour bits, calls through ``call_monthly``. Nothing scans raw
samples or call events. ``limit=None`` returns every matching row (CSV exports).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row

from collector.store import queries
from collector.store.call_months import full_months, month_label
from collector.store.queries import (
    _ACTIVITY,
    _DEVICE_COLUMNS,
    _MASKED_GOOD_HOURS,
    DeviceFilter,
    HourMask,
    _check_aligned,
    device_conditions,
)
from criteria import industries
from criteria.industries import IndustryKind
from criteria.metrics import region_prefix

DrillStatus = Literal["connected", "managed"]


@dataclass(frozen=True)
class DrillFilter:
    """Which devices (or the points of which devices) a drill-down lists."""

    include_simulated: bool = False
    status: DrillStatus = "connected"
    industry: str | None = None
    """A GB/T 4754-2017 code at any level; codes inside it match (C26 admits C2614)."""
    industry_class: IndustryKind | None = None
    device_type: str | None = None
    regions: tuple[str, ...] | None = None
    """GB/T 2260 area codes; a device inside any of them matches."""
    parks: tuple[str, ...] | None = None
    protocol: str | None = None


def admitted_industries(
    values: Iterable[str], industry: str | None, industry_class: IndustryKind | None
) -> tuple[str, ...] | None:
    """Return the stored industry values a filter admits (None: no industry filter).

    The same reading as the evaluator: codes roll up through the GB/T 4754 hierarchy and
    a class admits the codes the bundled table marks so (unknown codes never match).
    """
    if industry is None and industry_class is None:
        return None
    kept: list[str] = []
    for value in sorted(set(values)):
        if industry is not None and not industries.within(value, industry):
            continue
        if industry_class is not None and industries.classify(value) != industry_class:
            continue
        kept.append(value)
    return tuple(kept)


async def _device_industries(conn: AsyncConnection[Any]) -> list[str]:
    cur = await conn.execute(
        "SELECT DISTINCT COALESCE(d.industry, e.industry) FROM device d"
        " LEFT JOIN enterprise e ON e.id = d.enterprise_id"
        " WHERE COALESCE(d.industry, e.industry) IS NOT NULL"
    )
    return [str(r[0]) for r in await cur.fetchall()]


async def _device_filter(conn: AsyncConnection[Any], filt: DrillFilter) -> DeviceFilter:
    admitted = None
    if filt.industry is not None or filt.industry_class is not None:
        admitted = admitted_industries(
            await _device_industries(conn), filt.industry, filt.industry_class
        )
    return DeviceFilter(
        include_simulated=filt.include_simulated,
        status="connected",
        managed=filt.status == "managed",
        industries=admitted,
        device_type=filt.device_type,
        protocol=filt.protocol,
        region_prefixes=(
            tuple(region_prefix(r) for r in filt.regions) if filt.regions is not None else None
        ),
        parks=filt.parks,
    )


@dataclass(frozen=True)
class DrillDeviceRow(queries.DeviceRow):
    """A device with its activity in the window and whether it was managed in it."""

    managed: bool = False


_MANAGED_FLAG = sql.SQL(
    "LEFT JOIN LATERAL (SELECT 1 AS ok FROM control_op o WHERE o.device_id = page.id"
    " AND o.outcome = 'verified' AND o.requested_at >= %(start)s AND o.requested_at < %(end)s"
    " LIMIT 1) mg ON true"
)


def _where(filt: DeviceFilter) -> tuple[sql.Composable, dict[str, Any]]:
    joins, clauses, params = device_conditions(filt)
    return (
        sql.SQL("LEFT JOIN enterprise e ON e.id = d.enterprise_id {joins} WHERE {where}").format(
            joins=sql.SQL(" ").join(joins), where=sql.SQL(" AND ").join(clauses)
        ),
        params,
    )


async def devices(
    conn: AsyncConnection[Any],
    start: datetime,
    end: datetime,
    filt: DrillFilter,
    *,
    limit: int | None,
    offset: int = 0,
) -> tuple[int, list[DrillDeviceRow]]:
    """Return (total, devices ordered by key) that the connected or managed figure counts."""
    _check_aligned(start, end)
    where, params = _where(await _device_filter(conn, filt))
    params |= {"start": start, "end": end, "limit": limit, "offset": offset}
    cur = await conn.execute(
        sql.SQL("SELECT count(*) FROM device d {where}").format(where=where), params
    )
    row = await cur.fetchone()
    total = int(row[0]) if row else 0
    query = sql.SQL(
        "SELECT page.*, act.*, (mg.ok IS NOT NULL) AS managed FROM (SELECT {cols}"
        " FROM device d {where} ORDER BY d.key LIMIT %(limit)s OFFSET %(offset)s) page"
        " {activity} {managed} ORDER BY page.key"
    ).format(cols=_DEVICE_COLUMNS, where=where, activity=_ACTIVITY, managed=_MANAGED_FLAG)
    async with conn.cursor(row_factory=class_row(DrillDeviceRow)) as dcur:
        await dcur.execute(query, params)
        return total, await dcur.fetchall()


@dataclass(frozen=True)
class DrillPointRow:
    """A data collection point with a good live sample in the window, and its device."""

    id: int
    key: str
    address: str
    data_type: str
    unit: str | None
    device_id: int
    device_key: str
    protocol: str
    device_type: str | None
    industry: str | None
    region: str | None
    park: str | None
    simulated: bool
    good_hours: int
    last_seen: datetime | None


# One probe per point along the (point_id, day) key, as queries.active_point_counts does.
_ACTIVE_POINT = sql.SQL(
    "CROSS JOIN LATERAL (SELECT 1 FROM point_activity pa WHERE pa.point_id = p.id"
    " AND pa.day >= %(first_day)s AND pa.day <= %(last_day)s AND {masked} <> 0"
    " LIMIT 1) active"
).format(masked=_MASKED_GOOD_HOURS)


async def points(
    conn: AsyncConnection[Any],
    start: datetime,
    end: datetime,
    filt: DrillFilter,
    *,
    limit: int | None,
    offset: int = 0,
) -> tuple[int, list[DrillPointRow]]:
    """Return (total, points ordered by device and key) that the points figure counts.

    ``status=managed`` narrows to the points of managed devices; ``connected`` adds
    nothing, since a point with a good live sample makes its device connected.
    """
    mask = HourMask.of(start, end)
    device_filt = await _device_filter(conn, filt)
    # A point's good hour implies its device's: the connected probe would only cost time.
    joins, clauses, params = device_conditions(replace(device_filt, status=None))
    params |= {**mask.params(), "start": start, "end": end, "limit": limit, "offset": offset}
    base = sql.SQL(
        "FROM point p JOIN device d ON d.id = p.device_id"
        " LEFT JOIN enterprise e ON e.id = d.enterprise_id {joins} {active} WHERE {where}"
    ).format(
        joins=sql.SQL(" ").join(joins), active=_ACTIVE_POINT, where=sql.SQL(" AND ").join(clauses)
    )
    cur = await conn.execute(sql.SQL("SELECT count(*) {base}").format(base=base), params)
    row = await cur.fetchone()
    total = int(row[0]) if row else 0
    query = sql.SQL(
        "SELECT p.id, p.key, p.address, p.data_type, p.unit, d.id AS device_id,"
        " d.key AS device_key, d.protocol, d.device_type,"
        " COALESCE(d.industry, e.industry) AS industry, COALESCE(d.region, e.region) AS region,"
        " COALESCE(d.park, e.park) AS park, d.simulated,"
        " COALESCE((SELECT sum(bit_count({masked}::bit(32))) FROM point_activity pa"
        "  WHERE pa.point_id = p.id AND pa.day >= %(first_day)s AND pa.day <= %(last_day)s),"
        "  0)::integer AS good_hours, p.last_seen"
        " {base} ORDER BY d.key, p.key LIMIT %(limit)s OFFSET %(offset)s"
    ).format(masked=_MASKED_GOOD_HOURS, base=base)
    async with conn.cursor(row_factory=class_row(DrillPointRow)) as pcur:
        await pcur.execute(query, params)
        return total, await pcur.fetchall()


@dataclass(frozen=True)
class AppFilter:
    """Which registered apps a drill-down lists."""

    kinds: tuple[str, ...] | None = None
    category: str | None = None
    industry: str | None = None
    domain: str | None = None
    cross_platform: bool | None = None


@dataclass(frozen=True)
class DrillAppRow:
    """A registered app and its calls in each full calendar month of the window."""

    id: int
    key: str
    name: str
    kind: str
    category: str | None
    industry: str | None
    domain: str | None
    cross_platform: bool
    calls: dict[str, int] = field(default_factory=dict)

    @property
    def total_calls(self) -> int:
        """Calls in all the full months of the window."""
        return sum(self.calls.values())


async def apps(
    conn: AsyncConnection[Any],
    start: datetime,
    end: datetime,
    zone: str,
    filt: AppFilter,
    *,
    limit: int | None,
    offset: int = 0,
) -> tuple[int, tuple[str, ...], list[DrillAppRow]]:
    """Return (total, full months, apps ordered by kind and key) with their monthly calls."""
    clauses: list[sql.Composable] = [sql.SQL("true")]
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if filt.kinds is not None:
        clauses.append(sql.SQL("a.kind = ANY(%(kinds)s::text[])"))
        params["kinds"] = list(filt.kinds)
    if filt.category is not None:
        clauses.append(sql.SQL("a.category = %(category)s"))
        params["category"] = filt.category
    if filt.domain is not None:
        clauses.append(sql.SQL("a.domain = %(domain)s"))
        params["domain"] = filt.domain
    if filt.cross_platform is not None:
        clauses.append(sql.SQL("a.cross_platform = %(cross_platform)s"))
        params["cross_platform"] = filt.cross_platform
    if filt.industry is not None:
        cur = await conn.execute("SELECT DISTINCT industry FROM app WHERE industry IS NOT NULL")
        values = [str(r[0]) for r in await cur.fetchall()]
        clauses.append(sql.SQL("a.industry = ANY(%(industries)s::text[])"))
        params["industries"] = list(admitted_industries(values, filt.industry, None) or ())
    where = sql.SQL(" AND ").join(clauses)
    cur = await conn.execute(
        sql.SQL("SELECT count(*) FROM app a WHERE {where}").format(where=where), params
    )
    row = await cur.fetchone()
    total = int(row[0]) if row else 0
    query = sql.SQL(
        "SELECT a.id, a.key, a.name, a.kind, a.category, a.industry, a.domain, a.cross_platform"
        " FROM app a WHERE {where} ORDER BY a.kind, a.key LIMIT %(limit)s OFFSET %(offset)s"
    ).format(where=where)
    async with conn.cursor(row_factory=class_row(DrillAppRow)) as acur:
        await acur.execute(query, params)
        page = await acur.fetchall()
    months = full_months(start, end, zone)
    labels = tuple(month_label(m) for m in months)
    calls: dict[int, dict[str, int]] = {a.id: dict.fromkeys(labels, 0) for a in page}
    if months and page:
        cur = await conn.execute(
            "SELECT app_id, month, calls FROM call_monthly"
            " WHERE app_id = ANY(%s) AND month = ANY(%s)",
            ([a.id for a in page], months),
        )
        for app_id, month, count in await cur.fetchall():
            calls[int(app_id)][month_label(month)] += int(count)
    rows = [replace(a, calls=calls[a.id]) for a in page]
    return total, labels, rows
