"""Failure modes of the simulated Modbus data store: refuse, misreport, delay."""

from __future__ import annotations

import pytest

from adapters.modbus.config import ModbusPoint, Table
from simulators.modbus.datastore import RefusedWrite, UnitStore
from simulators.modbus.faults import other_value


def _unit() -> UnitStore:
    unit = UnitStore(1)
    unit.add_point(ModbusPoint(key="speed", address=0, data_type="uint16", writable=True), 1480)
    unit.add_point(
        ModbusPoint(key="level", address=1, data_type="int32", scale=0.01, writable=True), 7.5
    )
    unit.add_point(
        ModbusPoint(key="run", table="coil", address=0, data_type="bool", writable=True), True
    )
    return unit


def test_refused_writes_answer_the_chosen_code_and_change_nothing() -> None:
    unit = _unit()
    unit.refuse_writes("speed", code=6)
    with pytest.raises(RefusedWrite, match="point 'speed' refuses writes") as caught:
        unit.write(Table.HOLDING, 0, [1500])
    assert caught.value.code == 6
    assert unit.value("speed") == 1480
    unit.write(Table.HOLDING, 1, [0, 900])  # another point still accepts
    assert unit.value("level") == pytest.approx(9.0)
    unit.clear_faults("speed")
    unit.write(Table.HOLDING, 0, [1500])
    assert unit.value("speed") == 1500


def test_misreported_writes_are_acknowledged_but_keep_another_value() -> None:
    unit = _unit()
    for key in ("speed", "level", "run"):
        unit.misreport(key)
    unit.write(Table.HOLDING, 0, [1500])
    assert unit.value("speed") not in (1480, 1500)
    unit.write(Table.HOLDING, 1, [0, 750])  # the same value again
    assert unit.value("level") != pytest.approx(7.5)
    unit.write(Table.COIL, 0, [True])
    assert unit.value("run") is False
    unit.clear_faults()
    assert unit.faults == {}


def test_delays_apply_to_the_requests_asked_for() -> None:
    unit = _unit()
    unit.delay("speed", 1.5)
    assert unit.delay_for(Table.HOLDING, 0, 3, writing=True) == 1.5
    assert unit.delay_for(Table.HOLDING, 0, 3, writing=False) == 0
    assert unit.delay_for(Table.HOLDING, 1, 2, writing=True) == 0  # does not touch speed
    unit.delay("speed", 0.5, on="both")
    assert unit.delay_for(Table.HOLDING, 0, 1, writing=False) == 0.5
    with pytest.raises(KeyError, match="no point 'nope'"):
        unit.delay("nope", 1)


@pytest.mark.parametrize(
    ("point", "value"),
    [
        (ModbusPoint(key="u", address=0, data_type="uint16"), 65535),
        (ModbusPoint(key="u", address=0, data_type="uint16"), 0),
        (ModbusPoint(key="i", address=0, data_type="int16", scale=0.1), 3276.7),
        (ModbusPoint(key="f", address=0, data_type="float32"), 101.3),
        (ModbusPoint(key="s", address=0, data_type="string", length=2), "ABCD"),
        (ModbusPoint(key="b", address=0, data_type="bool"), False),
    ],
)
def test_another_value_always_reads_differently(point: ModbusPoint, value: object) -> None:
    assert other_value(point, value) != value  # type: ignore[arg-type]
