"""The read planner: merge a device's points into as few read requests as the rules allow.

Points of the same table are read together when the unused addresses between them number
at most `max_gap` and the request stays within the protocol limit (125 registers, or
2000 bits for coils and discrete inputs). Points are taken in address order and each
request is extended as far as the rules allow, which gives the minimum number of requests.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from adapters.modbus.config import BIT_TABLES, ModbusPoint, Table

MAX_REGISTERS = 125
MAX_BITS = 2000


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One read of `count` consecutive addresses of one table, covering some points."""

    table: Table
    address: int
    count: int
    points: tuple[ModbusPoint, ...]

    @property
    def end(self) -> int:
        """One past the last address read."""
        return self.address + self.count

    def values_of(
        self, point: ModbusPoint, values: Sequence[int] | Sequence[bool]
    ) -> Sequence[int] | Sequence[bool]:
        """Return the part of this request's response that belongs to `point`."""
        start = point.address - self.address
        return values[start : start + point.register_count]

    def __str__(self) -> str:
        return f"{self.table.value} {self.address}..{self.end - 1} ({len(self.points)} point(s))"


def limit_of(table: Table) -> int:
    """Most addresses one read of `table` may cover."""
    return MAX_BITS if table in BIT_TABLES else MAX_REGISTERS


def plan_reads(points: Iterable[ModbusPoint], max_gap: int) -> list[ReadRequest]:
    """Return the fewest read requests that cover `points` under the gap and size rules."""
    if max_gap < 0:
        raise ValueError(f"max_gap must be 0 or more, got {max_gap}")
    by_table: dict[Table, list[ModbusPoint]] = {}
    for point in points:
        by_table.setdefault(point.table, []).append(point)
    requests: list[ReadRequest] = []
    for table in Table:  # a stable order: holding, input, coil, discrete_input
        members = sorted(by_table.get(table, []), key=lambda p: (p.address, -p.register_count))
        requests.extend(_plan_table(table, members, max_gap))
    return requests


def _plan_table(table: Table, points: list[ModbusPoint], max_gap: int) -> list[ReadRequest]:
    limit = limit_of(table)
    out: list[ReadRequest] = []
    group: list[ModbusPoint] = []
    start = end = 0
    for point in points:
        point_end = point.address + point.register_count
        if group and point.address - end <= max_gap and max(end, point_end) - start <= limit:
            group.append(point)
            end = max(end, point_end)
            continue
        if group:
            out.append(ReadRequest(table, start, end - start, tuple(group)))
        group, start, end = [point], point.address, point_end
    if group:
        out.append(ReadRequest(table, start, end - start, tuple(group)))
    return out


def split(request: ReadRequest) -> list[ReadRequest]:
    """Break a refused request into smaller ones: first at its gaps, then point by point."""
    if len(request.points) <= 1:
        return [request]
    runs = _plan_table(
        request.table, sorted(request.points, key=lambda p: (p.address, -p.register_count)), 0
    )
    if len(runs) > 1:
        return runs
    return [
        ReadRequest(request.table, p.address, p.register_count, (p,))
        for p in sorted(request.points, key=lambda p: p.address)
    ]
