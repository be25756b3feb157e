"""Failure modes a test can switch on per simulated point, so control failure paths run.

- refuse: writes to the point are answered with a Modbus exception (default 4, server
  device failure) and change nothing.
- misreport: writes to the point are acknowledged, but the device keeps a different value,
  so what is read back afterwards is not what was written.
- delay: requests touching the point are answered only after `seconds` (the client times
  out first when `seconds` exceeds its timeout); `on` says which requests: write, read, both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from adapters.base import Value
from adapters.modbus.config import BIT_TABLES, DataType, ModbusPoint
from simulators.modbus.encoding import decode_point, encode_point

DelayOn = Literal["write", "read", "both"]
SERVER_DEVICE_FAILURE = 0x04


@dataclass(frozen=True, slots=True)
class PointFaults:
    """The failure modes switched on for one point."""

    refuse: int | None = None
    """Exception code answered to writes, or None."""
    misreport: bool = False
    delay: float = 0.0
    delay_on: DelayOn = "write"

    def delays(self, writing: bool) -> float:
        """Seconds to hold back the answer to a read (writing False) or a write."""
        wanted = "write" if writing else "read"
        return self.delay if self.delay_on in (wanted, "both") else 0.0


def other_value(point: ModbusPoint, value: Value) -> Value:
    """Return a value the point can hold that reads back differently from `value`."""
    if point.table in BIT_TABLES or point.data_type is DataType.BOOL:
        return not value
    if point.data_type is DataType.STRING:
        text = str(value or "")
        return "?" + text[:-1] if text else "?"
    number = float(value) if isinstance(value, int | float) else 0.0
    step = max(1.0, abs(point.scale))
    for candidate in (number + step, number - step):
        shown = decode_point(point, encode_point(point, candidate))
        if shown != decode_point(point, encode_point(point, number)):
            return shown
    return number + step  # unreachable for any type wider than one value
