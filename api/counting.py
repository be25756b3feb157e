"""Counts of connected devices, device types, points and process points, from the rollups."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from api.industries import PROCESS_DEFINITION, is_process_industry
from api.schemas import CountGroupOut, CountsOut, WindowOut
from api.window import WINDOW_DEFINITION, Window
from collector.store import queries

BASE_DEFINITIONS = {
    "window": WINDOW_DEFINITION,
    "connected_devices": (
        "Devices with at least one good-quality sample received through a live protocol session "
        "in the window (device_activity.good_samples > 0 in some hour of the window). "
        "Bulk-imported history and uncertain or bad samples never make a device connected."
    ),
    "device_types": "Distinct device type labels among the connected devices (unlabelled "
    "devices add no type).",
    "points": "Data collection points with at least one good live sample in the window, exact to "
    "the UTC hour (point_activity.good_hours).",
    "process_points": PROCESS_DEFINITION,
    "managed_devices": "Devices with at least one verified control operation requested in the "
    "window: a write, probe or command the device accepted and whose effect was confirmed by "
    "reading the value back (or by the device's own confirmation, for MQTT). The verification's "
    "readings are recorded as live samples, so a managed device is also connected in the window; "
    "the count requires both. Numeric read-backs are compared within control.tolerance. "
    "Rejected, mismatched, timed-out and refused operations never make a device managed.",
    "managed_device_types": "Distinct device type labels among the managed devices.",
    "online_now": "Devices whose current status is online (the collector's latest knowledge), "
    "independent of the window.",
    "groups": "industry and region are the device's own, else its enterprise's; a group with a "
    "null key holds the devices without a value. Device types are distinct per group, so they "
    "do not add up to the total.",
}


def simulated_definition(include_simulated: bool) -> str:
    """Say whether simulated devices are in the counts, and how to change that."""
    if include_simulated:
        return (
            "Simulated devices (served by the bundled simulators) ARE INCLUDED in these counts "
            "because include_simulated=true was asked for."
        )
    return (
        "Simulated devices (served by the bundled simulators) are excluded; "
        "simulated_devices_excluded says how many were left out. Ask include_simulated=true "
        "to include them."
    )


class _Tally:
    """Accumulates one group's numbers."""

    def __init__(self) -> None:
        self.connected_devices = 0
        self.device_types = 0
        self.points = 0
        self.process_points = 0
        self.online_now = 0
        self.managed_devices = 0
        self.managed_device_types = 0


async def compute_counts(
    conn: AsyncConnection[Any],
    window: Window,
    include_simulated: bool,
    group_by: queries.GroupBy | None,
    now: datetime,
) -> CountsOut:
    """Read the rollups in one snapshot and assemble the counts answer."""
    start, end = window.start, window.end
    async with queries.snapshot(conn):
        totals = await queries.connected_device_counts(conn, start, end, include_simulated)
        points = await queries.active_point_counts(conn, start, end, include_simulated)
        online = await queries.online_device_counts(conn, include_simulated)
        managed = await queries.managed_device_counts(conn, start, end, include_simulated)
        excluded = (
            0 if include_simulated else await queries.simulated_connected_devices(conn, start, end)
        )
        if group_by is not None:
            g_devices = await queries.connected_device_counts(
                conn, start, end, include_simulated, group_by
            )
            g_points = await queries.active_point_counts(
                conn, start, end, include_simulated, group_by
            )
            g_online = await queries.online_device_counts(conn, include_simulated, group_by)
            g_managed = await queries.managed_device_counts(
                conn, start, end, include_simulated, group_by
            )

    unclassified: set[str] = set()

    def tally(
        devices: list[queries.DeviceGroupCounts],
        pts: list[queries.PointGroupCounts],
        onl: list[queries.OnlineGroupCounts],
        mgd: list[queries.ManagedGroupCounts],
    ) -> dict[str | None, _Tally]:
        out: dict[str | None, _Tally] = defaultdict(_Tally)
        for d in devices:
            out[d.grp].connected_devices = d.connected_devices
            out[d.grp].device_types = d.device_types
        for p in pts:
            out[p.grp].points += p.points
            process = is_process_industry(p.industry)
            if process:
                out[p.grp].process_points += p.points
            elif process is None and p.industry is not None:
                unclassified.add(p.industry)
        for o in onl:
            out[o.grp].online_now = o.online_now
        for m in mgd:
            out[m.grp].managed_devices = m.managed_devices
            out[m.grp].managed_device_types = m.managed_device_types
        return out

    total = tally(totals, points, online, managed).get(None, _Tally())
    groups: list[CountGroupOut] = []
    if group_by is not None:
        per_group = tally(g_devices, g_points, g_online, g_managed)
        for key in sorted(per_group, key=lambda k: (k is None, k or "")):
            t = per_group[key]
            groups.append(
                CountGroupOut(
                    key=key,
                    connected_devices=t.connected_devices,
                    device_types=t.device_types,
                    points=t.points,
                    process_points=t.process_points,
                    online_now=t.online_now,
                    managed_devices=t.managed_devices,
                    managed_device_types=t.managed_device_types,
                )
            )
    definitions = dict(BASE_DEFINITIONS)
    definitions["simulated"] = simulated_definition(include_simulated)
    return CountsOut(
        window=WindowOut.of(window),
        include_simulated=include_simulated,
        simulated_devices_excluded=excluded,
        connected_devices=total.connected_devices,
        device_types=total.device_types,
        points=total.points,
        process_points=total.process_points,
        online_now=total.online_now,
        managed_devices=total.managed_devices,
        managed_device_types=total.managed_device_types,
        group_by=group_by,
        groups=groups,
        unclassified_industries=sorted(unclassified),
        definitions=definitions,
        generated_at=now,
    )
