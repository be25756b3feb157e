"""Request and response models of the HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.auth import Role
from api.window import Window


class Out(BaseModel):
    """Base of response models."""

    model_config = ConfigDict(frozen=True)


class HealthOut(Out):
    """Liveness of the API and reachability of the store."""

    status: Literal["ok", "degraded"]
    store: Literal["up", "down"]
    version: str
    detail: str | None = None


class WindowOut(Out):
    """The counting window: aligned bounds used, and what was asked for."""

    start: datetime = Field(description="Inclusive start, on a UTC hour.")
    end: datetime = Field(description="Exclusive end, on a UTC hour.")
    hours: int
    requested_start: datetime
    requested_end: datetime
    spec: str | None = Field(description="Relative window such as 30d, or null for start/end.")

    @classmethod
    def of(cls, window: Window) -> WindowOut:
        """Describe a resolved window."""
        return cls(
            start=window.start,
            end=window.end,
            hours=window.hours,
            requested_start=window.requested_start,
            requested_end=window.requested_end,
            spec=window.spec,
        )


class DeviceOut(Out):
    """A device and its activity in the window (the drill-down behind every count)."""

    id: int
    key: str
    name: str | None
    protocol: str
    endpoint: str
    device_type: str | None
    industry: str | None = Field(description="GB/T 4754-2017 code (device's, else enterprise's).")
    process_industry: bool | None = Field(
        description="True for a process (流程) industry, false for discrete, null if unknown."
    )
    region: str | None
    park: str | None
    enterprise: str | None
    simulated: bool
    identity: dict[str, Any]
    status: str = Field(description="Current status: unknown, online, offline or vanished.")
    status_changed_at: datetime | None
    registered_at: datetime
    first_seen: datetime | None = Field(description="First live sample ever.")
    last_seen: datetime | None = Field(description="Last live sample ever.")
    connected: bool = Field(description="At least one good live sample in the window.")
    samples: int = Field(description="Live samples in the window.")
    good_samples: int = Field(description="Good-quality live samples in the window.")
    imported_samples: int = Field(description="Bulk-imported samples in the window (never count).")
    first_sample: datetime | None = Field(description="First live sample in the window.")
    last_sample: datetime | None = Field(description="Last live sample in the window.")
    first_good_sample: datetime | None
    last_good_sample: datetime | None


class DevicePage(Out):
    """One page of devices ordered by key."""

    items: list[DeviceOut]
    total: int = Field(description="Devices matching the filters, over all pages.")
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page, or null at the end.")
    window: WindowOut
    include_simulated: bool


class PointOut(Out):
    """A data collection point of a device."""

    id: int
    key: str
    address: str
    data_type: str
    unit: str | None
    writable: bool
    description: str | None
    first_seen: datetime | None
    last_seen: datetime | None
    last_value: float | None
    last_value_text: str | None
    last_quality: int | None = Field(description="0 good, 1 uncertain, 2 bad.")
    good_hours: int = Field(description="UTC hours of the window with a good live sample.")
    active: bool = Field(description="Had a good live sample in the window (counts as a point).")


class DeviceDetailOut(DeviceOut):
    """A device with its points."""

    window: WindowOut
    points: list[PointOut]


class CountGroupOut(Out):
    """Counts for one value of the group_by dimension (null: devices without a value)."""

    key: str | None
    connected_devices: int
    device_types: int
    points: int
    process_points: int
    online_now: int
    managed_devices: int = 0
    managed_device_types: int = 0


class CountsOut(Out):
    """Connected devices, device types, points and process points in a window."""

    window: WindowOut
    include_simulated: bool
    simulated_devices_excluded: int = Field(
        description="Simulated devices connected in the window and left out (0 when included)."
    )
    connected_devices: int
    device_types: int
    points: int
    process_points: int
    online_now: int
    managed_devices: int = Field(
        0, description="Devices with at least one verified control operation in the window."
    )
    managed_device_types: int = Field(
        0, description="Distinct device type labels among the managed devices."
    )
    group_by: Literal["industry", "type", "region", "protocol"] | None
    groups: list[CountGroupOut]
    unclassified_industries: list[str] = Field(
        description="Industry codes of counted points that the industry table does not classify."
    )
    definitions: dict[str, str]
    generated_at: datetime


class KeyCreateIn(BaseModel):
    """A request for a new API key."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    label: str | None = Field(None, max_length=200)


class KeyOut(Out):
    """A stored API key, never with its secret."""

    id: int
    prefix: str
    role: Role
    label: str | None
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class KeyCreatedOut(KeyOut):
    """A new key; `key` is shown this once and cannot be recovered later."""

    key: str


class SeriesPointOut(Out):
    """Counts of one step [start, end) of a series."""

    start: datetime
    end: datetime
    connected_devices: int
    device_types: int
    managed_devices: int
    managed_device_types: int


class CountsSeriesOut(Out):
    """Connected and managed devices in every step of a window, oldest step first."""

    window: WindowOut
    step: str = Field(description="The step asked for, such as 1d or 6h.")
    step_hours: int
    include_simulated: bool
    points: list[SeriesPointOut] = Field(
        description="One per step, anchored at the window's end; the first may be shorter."
    )
    definitions: dict[str, str]
    generated_at: datetime
