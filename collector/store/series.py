"""Connected and managed devices per step of a window, from the rollups (never raw samples).

Each step is counted exactly as `GET /v1/counts` counts a window: a device is connected in
[start, end) when some hour of it in `device_activity` has a good live sample, and managed
when it is connected and a verified control operation on it was requested in [start, end).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row

from collector.store.queries import _check_aligned


@dataclass(frozen=True)
class Step:
    """One step [start, end) of a series."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class StepCounts:
    """Counts of one step."""

    start: datetime
    end: datetime
    connected_devices: int
    device_types: int
    managed_devices: int
    managed_device_types: int


def steps(start: datetime, end: datetime, step: timedelta) -> list[Step]:
    """Split [start, end) into steps anchored at `end`; the first one may be shorter."""
    _check_aligned(start, end)
    if step <= timedelta(0) or step % timedelta(hours=1):
        raise ValueError(f"step {step} must be a positive whole number of hours")
    out: list[Step] = []
    upper = end
    while upper > start:
        lower = max(start, upper - step)
        out.append(Step(lower, upper))
        upper = lower
    out.reverse()
    return out


# The probes are those of queries._CONNECTED_JOIN and queries._MANAGED_JOIN, with the bounds
# taken from each step instead of the query parameters; steps without devices count zero.
async def device_series(
    conn: AsyncConnection[Any],
    start: datetime,
    end: datetime,
    step: timedelta,
    include_simulated: bool,
) -> list[StepCounts]:
    """Count connected and managed devices (and their types) in every step of [start, end)."""
    parts = steps(start, end, step)
    query = (
        "SELECT b.start, b.end,"
        " count(c.id) AS connected_devices,"
        " count(DISTINCT c.device_type) AS device_types,"
        " count(c.id) FILTER (WHERE c.managed) AS managed_devices,"
        " count(DISTINCT c.device_type) FILTER (WHERE c.managed) AS managed_device_types"
        ' FROM unnest(%(starts)s::timestamptz[], %(ends)s::timestamptz[]) AS b(start, "end")'
        " LEFT JOIN LATERAL ("
        "  SELECT d.id, d.device_type, EXISTS (SELECT 1 FROM control_op o"
        "   WHERE o.device_id = d.id AND o.outcome = 'verified'"
        '   AND o.requested_at >= b.start AND o.requested_at < b."end") AS managed'
        "  FROM device d"
        "  CROSS JOIN LATERAL (SELECT 1 FROM device_activity a WHERE a.device_id = d.id"
        '   AND a.hour >= b.start AND a.hour < b."end"'
        "   AND a.first_good_ts IS NOT NULL AND a.good_samples > 0 LIMIT 1) connected"
        "  WHERE (%(include_simulated)s OR NOT d.simulated)"
        " ) c ON true"
        ' GROUP BY b.start, b."end" ORDER BY b.start'
    )
    params = {
        "starts": [p.start for p in parts],
        "ends": [p.end for p in parts],
        "include_simulated": include_simulated,
    }
    async with conn.cursor(row_factory=class_row(StepCounts)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()
