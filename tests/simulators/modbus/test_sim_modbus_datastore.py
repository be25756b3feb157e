"""The simulator's data store: sparse tables, writable points, values in and out."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.modbus.config import ModbusPoint, Table
from simulators.modbus.datastore import (
    IllegalAddress,
    IllegalFunction,
    ServerStore,
    UnitStore,
    UnknownUnit,
)


def pt(key: str, address: int, data_type: str = "uint16", **extra: Any) -> ModbusPoint:
    return ModbusPoint.model_validate(
        {"key": key, "address": address, "data_type": data_type, **extra}
    )


@pytest.fixture
def unit() -> UnitStore:
    store = UnitStore(5, {"vendor": "V (simulated)", "model": "M", "bogus": "ignored"})
    store.add_point(pt("temp", 10, "float32", scale=0.5), 21.0)
    store.add_point(pt("setpoint", 12, "int16", writable=True), -7)
    store.add_point(pt("run", 0, "bool", table="coil", writable=True), True)
    store.add_point(pt("alarm", 0, "bool", table="discrete_input"), False)
    store.add_point(pt("label", 0, "string", table="input", length=2), "AB")
    return store


def test_reads_return_the_encoded_words(unit: UnitStore) -> None:
    assert unit.read(Table.HOLDING, 10, 3) == [0x4228, 0x0000, 0xFFF9]  # 42.0 raw, -7
    assert unit.read(Table.COIL, 0, 1) == [True]
    assert unit.read(Table.DISCRETE_INPUT, 0, 1) == [False]
    assert unit.read(Table.INPUT, 0, 2) == [0x4142, 0x0000]
    assert unit.value("temp") == 21.0
    assert unit.reads == 4


@pytest.mark.parametrize(
    ("table", "address", "count"),
    [(Table.HOLDING, 9, 2), (Table.HOLDING, 13, 1), (Table.COIL, 1, 1), (Table.INPUT, 0, 3)],
)
def test_unmapped_addresses_are_illegal(
    unit: UnitStore, table: Table, address: int, count: int
) -> None:
    with pytest.raises(IllegalAddress, match="is not mapped"):
        unit.read(table, address, count)


def test_writable_points_keep_what_was_written(unit: UnitStore) -> None:
    unit.write(Table.HOLDING, 12, [0x0064])
    unit.write(Table.COIL, 0, [False])
    assert unit.value("setpoint") == 100
    assert unit.value("run") is False
    assert unit.writes == 2
    assert unit.written_points() == ["setpoint", "run"]


def test_only_writable_addresses_accept_writes(unit: UnitStore) -> None:
    with pytest.raises(IllegalAddress, match="holding address 10 is not writable"):
        unit.write(Table.HOLDING, 10, [1])
    with pytest.raises(IllegalAddress, match="not writable"):
        unit.write(Table.HOLDING, 12, [1, 2])  # spills into an unmapped register
    with pytest.raises(IllegalFunction, match="read-only"):
        unit.write(Table.INPUT, 0, [1])
    assert unit.value("temp") == 21.0
    assert unit.writes == 0


def test_identity_objects_by_id(unit: UnitStore) -> None:
    assert unit.identity == {0x00: b"V (simulated)", 0x05: b"M"}


def test_points_may_not_overlap(unit: UnitStore) -> None:
    with pytest.raises(ValueError, match="holding address 11 of point 'x' is already mapped"):
        unit.add_point(pt("x", 11), 0)


def test_server_store_finds_units() -> None:
    server = ServerStore()
    server.add_unit(UnitStore(1))
    assert server.unit(1).unit_id == 1
    with pytest.raises(UnknownUnit, match="unit id 2"):
        server.unit(2)
    with pytest.raises(ValueError, match="already served"):
        server.add_unit(UnitStore(1))
