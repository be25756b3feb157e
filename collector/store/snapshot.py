"""The metrics snapshot the criteria read, computed from the store for one window.

Every figure comes from the registrations and rollups (device, point,
device_activity, point_activity, control_op), never from raw samples, inside one
repeatable-read transaction, so the figures agree with each other and with
`/v1/counts` for the same window. Registry and call figures come from the
registries module (``registry_figures``); until it provides them they are absent,
which the evaluator reports as insufficient evidence, never as zero.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row

from adapters.base import utcnow
from collector.store import declarations, queries

# The same connected-device predicate and simulated filter as the counts API, so a
# snapshot and /v1/counts agree for the same window.
from collector.store.queries import _CONNECTED_JOIN, _check_aligned
from collector.store.registry_figures import registry_figures as read_registry_figures
from criteria import Declaration, MetricsSnapshot
from criteria.industries import classify
from criteria.snapshot import (
    AppRegistry,
    CallFigures,
    Counts,
    DeveloperFigures,
    EnterpriseFigures,
    SimulatedExcluded,
    SubscriptionFigures,
)

DEFINITIONS: dict[str, str] = {
    "window": (
        "[window_start, window_end) in whole UTC hours, because the rollups are hourly; every "
        "hour inside counts"
    ),
    "connected_devices": (
        "devices with at least one good-quality sample received through a live protocol "
        "session in the window (device_activity.good_samples > 0 in an hour of the window); "
        "bulk-imported history and uncertain or bad samples never make a device connected"
    ),
    "managed_devices": (
        "connected devices with at least one verified control operation requested in the "
        "window (control_op.outcome = 'verified': the device accepted a write, method call or "
        "command and its effect was confirmed by reading the value back; those readings are "
        "recorded as live samples, so every verified device is also connected)"
    ),
    "device_types": "distinct device type labels among connected devices (unlabelled add none)",
    "managed_device_types": "distinct device type labels among managed devices",
    "points": (
        "data collection points with at least one good live sample in the window, exact to the "
        "UTC hour (point_activity.good_hours)"
    ),
    "process_points": (
        "points with a good live sample in the window whose device's GB/T 4754-2017 industry is "
        "marked process (流程) in criteria/industries.yaml"
    ),
    "industry_region_park": (
        "a device's own industry, region and park, else its enterprise's; devices without one "
        "are left out of that breakdown"
    ),
    "registry_figures": (
        "models, APPs, subscriptions, enterprise users, developers and calls come from the "
        "recorded registries and call events; absent figures are insufficient evidence"
    ),
}


def simulated_definition(include_simulated: bool) -> str:
    """State how simulated devices were treated."""
    if include_simulated:
        return (
            "SIMULATED DEVICES ARE INCLUDED (include_simulated=true): these figures show no "
            "eligibility"
        )
    return (
        "simulated devices (served by the bundled simulators) are excluded; simulated_excluded "
        "says how many were left out"
    )


@dataclass(frozen=True, slots=True)
class RegistryFigures:
    """Figures from the registries and call events; any part may be absent (None)."""

    apps: AppRegistry | None = None
    subscriptions: SubscriptionFigures | None = None
    enterprise_users: EnterpriseFigures | None = None
    developers: DeveloperFigures | None = None
    calls: CallFigures | None = None


async def registry_figures(
    conn: AsyncConnection[Any], start: datetime, end: datetime, timezone: str
) -> RegistryFigures | None:
    """Return the registry and call figures for [start, end), or None when none are recorded.

    They come from collector/store/registry_figures.py (registries, call_monthly and
    call_caller_daily rollups); months are calendar months in `timezone`. A registry
    that holds nothing gives an absent figure, which the rules read as insufficient
    evidence.
    """
    found = await read_registry_figures(conn, start, end, timezone)
    if all(value is None for value in found.values()):
        return None
    return RegistryFigures(**found)


@dataclass(frozen=True)
class _DeviceGroup:
    """Connected devices sharing industry, type, region, park, simulated and managed flags."""

    industry: str | None
    device_type: str | None
    region: str | None
    park: str | None
    simulated: bool
    managed: bool
    devices: int


_DEVICE_GROUPS = sql.SQL(
    "SELECT COALESCE(d.industry, e.industry) AS industry, d.device_type,"
    " COALESCE(d.region, e.region) AS region, COALESCE(d.park, e.park) AS park,"
    " d.simulated, (managed.ok IS NOT NULL) AS managed, count(*) AS devices"
    " FROM device d LEFT JOIN enterprise e ON e.id = d.enterprise_id {connected}"
    " LEFT JOIN LATERAL (SELECT 1 AS ok FROM control_op c WHERE c.device_id = d.id"
    " AND c.outcome = 'verified' AND c.requested_at >= %(start)s AND c.requested_at < %(end)s"
    " LIMIT 1) managed ON true"
    " GROUP BY 1, 2, 3, 4, 5, 6"
).format(connected=_CONNECTED_JOIN)


def _counts(groups: list[_DeviceGroup]) -> Counts:
    by_industry: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    by_region: Counter[str] = Counter()
    by_park: Counter[str] = Counter()
    by_industry_type: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for g in groups:
        if g.industry:
            by_industry[g.industry] += g.devices
            if g.device_type:
                by_industry_type[g.industry][g.device_type] += g.devices
        if g.device_type:
            by_type[g.device_type] += g.devices
        if g.region:
            by_region[g.region] += g.devices
        if g.park:
            by_park[g.park] += g.devices
    return Counts(
        total=sum(g.devices for g in groups),
        by_industry=dict(sorted(by_industry.items())),
        by_type=dict(sorted(by_type.items())),
        by_region=dict(sorted(by_region.items())),
        by_park=dict(sorted(by_park.items())),
        by_industry_type={k: dict(sorted(v.items())) for k, v in sorted(by_industry_type.items())},
    )


def _points(rows: list[queries.PointGroupCounts], process_only: bool) -> Counts:
    by_industry: Counter[str] = Counter()
    total = 0
    for row in rows:
        process = row.industry is not None and classify(row.industry) == "process"
        if process_only and not process:
            continue
        total += row.points
        if row.industry:
            by_industry[row.industry] += row.points
    return Counts(total=total, by_industry=dict(sorted(by_industry.items())))


@dataclass(frozen=True, slots=True)
class Evidence:
    """A snapshot and the declarations in force, read together."""

    snapshot: MetricsSnapshot
    declarations: tuple[Declaration, ...]


async def _measure(
    conn: AsyncConnection[Any],
    start: datetime,
    end: datetime,
    *,
    include_simulated: bool,
    collector: str | None,
    timezone: str,
    generated_at: datetime | None,
) -> MetricsSnapshot:
    params = {"start": start, "end": end}
    async with conn.cursor(row_factory=class_row(_DeviceGroup)) as cur:
        await cur.execute(_DEVICE_GROUPS, params)
        groups = await cur.fetchall()
    counted = [g for g in groups if include_simulated or not g.simulated]
    managed = [g for g in counted if g.managed]
    points = await queries.active_point_counts(conn, start, end, include_simulated)
    excluded: SimulatedExcluded | None = SimulatedExcluded()
    if not include_simulated:
        with_simulated = await queries.active_point_counts(conn, start, end, True)
        simulated = [g for g in groups if g.simulated]
        excluded = SimulatedExcluded(
            connected_devices=sum(g.devices for g in simulated),
            managed_devices=sum(g.devices for g in simulated if g.managed),
            points=sum(r.points for r in with_simulated) - sum(r.points for r in points),
        )
    registry = await registry_figures(conn, start, end, timezone) or RegistryFigures()
    connected_counts = _counts(counted)
    managed_counts = _counts(managed)
    definitions = dict(DEFINITIONS)
    definitions["simulated"] = simulated_definition(include_simulated)
    definitions["months"] = f"calendar months in {timezone}"
    return MetricsSnapshot(
        window_start=start,
        window_end=end,
        include_simulated=include_simulated,
        generated_at=generated_at or utcnow(),
        collector=collector,
        definitions=definitions,
        simulated_excluded=excluded,
        connected_devices=connected_counts,
        managed_devices=managed_counts,
        device_types=len(connected_counts.by_type or {}),
        managed_device_types=len(managed_counts.by_type or {}),
        points=_points(points, process_only=False),
        process_points=_points(points, process_only=True),
        apps=registry.apps,
        subscriptions=registry.subscriptions,
        enterprise_users=registry.enterprise_users,
        developers=registry.developers,
        calls=registry.calls,
    )


async def build_snapshot(
    conn: AsyncConnection[Any],
    start: datetime,
    end: datetime,
    *,
    include_simulated: bool = False,
    collector: str | None = None,
    timezone: str = "Asia/Shanghai",
    generated_at: datetime | None = None,
) -> MetricsSnapshot:
    """Compute every figure the criteria read for [start, end) (whole UTC hours)."""
    return (
        await gather(
            conn,
            start,
            end,
            include_simulated=include_simulated,
            collector=collector,
            timezone=timezone,
            generated_at=generated_at,
        )
    ).snapshot


async def gather(
    conn: AsyncConnection[Any],
    start: datetime,
    end: datetime,
    *,
    include_simulated: bool = False,
    collector: str | None = None,
    timezone: str = "Asia/Shanghai",
    generated_at: datetime | None = None,
) -> Evidence:
    """Read the snapshot and the declarations in force in one consistent view."""
    _check_aligned(start, end)
    async with queries.snapshot(conn):
        return await gather_in(
            conn,
            start,
            end,
            include_simulated=include_simulated,
            collector=collector,
            timezone=timezone,
            generated_at=generated_at,
        )


async def gather_in(
    conn: AsyncConnection[Any],
    start: datetime,
    end: datetime,
    *,
    include_simulated: bool = False,
    collector: str | None = None,
    timezone: str = "Asia/Shanghai",
    generated_at: datetime | None = None,
) -> Evidence:
    """Like gather, inside a view the caller opened (queries.snapshot) to read more in it."""
    _check_aligned(start, end)
    snap = await _measure(
        conn,
        start,
        end,
        include_simulated=include_simulated,
        collector=collector,
        timezone=timezone,
        generated_at=generated_at,
    )
    declared = await declarations.in_force(conn)
    return Evidence(snap, tuple(declared))
