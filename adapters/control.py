"""The control contract every protocol adapter offers for verified control operations.

The collector's control service (issue: managed devices) calls `read`, `write` and `read`
again and records the outcome; the exception an adapter raises decides that outcome.
Protocol-specific errors subclass these, so the service never needs to know the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from adapters.base import Sample, Value


class ControlError(Exception):
    """Base of every error a control operation can end with."""


class ControlTargetUnknown(ControlError, LookupError):
    """No device or point with this key behind this adapter; nothing was sent."""


class ControlNotAllowed(ControlError):
    """Refused before anything was sent: not writable, out of bounds, not allowed, rate limit."""


class ControlUnavailable(ControlError):
    """The device cannot be reached right now (not connected); nothing was sent."""


class ControlRejected(ControlError):
    """The device answered and refused (Modbus exception, bad OPC UA status, negative ack)."""


class ControlTimeout(ControlError, TimeoutError):
    """The request was sent but no answer came in time; the effect is unknown."""


class Controllable(Protocol):
    """An adapter that can read and write points of the devices it serves."""

    def controls(self, device: str) -> bool:
        """Report whether `device` is served by this adapter."""
        ...

    async def read(self, device: str, point: str) -> Sample:
        """Read the point's current value from the device, now."""
        ...

    async def write(self, device: str, point: str, value: Value) -> Value | None:
        """Write `value`; return the value the device confirmed in-band, if the protocol does.

        MQTT commands are confirmed by an ack or the next DDATA carrying the new value:
        that value is returned. Modbus and OPC UA return None and are verified by `read`.
        """
        ...


@dataclass(frozen=True, slots=True)
class MethodCheck:
    """How a configured method call is verified: reading `point` must then give `equals`."""

    method: str
    """Key of the configured method."""
    arguments: tuple[Value, ...]
    point: str
    """Key of the point read back after the call."""
    equals: Value


class MethodCallable(Protocol):
    """An adapter that can call configured methods of its devices (OPC UA)."""

    def check_method(self, device: str, method: str) -> MethodCheck:
        """Return how a call is verified; raise ControlTargetUnknown when not configured."""
        ...

    async def call(self, device: str, method: str) -> list[Value]:
        """Call the configured method now; return its output arguments."""
        ...
