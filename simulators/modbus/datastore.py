"""The simulator's Modbus data store, separate from any transport.

Each unit id has four sparse tables holding only the addresses its points occupy: reading
or writing any other address is an illegal-address exception, and only the addresses of
writable points accept writes. Values written stay until written again. Failure modes
(simulators/modbus/faults.py) can be switched on per point to refuse, misapply or delay.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from adapters.base import Value
from adapters.modbus.config import BIT_TABLES, ModbusPoint, Table
from simulators.modbus.encoding import decode_point, encode_point
from simulators.modbus.faults import SERVER_DEVICE_FAILURE, DelayOn, PointFaults, other_value

IDENTITY_OBJECTS = {
    "vendor": 0x00,
    "product_code": 0x01,
    "revision": 0x02,
    "vendor_url": 0x03,
    "product_name": 0x04,
    "model": 0x05,
    "user_application": 0x06,
}


class ModbusFault(Exception):
    """A request the store refuses, answered with a Modbus exception code."""

    code = 0x04


class IllegalFunction(ModbusFault):
    """The function is not supported (exception code 1)."""

    code = 0x01


class IllegalAddress(ModbusFault):
    """An address that is not mapped, or not writable for a write (exception code 2)."""

    code = 0x02


class RefusedWrite(ModbusFault):
    """A write refused by a switched-on failure mode, with the chosen exception code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class UnknownUnit(LookupError):
    """No device answers at this unit id."""


class UnitStore:
    """The registers, bits and identity of one simulated unit id."""

    def __init__(self, unit_id: int, identity: Mapping[str, str] | None = None) -> None:
        self.unit_id = unit_id
        self.identity: dict[int, bytes] = {
            IDENTITY_OBJECTS[name]: text.encode("utf-8")
            for name, text in (identity or {}).items()
            if name in IDENTITY_OBJECTS and text
        }
        self.tables: dict[Table, dict[int, int | bool]] = {table: {} for table in Table}
        self.writable: dict[Table, set[int]] = {table: set() for table in Table}
        self.points: dict[str, ModbusPoint] = {}
        self.faults: dict[str, PointFaults] = {}
        self._owner: dict[tuple[Table, int], str] = {}
        self.reads = 0
        self.writes = 0

    def add_point(self, point: ModbusPoint, value: Value) -> None:
        """Map a point's addresses and give it an initial value."""
        if point.key in self.points:
            raise ValueError(f"unit {self.unit_id}: point {point.key!r} is mapped twice")
        table = self.tables[point.table]
        for address in range(point.address, point.address + point.register_count):
            if address in table:
                raise ValueError(
                    f"unit {self.unit_id}: {point.table.value} address {address} of point "
                    f"{point.key!r} is already mapped"
                )
            table[address] = False if point.table in BIT_TABLES else 0
            self._owner[(point.table, address)] = point.key
            if point.writable:
                self.writable[point.table].add(address)
        self.points[point.key] = point
        self.set_value(point.key, value)

    def set_value(self, key: str, value: Value) -> None:
        """Store a point's engineering value (encoded; clamped to what the type can hold)."""
        point = self.points[key]
        table = self.tables[point.table]
        for offset, word in enumerate(encode_point(point, value)):
            table[point.address + offset] = word

    def value(self, key: str) -> Value:
        """Return the engineering value a client would decode from the point now."""
        point = self.points[key]
        table = self.tables[point.table]
        words = [table[point.address + i] for i in range(point.register_count)]
        if point.table in BIT_TABLES:
            return bool(words[0])
        return decode_point(point, [int(w) for w in words])

    def read(self, table: Table, address: int, count: int) -> list[int] | list[bool]:
        """Read `count` consecutive addresses; every one must be mapped."""
        cells = self.tables[table]
        missing = [a for a in range(address, address + count) if a not in cells]
        if missing:
            raise IllegalAddress(
                f"unit {self.unit_id}: {table.value} address {missing[0]} is not mapped"
            )
        self.reads += 1
        if table in BIT_TABLES:
            return [bool(cells[a]) for a in range(address, address + count)]
        return [int(cells[a]) for a in range(address, address + count)]

    def write(self, table: Table, address: int, values: Sequence[int] | Sequence[bool]) -> None:
        """Write consecutive addresses of a writable point (holding registers or coils)."""
        if table not in {Table.HOLDING, Table.COIL}:
            raise IllegalFunction(f"unit {self.unit_id}: the {table.value} table is read-only")
        allowed = self.writable[table]
        refused = [a for a in range(address, address + len(values)) if a not in allowed]
        if refused:
            raise IllegalAddress(
                f"unit {self.unit_id}: {table.value} address {refused[0]} is not writable"
            )
        touched = self._touched(table, address, len(values))
        for key in touched:
            code = self.faults[key].refuse if key in self.faults else None
            if code is not None:
                raise RefusedWrite(code, f"unit {self.unit_id}: point {key!r} refuses writes")
        cells = self.tables[table]
        for offset, value in enumerate(values):
            cells[address + offset] = bool(value) if table is Table.COIL else int(value) & 0xFFFF
        self.writes += 1
        for key in touched:
            if key in self.faults and self.faults[key].misreport:
                self.set_value(key, other_value(self.points[key], self.value(key)))

    def _touched(self, table: Table, address: int, count: int) -> list[str]:
        keys = (self._owner.get((table, a)) for a in range(address, address + count))
        return sorted({k for k in keys if k is not None})

    # -- failure modes (see simulators/modbus/faults.py) ----------------------------------

    def _faults_of(self, key: str) -> PointFaults:
        if key not in self.points:
            raise KeyError(f"unit {self.unit_id} has no point {key!r}")
        return self.faults.get(key, PointFaults())

    def refuse_writes(self, key: str, code: int = SERVER_DEVICE_FAILURE) -> None:
        """Answer writes to a point with Modbus exception `code`, changing nothing."""
        self.faults[key] = replace(self._faults_of(key), refuse=code)

    def misreport(self, key: str) -> None:
        """Acknowledge writes to a point but keep a different value (read-back mismatches)."""
        self.faults[key] = replace(self._faults_of(key), misreport=True)

    def delay(self, key: str, seconds: float, on: DelayOn = "write") -> None:
        """Hold back answers to requests touching a point (writes, reads or both)."""
        self.faults[key] = replace(self._faults_of(key), delay=seconds, delay_on=on)

    def clear_faults(self, key: str | None = None) -> None:
        """Switch off the failure modes of one point, or of every point."""
        if key is None:
            self.faults.clear()
        else:
            self.faults.pop(key, None)

    def delay_for(self, table: Table, address: int, count: int, writing: bool) -> float:
        """Seconds to hold back the answer to a request over these addresses."""
        touched = self._touched(table, address, count)
        return max((self.faults[k].delays(writing) for k in touched if k in self.faults), default=0)

    def written_points(self) -> list[str]:
        """Keys of writable points (their values change only when written)."""
        return [key for key, point in self.points.items() if point.writable]


class ServerStore:
    """The units one simulated server answers for."""

    def __init__(self) -> None:
        self.units: dict[int, UnitStore] = {}

    def add_unit(self, unit: UnitStore) -> None:
        """Serve a unit; its id must be free on this server."""
        if unit.unit_id in self.units:
            raise ValueError(f"unit id {unit.unit_id} is already served")
        self.units[unit.unit_id] = unit

    def unit(self, unit_id: int) -> UnitStore:
        """Return the unit with this id, or raise UnknownUnit."""
        try:
            return self.units[unit_id]
        except KeyError:
            raise UnknownUnit(f"no simulated device at unit id {unit_id}") from None
