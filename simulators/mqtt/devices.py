"""Simulated MQTT devices: their specs and their values (the data store, no transport)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from adapters.base import Value
from simulators.signals import Signal, ValueKind, point_seed, signal_value

PointKind = Literal["float64", "int32", "int64", "bool", "string"]
WriteBehaviour = Literal["accept", "refuse", "misreport"]
"""accept: apply and confirm; refuse: negative ack, value unchanged; misreport: take and
confirm a value other than the one written (so a verifying host must notice)."""

RECONNECT_MAX = 5
"""Longest pause (s) between a simulated device's reconnect attempts (loopback brokers)."""
WAVE = Signal(kind="sine", base=20.0, amplitude=5.0, period=60.0)
_VALUE_KIND: dict[PointKind, ValueKind] = {
    "float64": "number",
    "int32": "number",
    "int64": "number",
    "bool": "bool",
    "string": "string",
}
_INT_RANGE = {"int32": (-(1 << 31), (1 << 31) - 1), "int64": (-(1 << 63), (1 << 63) - 1)}


@dataclass(frozen=True, slots=True)
class PointSpec:
    """One point of a simulated device and how its value moves."""

    key: str
    data_type: PointKind = "float64"
    writable: bool = False
    unit: str | None = None
    signal: Signal = WAVE
    on_write: WriteBehaviour = "accept"


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """A simulated device: identity, classification, points and how it publishes."""

    id: str
    type: str | None
    industry: str | None
    region: str | None
    points: tuple[PointSpec, ...]
    interval: float = 1.0
    encoding: Literal["json", "sparkplug"] = "json"
    group: str = "tally-sim"
    edge_node: str = "edge-1"
    name: str | None = None
    park: str | None = None
    enterprise: str | None = None
    topic_root: str = "plant"
    seed: int = 0

    def classification(self) -> dict[str, str]:
        """Return the fields the device reports about itself (only those that are set)."""
        fields = {
            "name": self.name or self.id,
            "type": self.type,
            "industry": self.industry,
            "region": self.region,
            "park": self.park,
            "enterprise": self.enterprise,
        }
        return {k: v for k, v in fields.items() if v is not None}

    def writable(self) -> list[str]:
        """Return the keys of the points the device reports writable."""
        return [p.key for p in self.points if p.writable]


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """What the device did with a write: applied or refused, and the value it confirms."""

    error: str | None
    confirmed: Value


def misreported(value: Value) -> Value:
    """Return a value that differs from `value` (what a misreporting device confirms)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    return f"{value}?"


@dataclass(slots=True)
class DeviceValues:
    """Current values of one simulated device; written values stick until overwritten."""

    spec: DeviceSpec
    written: dict[str, Value] = field(default_factory=dict)

    def point(self, key: str) -> PointSpec | None:
        """Return the spec of one point."""
        return next((p for p in self.spec.points if p.key == key), None)

    def value(self, point: PointSpec, t: float) -> Value:
        """Return the value of `point` at time `t` (seconds)."""
        if point.key in self.written:
            return self.written[point.key]
        seed = point_seed(self.spec.seed, self.spec.id, point.key)
        value = signal_value(point.signal, t, _VALUE_KIND[point.data_type], seed)
        if point.data_type in _INT_RANGE and isinstance(value, float):
            low, high = _INT_RANGE[point.data_type]
            return min(high, max(low, round(value)))
        if isinstance(value, float):
            return round(value, 6)
        return value

    def values(self, t: float) -> dict[str, Value]:
        """Return every point's value at time `t`."""
        return {p.key: self.value(p, t) for p in self.spec.points}

    def write(self, key: str, value: Value) -> WriteOutcome:
        """Apply a write as the point's `on_write` says; refusals carry an error message."""
        point = self.point(key)
        if point is None:
            return WriteOutcome(f"device {self.spec.id} has no point {key!r}", None)
        current = self.written.get(key)
        if not point.writable:
            return WriteOutcome(f"point {key} of device {self.spec.id} is not writable", current)
        if not _fits(point.data_type, value):
            return WriteOutcome(
                f"point {key} of device {self.spec.id} expects {point.data_type}, got {value!r}",
                current,
            )
        if point.on_write == "refuse":
            return WriteOutcome(
                f"device {self.spec.id} refuses writes to {key} (simulated refusal)", current
            )
        taken = float(value) if point.data_type == "float64" else value  # type: ignore[arg-type]
        if point.on_write == "misreport":
            taken = misreported(taken)
        self.written[key] = taken
        return WriteOutcome(None, taken)


def _fits(data_type: PointKind, value: Value) -> bool:
    if data_type == "float64":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if data_type in _INT_RANGE:
        low, high = _INT_RANGE[data_type]
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    if data_type == "bool":
        return isinstance(value, bool)
    return isinstance(value, str)


def default_fleet(
    json_devices: int = 2, sparkplug_devices: int = 2, interval: float = 1.0
) -> list[DeviceSpec]:
    """Return a small mixed fleet: JSON devices and devices behind one Sparkplug edge node."""
    points = (
        PointSpec("temperature", unit="°C", signal=Signal(kind="sine", base=60.0, amplitude=8.0)),
        PointSpec("pressure", unit="kPa", signal=Signal(kind="sine", base=101.0, amplitude=3.0)),
        PointSpec("running", "bool", writable=True, signal=Signal(value=True)),
        PointSpec("setpoint", writable=True, unit="°C", signal=Signal(value=60.0)),
        PointSpec(
            "count", "int32", signal=Signal(kind="sine", base=1000, amplitude=500, period=600)
        ),
    )
    fleet = [
        DeviceSpec(
            id=f"press-{i + 1}",
            type="hydraulic-press",
            industry="C3421",
            region="360100",
            points=points,
            interval=interval,
            encoding="json",
        )
        for i in range(json_devices)
    ]
    fleet += [
        DeviceSpec(
            id=f"reactor-{i + 1}",
            type="reactor",
            industry="C2614",
            region="320500",
            points=points,
            interval=interval,
            encoding="sparkplug",
        )
        for i in range(sparkplug_devices)
    ]
    return fleet
