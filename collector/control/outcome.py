"""What a control operation is asked to do, and the record of how it ended."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adapters.base import Value

SCHEDULE = "schedule"
"""`requested_by` of operations started by the probe schedule."""


class Kind(enum.StrEnum):
    """What was asked: a write of a given value, a probe (write back the value read), a method."""

    WRITE = "write"
    PROBE = "probe"
    METHOD = "method"
    """Call a configured method, then read its verification point (OPC UA)."""


Requested = Value | dict[str, Any]
"""What was asked: a value to write, or {"method": key, "arguments": [...]} for a call."""


class Outcome(enum.StrEnum):
    """How a control operation ended (control_op.outcome)."""

    VERIFIED = "verified"
    """Written, and the value read back equals the requested value (within tolerance)."""
    REJECTED = "rejected"
    """The device answered and refused (Modbus exception, bad OPC UA status, negative ack)."""
    MISMATCH = "mismatch"
    """The device accepted the write but the value read back differs."""
    TIMEOUT = "timeout"
    """A step got no answer in time; never retried (a write's effect is unknown)."""
    NOT_ALLOWED = "not_allowed"
    """Refused by the collector before anything was sent (policy, bounds, rate limit)."""
    ERROR = "error"
    """Anything else, e.g. the device is not reachable now; the detail says what."""


@dataclass(frozen=True, slots=True)
class ControlRequest:
    """A control operation to perform on one device."""

    device: str
    """Device key."""
    point: str | None
    """Point key; None lets a probe choose (the first writable, allowed point)."""
    kind: Kind
    value: Value = None
    """The value to write (ignored by a probe, which writes back what it read)."""
    requested_by: str = SCHEDULE
    """Who asked: `api-key:<prefix>` or `schedule`."""
    method: str | None = None
    """Key of the configured method to call (kind method only)."""


@dataclass(frozen=True, slots=True)
class ControlOp:
    """One recorded control operation (a row of control_op)."""

    id: int
    device_id: int
    device: str
    protocol: str
    point_id: int | None
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

    @property
    def verified(self) -> bool:
        """True when the device accepted the write and its effect was confirmed."""
        return self.outcome is Outcome.VERIFIED
