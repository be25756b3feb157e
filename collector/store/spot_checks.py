"""SQL of spot checks: their candidates, recording them, reading them back as plain dicts.

Recording inserts the spot check, its per-device rows and its audit log entry in one
transaction. `spot_check` returns a stored spot check as a JSON-serialisable dict, the
form the API answers with and a report bundle embeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

from adapters.base import Value
from collector.spotcheck.reader import Reading
from collector.spotcheck.selection import RULE, Selection
from collector.store import audit
from collector.store.queries import _CONNECTED_JOIN, _SIMULATED, _check_aligned

AUDIT_ACTION = "spot_check"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A device counted as connected in the window, and the point a spot check would read."""

    device_id: int
    key: str
    protocol: str
    point: str | None


# The one definition of "connected" (queries._CONNECTED_JOIN); of each device the point
# whose latest sample was good and most recent, else the most recently seen, else by key.
_CANDIDATES = sql.SQL(
    "SELECT d.id, d.key, d.protocol, pt.key FROM device d {connected}"
    " LEFT JOIN LATERAL (SELECT p.key FROM point p WHERE p.device_id = d.id"
    " ORDER BY (p.last_quality = 0) DESC NULLS LAST, p.last_seen DESC NULLS LAST, p.key"
    " LIMIT 1) pt ON true"
    " WHERE {simulated} ORDER BY d.key"
).format(connected=_CONNECTED_JOIN, simulated=_SIMULATED)


async def candidates(
    conn: AsyncConnection[Any], start: datetime, end: datetime, include_simulated: bool
) -> list[Candidate]:
    """Return the devices counted as connected in [start, end), by key, with a point to read."""
    _check_aligned(start, end)
    cur = await conn.execute(
        _CANDIDATES, {"start": start, "end": end, "include_simulated": include_simulated}
    )
    return [Candidate(int(i), k, p, pt) for i, k, p, pt in await cur.fetchall()]


@dataclass(frozen=True, slots=True)
class NewSpotCheck:
    """A finished spot check, not yet recorded."""

    requested_by: str
    seed: str
    sample_size: int
    window_spec: str
    window_start: datetime
    window_end: datetime
    include_simulated: bool
    selection: Selection
    created_at: datetime
    completed_at: datetime
    readings: Sequence[Reading]


def _jsonable(value: Value) -> Value:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _quality(reading: Reading) -> str | None:
    return reading.quality.name.lower() if reading.quality is not None else None


async def record(conn: AsyncConnection[Any], new: NewSpotCheck) -> int:
    """Insert the spot check, its devices and its audit entry in one transaction; return its id."""
    sel = new.selection
    async with conn.transaction():
        cur = await conn.execute(
            "INSERT INTO spot_check (requested_by, seed, sample_size, window_spec, window_start,"
            " window_end, include_simulated, algorithm, candidates, candidates_digest,"
            " created_at, completed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " RETURNING id",
            (
                new.requested_by, new.seed, new.sample_size, new.window_spec, new.window_start,
                new.window_end, new.include_simulated, sel.algorithm, sel.candidates,
                sel.candidates_digest, new.created_at, new.completed_at,
            ),
        )  # fmt: skip
        row = await cur.fetchone()
        assert row is not None
        check_id = int(row[0])
        async with conn.cursor() as rows:
            await rows.executemany(
                "INSERT INTO spot_check_device (spot_check_id, position, device_id, device_key,"
                " protocol, point_key, rank, answered, value, quality, read_at, value_ts,"
                " latency_ms, error)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        check_id, position, r.target.device_id, r.target.key, r.target.protocol,
                        r.target.point, r.target.rank, r.answered,
                        Jsonb(_jsonable(r.value)) if r.value is not None else None,
                        _quality(r), r.read_at, r.value_ts, r.latency_ms, r.error,
                    )
                    for position, r in enumerate(new.readings)
                ],
            )  # fmt: skip
        await audit.append(
            conn,
            new.requested_by,
            AUDIT_ACTION,
            f"spot-check/{check_id}",
            {
                "spot_check": check_id,
                "seed": new.seed,
                "sample_size": new.sample_size,
                "window": new.window_spec,
                "include_simulated": new.include_simulated,
                "algorithm": sel.algorithm,
                "candidates": sel.candidates,
                "candidates_digest": sel.candidates_digest,
                "picked": [r.target.key for r in new.readings],
                "unanswered": [r.target.key for r in new.readings if not r.answered],
            },
        )
    return check_id


_SUMMARY = (
    "SELECT s.id, s.requested_by, s.seed, s.sample_size, s.window_spec, s.window_start,"
    " s.window_end, s.include_simulated, s.algorithm, s.candidates, s.candidates_digest,"
    " s.created_at, s.completed_at,"
    " (SELECT count(*) FROM spot_check_device x WHERE x.spot_check_id = s.id) AS picked,"
    " (SELECT count(*) FROM spot_check_device x WHERE x.spot_check_id = s.id AND x.answered)"
    " AS answered FROM spot_check s"
)

_DEVICES = (
    "SELECT position, device_id, device_key, protocol, point_key, rank, answered, value,"
    " quality, read_at, value_ts, latency_ms, error FROM spot_check_device WHERE spot_check_id = %s"
    " ORDER BY position"
)


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts is not None else None


def _summary(row: tuple[Any, ...]) -> dict[str, Any]:
    (check_id, by, seed, size, spec, start, end, simulated, algorithm, count, digest,
     created, completed, picked, answered) = row  # fmt: skip
    return {
        "id": check_id,
        "requested_by": by,
        "seed": seed,
        "sample_size": size,
        "window": {"spec": spec, "start": _iso(start), "end": _iso(end)},
        "include_simulated": simulated,
        "algorithm": algorithm,
        "selection_rule": RULE,
        "candidates": count,
        "candidates_digest": digest,
        "created_at": _iso(created),
        "completed_at": _iso(completed),
        "picked": int(picked),
        "answered": int(answered),
        "unanswered": int(picked) - int(answered),
    }


def _device(row: tuple[Any, ...]) -> dict[str, Any]:
    (position, device_id, key, protocol, point, rank, answered, value, quality, read_at,
     value_ts, latency, error) = row  # fmt: skip
    return {
        "position": position,
        "device_id": device_id,
        "device": key,
        "protocol": protocol,
        "point": point,
        "rank": rank,
        "answered": answered,
        "value": value,
        "quality": quality,
        "read_at": _iso(read_at),
        "value_ts": _iso(value_ts),
        "latency_ms": latency,
        "error": error,
    }


async def spot_check(conn: AsyncConnection[Any], check_id: int) -> dict[str, Any] | None:
    """Return a stored spot check with its devices as a JSON-serialisable dict, or None."""
    cur = await conn.execute(_SUMMARY + " WHERE s.id = %s", (check_id,))
    row = await cur.fetchone()
    if row is None:
        return None
    out = _summary(row)
    cur = await conn.execute(_DEVICES, (check_id,))
    out["devices"] = [_device(r) for r in await cur.fetchall()]
    return out


async def spot_check_page(
    conn: AsyncConnection[Any], limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """Return (total, one page of spot check summaries without their devices, newest first)."""
    cur = await conn.execute("SELECT count(*) FROM spot_check")
    total = await cur.fetchone()
    cur = await conn.execute(_SUMMARY + " ORDER BY s.id DESC LIMIT %s OFFSET %s", (limit, offset))
    return int(total[0]) if total else 0, [_summary(r) for r in await cur.fetchall()]
