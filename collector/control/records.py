"""SQL of control operations: the targets they act on, recording them, listing them.

Recording inserts the control_op row and appends the audit log entry in one transaction,
so every recorded operation is in the hash-chained audit log and nothing else is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

from adapters.base import Value
from collector.control.outcome import ControlOp, Kind, Outcome, Requested
from collector.store import audit


@dataclass(frozen=True, slots=True)
class PointTarget:
    """A registered point of a device, as far as control needs it."""

    id: int
    key: str
    data_type: str
    writable: bool
    last_value: float | None = None
    last_value_text: str | None = None

    def last_known(self) -> Value:
        """Return the last sampled value in the point's own type (None when never sampled)."""
        if self.last_value_text is not None:
            return self.last_value_text
        if self.last_value is None:
            return None
        if self.data_type == "bool":
            return self.last_value != 0
        if "int" in self.data_type and self.last_value.is_integer():
            return int(self.last_value)
        return self.last_value


@dataclass(frozen=True, slots=True)
class DeviceTarget:
    """A registered device and its points."""

    id: int
    key: str
    protocol: str
    points: dict[str, PointTarget] = field(default_factory=dict)

    def writable_points(self) -> list[str]:
        """Keys of the points registered as writable."""
        return sorted(k for k, p in self.points.items() if p.writable)


_TARGETS = (
    "SELECT d.id, d.key, d.protocol, p.id, p.key, p.data_type, p.writable, p.last_value,"
    " p.last_value_text FROM device d LEFT JOIN point p ON p.device_id = d.id"
)


def _targets(rows: list[tuple[Any, ...]]) -> list[DeviceTarget]:
    devices: dict[int, DeviceTarget] = {}
    for d_id, d_key, protocol, p_id, p_key, data_type, writable, last, last_text in rows:
        device = devices.setdefault(d_id, DeviceTarget(d_id, d_key, protocol))
        if p_id is not None:
            device.points[p_key] = PointTarget(p_id, p_key, data_type, writable, last, last_text)
    return list(devices.values())


async def find_device(
    conn: AsyncConnection[Any], *, key: str | None = None, device_id: int | None = None
) -> DeviceTarget | None:
    """Return the registered device with this key (or id) and its points, or None."""
    if (key is None) == (device_id is None):
        raise ValueError("give exactly one of key or device_id")
    where = "d.key = %s" if key is not None else "d.id = %s"
    cur = await conn.execute(_TARGETS + f" WHERE {where}", (key if key is not None else device_id,))
    found = _targets(await cur.fetchall())
    return found[0] if found else None


async def probe_targets(conn: AsyncConnection[Any]) -> list[DeviceTarget]:
    """Every registered device that has a writable point, with its points, by key."""
    cur = await conn.execute(
        _TARGETS + " WHERE EXISTS (SELECT 1 FROM point w WHERE w.device_id = d.id AND w.writable)"
        " ORDER BY d.key, p.key"
    )
    return _targets(await cur.fetchall())


def _json(value: Requested) -> Jsonb | None:
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return Jsonb(str(value))
    return Jsonb(value)


def _plain(value: Requested) -> Requested:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


@dataclass(frozen=True, slots=True)
class NewOp:
    """A finished operation, not yet recorded."""

    device: DeviceTarget
    point: str | None
    kind: Kind
    requested_value: Requested
    value_before: Value
    read_back: Value
    requested_by: str
    requested_at: datetime
    completed_at: datetime
    latency_ms: float
    outcome: Outcome
    detail: str | None


_OP_COLUMNS = (
    "o.id, o.device_id, d.key, d.protocol, o.point_id, o.point_key, o.kind, o.requested_value,"
    " o.value_before, o.read_back, o.requested_by, o.requested_at, o.completed_at,"
    " o.latency_ms, o.outcome, o.detail"
)


