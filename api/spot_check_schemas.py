"""Request and response models of spot checks (POST and GET /v1/spot-checks)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_SAMPLE_SIZE = 1000


class SpotCheckIn(BaseModel):
    """What an auditor asks: how many devices, picked by which seed, among whose candidates."""

    model_config = ConfigDict(extra="forbid")

    sample_size: int = Field(
        ge=1,
        le=MAX_SAMPLE_SIZE,
        description="Devices to read; more than the candidates reads all of them.",
    )
    seed: str = Field(
        min_length=1,
        max_length=200,
        description="Any string the auditor chooses; the same seed and candidates pick the "
        "same devices.",
    )
    window: str = Field(
        "30d",
        description="Relative window whose connected devices are the candidates (30d, 24h).",
    )
    include_simulated: bool = Field(
        False, description="Count devices served by the bundled simulators as candidates too."
    )


class Out(BaseModel):
    """Base of the response models."""

    model_config = ConfigDict(frozen=True)


class SpotCheckWindowOut(Out):
    """The window whose connected devices were the candidates, aligned to UTC hours."""

    spec: str
    start: datetime
    end: datetime


class SpotCheckDeviceOut(Out):
    """One picked device and what its live read gave."""

    position: int = Field(description="0 for the smallest rank.")
    device_id: int | None = Field(description="Null when the device was deleted since.")
    device: str = Field(description="Device key (what the rank is computed over).")
    protocol: str
    point: str | None = Field(description="Point read: the one with the latest good sample.")
    rank: str = Field(description='Hex SHA-256 of seed + "\\n" + device key.')
    answered: bool = Field(description="The device answered the read (whatever the quality).")
    value: Any = Field(description="Value read; null when it did not answer.")
    quality: Literal["good", "uncertain", "bad"] | None
    read_at: datetime | None = Field(description="When the answer arrived.")
    value_ts: datetime | None = Field(
        description="The value's own time stamp; earlier than read_at when the protocol "
        "reports the last value received (MQTT) or the time the value last changed (OPC UA)."
    )
    latency_ms: float | None = Field(description="From sending the read to its end (or failure).")
    error: str | None = Field(description="Why it did not answer.")


class SpotCheckSummaryOut(Out):
    """A stored spot check without its devices."""

    id: int
    requested_by: str = Field(description="`api-key:<prefix>`.")
    seed: str
    sample_size: int
    window: SpotCheckWindowOut
    include_simulated: bool
    algorithm: str
    selection_rule: str = Field(description="How the devices were picked, to recompute it.")
    candidates: int = Field(description="Devices counted as connected in the window.")
    candidates_digest: str = Field(
        description='Hex SHA-256 of the sorted candidate keys, each followed by "\\n".'
    )
    created_at: datetime
    completed_at: datetime
    picked: int
    answered: int
    unanswered: int


class SpotCheckOut(SpotCheckSummaryOut):
    """A stored spot check with every picked device, smallest rank first."""

    devices: list[SpotCheckDeviceOut]


class SpotCheckPage(Out):
    """One page of spot checks, newest first."""

    items: list[SpotCheckSummaryOut]
    total: int
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page, or null at the end.")
