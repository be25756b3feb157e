"""Simulated MQTT devices: their specs and their values (the data store, no transport)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from adapters.base import Value

PointKind = Literal["float", "int", "bool", "string"]


@dataclass(frozen=True, slots=True)
class PointSpec:
    """One point of a simulated device and how its value moves."""

    key: str
    data_type: PointKind = "float"
    writable: bool = False
    unit: str | None = None
    base: float = 20.0
    amplitude: float = 5.0
    period: float = 60.0


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """A simulated device: identity, classification, points and how it publishes."""

    id: str
    type: str
    industry: str
    region: str
    points: tuple[PointSpec, ...]
    interval: float = 1.0
    encoding: Literal["json", "sparkplug"] = "json"
    group: str = "tally-sim"
    edge_node: str = "edge-1"
    name: str | None = None


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
        wave = math.sin(2 * math.pi * t / point.period)
        if point.data_type == "float":
            return round(point.base + point.amplitude * wave, 3)
        if point.data_type == "int":
            return round(point.base + point.amplitude * wave)
        if point.data_type == "bool":
            return wave >= 0
        return f"{self.spec.id}:{point.key}:{int(t // point.period)}"

    def values(self, t: float) -> dict[str, Value]:
        """Return every point's value at time `t`."""
        return {p.key: self.value(p, t) for p in self.spec.points}

    def write(self, key: str, value: Value) -> str | None:
        """Apply a write; return an error message when refused."""
        point = self.point(key)
        if point is None:
            return f"device {self.spec.id} has no point {key!r}"
        if not point.writable:
            return f"point {key} of device {self.spec.id} is not writable"
        expected: dict[str, tuple[type, ...]] = {
            "float": (int, float),
            "int": (int,),
            "bool": (bool,),
            "string": (str,),
        }
        ok = isinstance(value, expected[point.data_type])
        if point.data_type in {"float", "int"} and isinstance(value, bool):
            ok = False
        if not ok:
            return f"point {key} of device {self.spec.id} expects {point.data_type}, got {value!r}"
        self.written[key] = float(value) if point.data_type == "float" else value  # type: ignore[arg-type]
        return None


def default_fleet(
    json_devices: int = 2, sparkplug_devices: int = 2, interval: float = 1.0
) -> list[DeviceSpec]:
    """Return a small mixed fleet: JSON devices and devices behind one Sparkplug edge node."""
    points = (
        PointSpec("temperature", "float", unit="°C", base=60.0, amplitude=8.0),
        PointSpec("pressure", "float", unit="kPa", base=101.0, amplitude=3.0),
        PointSpec("running", "bool", writable=True),
        PointSpec("setpoint", "float", writable=True, unit="°C", base=60.0, amplitude=0.0),
        PointSpec("count", "int", base=1000.0, amplitude=500.0, period=600.0),
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