def _op(row: tuple[Any, ...]) -> ControlOp:
    (op_id, device_id, key, protocol, point_id, point, kind, requested, before, back,
     by, requested_at, completed_at, latency, outcome, detail) = row  # fmt: skip
    return ControlOp(
        id=op_id,
        device_id=device_id,
        device=key,
        protocol=protocol,
        point_id=point_id,
        point=point,
        kind=Kind(kind),
        requested_value=requested,
        value_before=before,
        read_back=back,
        requested_by=by,
        requested_at=requested_at,
        completed_at=completed_at,
        latency_ms=latency,
        outcome=Outcome(outcome),
        detail=detail,
    )


async def record(conn: AsyncConnection[Any], new: NewOp) -> ControlOp:
    """Insert the operation and its audit entry in one transaction; return the stored op."""
    point = new.device.points.get(new.point) if new.point is not None else None
    async with conn.transaction():
        cur = await conn.execute(
            "INSERT INTO control_op (device_id, point_id, point_key, kind, requested_value,"
            " value_before, read_back, requested_by, requested_at, completed_at, latency_ms,"
            " outcome, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " RETURNING id",
            (
                new.device.id,
                point.id if point is not None else None,
                new.point,
                new.kind.value,
                _json(new.requested_value),
                _json(new.value_before),
                _json(new.read_back),
                new.requested_by,
                new.requested_at,
                new.completed_at,
                new.latency_ms,
                new.outcome.value,
                new.detail,
            ),
        )
        row = await cur.fetchone()
        assert row is not None
        op_id = int(row[0])
        await audit.append(
            conn,
            new.requested_by,
            f"control.{new.kind.value}",
            f"device:{new.device.key}/{new.point or '-'}",
            {
                "control_op": op_id,
                "outcome": new.outcome.value,
                "requested_value": _plain(new.requested_value),
                "value_before": _plain(new.value_before),
                "read_back": _plain(new.read_back),
                "detail": new.detail,
            },
        )
        cur = await conn.execute(
            f"SELECT {_OP_COLUMNS} FROM control_op o JOIN device d ON d.id = o.device_id"
            " WHERE o.id = %s",
            (op_id,),
        )
        stored = await cur.fetchone()
    assert stored is not None
    return _op(stored)


@dataclass(frozen=True)
class OpFilter:
    """Which operations a listing returns."""

    device_id: int | None = None
    device: str | None = None
    point: str | None = None
    outcome: Outcome | None = None
    kind: Kind | None = None
    requested_by: str | None = None
    start: datetime | None = None
    end: datetime | None = None


async def list_ops(
    conn: AsyncConnection[Any], filt: OpFilter, limit: int, offset: int
) -> tuple[int, list[ControlOp]]:
    """Return (total matching, one page of operations, newest first)."""
    clauses: list[sql.Composable] = [sql.SQL("true")]
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    columns = {
        "device_id": "o.device_id",
        "device": "d.key",
        "point": "o.point_key",
        "outcome": "o.outcome",
        "kind": "o.kind",
        "requested_by": "o.requested_by",
    }
    for name, column in columns.items():
        value = getattr(filt, name)
        if value is not None:
            clauses.append(sql.SQL(f"{column} = %({name})s"))
            params[name] = value.value if isinstance(value, Kind | Outcome) else value
    if filt.start is not None:
        clauses.append(sql.SQL("o.requested_at >= %(start)s"))
        params["start"] = filt.start
    if filt.end is not None:
        clauses.append(sql.SQL("o.requested_at < %(end)s"))
        params["end"] = filt.end
    where = sql.SQL(" AND ").join(clauses)
    base = sql.SQL("FROM control_op o JOIN device d ON d.id = o.device_id WHERE {w}").format(
        w=where
    )
    cur = await conn.execute(sql.SQL("SELECT count(*) {base}").format(base=base), params)
    total_row = await cur.fetchone()
    cur = await conn.execute(
        sql.SQL("SELECT {cols} {base} ORDER BY o.id DESC LIMIT %(limit)s OFFSET %(offset)s").format(
            cols=sql.SQL(_OP_COLUMNS), base=base
        ),
        params,
    )
    return int(total_row[0]) if total_row else 0, [_op(r) for r in await cur.fetchall()]
