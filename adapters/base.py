"""Records that adapters emit and the sink they emit them to."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from typing import NamedTuple, Protocol

Value = float | int | bool | str | None


class Quality(enum.IntEnum):
    """Quality of one sample, ordered from best to worst."""

    GOOD = 0
    UNCERTAIN = 1
    BAD = 2


class DeviceEventKind(enum.StrEnum):
    """What happened to a device."""

    REGISTERED = "registered"
    ONLINE = "online"
    OFFLINE = "offline"
    VANISHED = "vanished"


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class Sample(NamedTuple):
    """One reading of one data collection point of one device.

    Immutable and hashable, compared field by field. A named tuple rather than a
    frozen dataclass: the collector makes one per sample (100,000s a second), and a
    tuple is made in one C call instead of six slot writes (docs/benchmarks.md, MQTT).
    """

    device: str
    point: str
    ts: datetime
    value: Value
    quality: Quality = Quality.GOOD
    live: bool = True


_new_tuple = tuple.__new__  # Sample without its Python-level __new__ (hot paths)


def new_sample(  # noqa: PLR0917 (the fields of Sample, in order)
    device: str, point: str, ts: datetime, value: Value, quality: Quality, live: bool
) -> Sample:
    """Return Sample(device, point, ts, value, quality, live): all six fields, positionally.

    For hot paths (about twice as fast as `Sample(...)`); the pipeline checks the fields.
    """
    return _new_tuple(Sample, (device, point, ts, value, quality, live))


def new_samples(  # noqa: PLR0917 (the fields of Sample, in order)
    device: str,
    points: Sequence[str],
    ts: datetime,
    values: Sequence[Value],
    quality: Quality,
    live: bool,
) -> list[Sample]:
    """Return [Sample(device, p, ts, v, quality, live) for p, v in zip(points, values)].

    The samples of one reading in one C-level pass, for hot paths (the pipeline checks
    them).
    """
    n = len(points)
    if len(values) != n:
        raise ValueError(f"{n} points but {len(values)} values")
    fields = zip(
        repeat(device, n), points, repeat(ts, n), values, repeat(quality, n), repeat(live, n),
        strict=True,
    )  # fmt: skip
    return list(map(_new_tuple, repeat(Sample, n), fields))


@dataclass(frozen=True, slots=True)
class PointInfo:
    """A data collection point as the adapter registers it."""

    key: str
    address: str
    data_type: str
    unit: str | None = None
    writable: bool = False
    description: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A device as the adapter registers it, with its points."""

    key: str
    protocol: str
    endpoint: str
    device_type: str | None = None
    industry: str | None = None
    region: str | None = None
    park: str | None = None
    enterprise: str | None = None
    name: str | None = None
    simulated: bool = False
    identity: Mapping[str, str] = field(default_factory=dict)
    points: tuple[PointInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """A change in a device's registration or availability."""

    kind: DeviceEventKind
    device: str
    ts: datetime
    info: DeviceInfo | None = None
    detail: str | None = None


Record = Sample | DeviceEvent


class Sink(Protocol):
    """Where adapters put what they observe; applies backpressure when full."""

    async def put(self, record: Record) -> None:
        """Put one record, waiting while the sink is full."""
        ...

    async def put_many(self, records: Sequence[Record]) -> None:
        """Put records in order, waiting while the sink is full; never drops silently."""
        ...


class AdapterObserver(Protocol):
    """Receives an adapter's operational signals (the collector turns them into metrics)."""

    def connection_changed(self, protocol: str, endpoint: str, up: bool) -> None:
        """Report that the connection to `endpoint` went up or down."""
        ...

    def request_observed(self, protocol: str, kind: str, seconds: float) -> None:
        """Report the latency of one request or poll cycle (`kind`: read, poll, write, ...)."""
        ...


class NullObserver:
    """An observer that ignores everything (the default outside the collector)."""

    def connection_changed(self, protocol: str, endpoint: str, up: bool) -> None:
        """Ignore a connection change."""

    def request_observed(self, protocol: str, kind: str, seconds: float) -> None:
        """Ignore a request latency."""


NULL_OBSERVER = NullObserver()


@dataclass(frozen=True, slots=True)
class AdapterContext:
    """What every adapter is built with besides its devices."""

    sink: Sink
    data_dir: Path = Path(".")
    observer: AdapterObserver = NULL_OBSERVER
