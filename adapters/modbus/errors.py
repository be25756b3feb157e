"""Errors of the Modbus adapter, from the wire up to the control API.

Each error also subclasses the control contract's outcome (adapters/control.py), so the
collector's control service records the right outcome without knowing the protocol.
"""

from __future__ import annotations

from adapters.control import (
    ControlNotAllowed,
    ControlRejected,
    ControlTargetUnknown,
    ControlTimeout,
    ControlUnavailable,
)

EXCEPTION_NAMES = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "server device failure",
    0x05: "acknowledge",
    0x06: "server device busy",
    0x08: "memory parity error",
    0x0A: "gateway path unavailable",
    0x0B: "gateway target device failed to respond",
}
GATEWAY_CODES = frozenset({0x0A, 0x0B})
"""Exception codes that mean the addressed device itself is unreachable."""


class ModbusError(Exception):
    """Base of every error the Modbus adapter raises."""


class ModbusConnectionError(ModbusError, ControlUnavailable):
    """The connection could not be opened, or was lost."""


class ModbusTimeout(ModbusError, ControlTimeout):
    """The device did not answer within the timeout."""


class ModbusExceptionResponse(ModbusError, ControlRejected):
    """The device answered with a Modbus exception code."""

    def __init__(self, code: int, what: str) -> None:
        self.code = code
        name = EXCEPTION_NAMES.get(code, "unknown exception")
        super().__init__(f"{what}: exception {code} ({name})")

    @property
    def device_unreachable(self) -> bool:
        """True when a gateway reports that the device behind it does not answer."""
        return self.code in GATEWAY_CODES


class UnknownDeviceError(ModbusError, ControlTargetUnknown):
    """No configured Modbus device has this id."""


class UnknownPointError(ModbusError, ControlTargetUnknown):
    """The device has no point with this key."""


class PointNotWritableError(ModbusError, ControlNotAllowed):
    """A write to a point that is not marked writable; nothing was sent."""


class DeviceUnavailableError(ModbusError, ControlUnavailable):
    """The device cannot be reached right now (adapter stopped, or connection down)."""


class ValueNotAllowedError(ModbusError, ControlNotAllowed):
    """A value outside the point's bounds or allowed values, or one its type cannot hold."""
