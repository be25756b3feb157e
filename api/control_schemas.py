"""Request and response models of control operations (POST commands, GET control-ops)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from collector.control.outcome import ControlOp

ValueIn = bool | int | float | str


class CommandIn(BaseModel):
    """A control command: write `value` to `point`, probe (write back what is read), or call."""

    model_config = ConfigDict(extra="forbid")

    point: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Point key. Required for a write; for a probe, null lets the collector "
        "choose the device's first writable, allowed point.",
    )
    value: ValueIn | None = Field(None, description="Value to write (not with probe).")
    probe: bool = Field(
        False, description="Read the point, write the same value back, read it again."
    )
    method: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Key of a method configured for the device (OPC UA control.methods): call "
        "it, then read its verification point. Not with point, value or probe.",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> CommandIn:
        if self.method is not None:
            if self.point is not None or self.value is not None or self.probe:
                raise ValueError(
                    "give one form: {method} alone, {point, value} or {probe} (the method's "
                    "configuration says which point verifies it)"
                )
            return self
        if self.probe and self.value is not None:
            raise ValueError("a probe writes back the value it reads: give no value with probe")
        if not self.probe and (self.point is None or self.value is None):
            raise ValueError("a write needs both point and value (or ask probe: true)")
        return self


class ControlOpOut(BaseModel):
    """One recorded control operation."""

    model_config = ConfigDict(frozen=True)

    id: int
    device_id: int
    device: str = Field(description="Device key.")
    protocol: str
    point_id: int | None = Field(description="Null when the point is unknown or was removed.")
    point: str | None = Field(description="Point key asked for (or chosen by a probe).")
    kind: Literal["write", "probe", "method"]
    requested_value: Any = Field(
        description="Value written (a probe's: the value it read; a method's: "
        '{"method": key, "arguments": [...]}).'
    )
    value_before: Any = Field(description="Value read before the write; null if not read.")
    read_back: Any = Field(description="Value read after the write (or confirmed in-band).")
    requested_by: str = Field(description="`api-key:<prefix>` or `schedule`.")
    requested_at: datetime
    completed_at: datetime
    latency_ms: float
    outcome: Literal["verified", "rejected", "mismatch", "timeout", "not_allowed", "error"]
    detail: str | None = Field(description="Why, for every outcome but verified.")
    verified: bool = Field(description="Accepted and confirmed: makes the device managed.")

    @classmethod
    def of(cls, op: ControlOp) -> ControlOpOut:
        """Describe a recorded operation."""
        return cls(
            id=op.id,
            device_id=op.device_id,
            device=op.device,
            protocol=op.protocol,
            point_id=op.point_id,
            point=op.point,
            kind=op.kind.value,
            requested_value=op.requested_value,
            value_before=op.value_before,
            read_back=op.read_back,
            requested_by=op.requested_by,
            requested_at=op.requested_at,
            completed_at=op.completed_at,
            latency_ms=op.latency_ms,
            outcome=op.outcome.value,
            detail=op.detail,
            verified=op.verified,
        )


class ControlOpPage(BaseModel):
    """One page of control operations, newest first."""

    model_config = ConfigDict(frozen=True)

    items: list[ControlOpOut]
    total: int = Field(description="Operations matching the filters, over all pages.")
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page, or null at the end.")
