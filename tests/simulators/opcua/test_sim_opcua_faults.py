"""Write failure modes of the simulated OPC UA server (configuration and values)."""

from __future__ import annotations

import pytest

from simulators.opcua.faults import WriteFaults, other_value


@pytest.mark.parametrize("value", [True, False, 0, 30, -4, 1.5, "auto", ""])
def test_another_value_has_the_same_type_and_differs(value: object) -> None:
    changed = other_value(value)
    assert type(changed) is type(value) and changed != value


def test_only_bad_status_codes_can_refuse_and_clear_is_selective() -> None:
    faults = WriteFaults()
    with pytest.raises(ValueError, match="not the name of a bad OPC UA StatusCode"):
        faults.refuse_writes("d", "p", status="Good")
    faults.refuse_writes("d", "p")
    faults.misreport("d", "q")
    faults.delay("e", "p", 1.0)
    faults.clear(device="d", point="p")
    faults.clear(device="e")
    assert faults._faults.keys() == {("d", "q")}
