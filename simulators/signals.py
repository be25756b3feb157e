"""How a simulated point's value changes over time: a small declarative signal model."""

from __future__ import annotations

import math
import random
import zlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from adapters.base import Value

ValueKind = Literal["bool", "number", "string"]


class Signal(BaseModel):
    """A point's value as a function of time since the simulator started."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["constant", "sine", "sawtooth", "square", "counter", "noise"] = Field(
        "constant",
        description="constant: `value` (else `base`); sine/sawtooth: base + amplitude * wave; "
        "square: alternates every half period; counter: base + step per period; "
        "noise: base ± amplitude, a new seeded draw every period.",
    )
    value: float | bool | str | None = Field(None, description="Value of a constant signal.")
    base: float = 0.0
    amplitude: float = 1.0
    period: float = Field(60.0, gt=0, description="Seconds.")
    phase: float = Field(0.0, ge=0, lt=1, description="Fraction of a period.")
    step: float = 1.0


def point_seed(fleet_seed: int, device: str, point: str) -> int:
    """Return a stable per-point seed (independent of Python's hash randomisation)."""
    return zlib.crc32(f"{fleet_seed}/{device}/{point}".encode())


def _number(signal: Signal, t: float, seed: int) -> float:
    cycles = t / signal.period + signal.phase
    if signal.kind == "sine":
        return signal.base + signal.amplitude * math.sin(2 * math.pi * cycles)
    if signal.kind == "sawtooth":
        return signal.base + signal.amplitude * (cycles - math.floor(cycles))
    if signal.kind == "square":
        high = cycles - math.floor(cycles) < 0.5
        return signal.base + (signal.amplitude if high else 0.0)
    if signal.kind == "counter":
        return signal.base + signal.step * math.floor(t / signal.period)
    if signal.kind == "noise":
        draw = random.Random(seed * 1_000_003 + math.floor(t / signal.period)).random()
        return signal.base + signal.amplitude * (2 * draw - 1)
    value = signal.value
    return float(value) if isinstance(value, int | float) else signal.base


def signal_value(signal: Signal, t: float, kind: ValueKind, seed: int = 0) -> Value:
    """Return the signal's value at `t` seconds, shaped for a bool, number or string point."""
    if kind == "string":
        return "" if signal.value is None else str(signal.value)
    if kind == "bool":
        if signal.kind == "constant":
            return bool(signal.value if signal.value is not None else signal.base)
        return _number(signal, t, seed) > signal.base
    return _number(signal, t, seed)
