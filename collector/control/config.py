"""The `control:` section of tally.yaml: what control operations may do, and the probe.

The defaults are the safe ones: only points declared writable can be written, every
device is rate limited, and the manageability probe is off until switched on.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapters.base import Value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RateLimit(_Strict):
    """At most `operations` control operations per device in any `period` seconds."""

    operations: int = Field(6, ge=1, le=10_000, description="Operations per device per period.")
    period: float = Field(60.0, gt=0, le=86_400, description="Seconds of the sliding window.")


class Tolerance(_Strict):
    """How close a numeric read-back must be to the requested value to count as verified."""

    relative: float = Field(
        1e-6, ge=0, le=0.1, description="Fraction of the requested value's magnitude."
    )
    absolute: float = Field(1e-9, ge=0, description="Engineering units; the larger bound wins.")


class PointLimit(_Strict):
    """Bounds for the points matching `device` and `point` (globs); every matching rule applies."""

    device: str = Field("*", min_length=1, description="Glob of device keys.")
    point: str = Field("*", min_length=1, description="Glob of point keys.")
    deny: bool = Field(False, description="Refuse every write to matching points.")
    min: float | None = Field(None, description="Lowest value a write may set.")
    max: float | None = Field(None, description="Highest value a write may set.")
    allowed: list[bool | int | float | str] | None = Field(
        None, min_length=1, description="The only values a write may set."
    )

    @model_validator(mode="after")
    def _ordered(self) -> PointLimit:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self

    @property
    def allowed_values(self) -> list[Value] | None:
        """The allowed values as adapter values."""
        return list(self.allowed) if self.allowed is not None else None


class ProbeConfig(_Strict):
    """The manageability probe: read a point, write the same value back, read it again."""

    enabled: bool = Field(False, description="Off by default: nothing is written unless asked.")
    interval: float = Field(
        3600.0, ge=1, le=31 * 86_400, description="Seconds between two probes of one device."
    )
    devices: list[str] = Field(
        default_factory=lambda: ["*"], description="Globs of device keys that opt in."
    )
    exclude: list[str] = Field(
        default_factory=list, description="Globs of device keys that opt out (wins over devices)."
    )
    points: list[str] = Field(
        default_factory=lambda: ["*"],
        description="Globs of point keys the probe may use, in order of preference; the first "
        "writable, allowed point matching the earliest glob is probed.",
    )
    concurrency: int = Field(8, ge=1, le=1_000, description="Probes in flight at once.")


class ControlConfig(_Strict):
    """Control operations (writes, probes) through the collector's adapters."""

    enabled: bool = Field(
        True,
        description="False refuses every control operation (recorded as not_allowed).",
    )
    timeout: float = Field(
        5.0, gt=0, le=300, description="Seconds each step (read, write, read back) may take."
    )
    settle: float = Field(
        0.0, ge=0, le=60, description="Seconds to wait after a write before reading back."
    )
    rate_limit: RateLimit = RateLimit()
    tolerance: Tolerance = Tolerance()
    limits: list[PointLimit] = Field(default_factory=list)
    probe: ProbeConfig = ProbeConfig()
