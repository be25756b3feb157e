"""What a control operation may do before anything is sent: limits, rate, probe choice."""

from __future__ import annotations

import fnmatch
import math
import time
from collections import deque
from collections.abc import Callable, Sequence

from adapters.base import Value
from adapters.limits import limit_violation
from collector.control.config import ControlConfig, PointLimit, Tolerance


def _matches(key: str, globs: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, glob) for glob in globs)


def values_match(requested: Value, read_back: Value, tolerance: Tolerance) -> bool:
    """Tell whether a read-back confirms the requested value (numbers within tolerance)."""
    if isinstance(requested, bool) or isinstance(read_back, bool):
        if isinstance(requested, bool) and isinstance(read_back, bool):
            return requested is read_back
        return False
    if isinstance(requested, int | float) and isinstance(read_back, int | float):
        if not (math.isfinite(requested) and math.isfinite(read_back)):
            return requested == read_back
        bound = max(tolerance.absolute, tolerance.relative * max(abs(requested), abs(read_back)))
        return abs(read_back - requested) <= bound
    return type(requested) is type(read_back) and requested == read_back


class RateLimiter:
    """A sliding window per device: at most `operations` starts in any `period` seconds."""

    def __init__(
        self, operations: int, period: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.operations = operations
        self.period = period
        self._clock = clock
        self._starts: dict[str, deque[float]] = {}

    def acquire(self, device: str) -> str | None:
        """Count one operation on `device`; return why not when the window is full."""
        now = self._clock()
        starts = self._starts.setdefault(device, deque())
        while starts and starts[0] <= now - self.period:
            starts.popleft()
        if len(starts) >= self.operations:
            wait = starts[0] + self.period - now
            return (
                f"rate limit: device {device!r} already had {len(starts)} control operation(s) "
                f"in the last {self.period:g} s (control.rate_limit); try again in {wait:.1f} s"
            )
        starts.append(now)
        return None


class ControlPolicy:
    """The collector's own checks of control.* (the adapters add their protocol's checks)."""

    def __init__(self, config: ControlConfig) -> None:
        self.config = config
        self.rate = RateLimiter(config.rate_limit.operations, config.rate_limit.period)

    def limits_for(self, device: str, point: str) -> list[PointLimit]:
        """Every control.limits rule that matches the point."""
        return [
            rule
            for rule in self.config.limits
            if fnmatch.fnmatchcase(device, rule.device) and fnmatch.fnmatchcase(point, rule.point)
        ]

    def point_refusal(self, device: str, point: str, writable: bool) -> str | None:
        """Say why no value may be written to this point at all; None when some may."""
        where = f"device {device!r} point {point!r}"
        if not self.config.enabled:
            return "control operations are switched off (control.enabled: false)"
        if not writable:
            return (
                f"{where} is not writable (declare it writable in the device's configuration, "
                "or the device does not grant write access)"
            )
        for rule in self.limits_for(device, point):
            if rule.deny:
                return (
                    f"{where} is denied by control.limits "
                    f"(device {rule.device!r}, point {rule.point!r})"
                )
        return None

    def value_refusal(self, device: str, point: str, value: Value) -> str | None:
        """Say why `value` may not be written to this point; None when it may."""
        for rule in self.limits_for(device, point):
            why = limit_violation(value, rule.min, rule.max, rule.allowed_values)
            if why is not None:
                return (
                    f"device {device!r} point {point!r}: {why} "
                    f"(control.limits device {rule.device!r}, point {rule.point!r})"
                )
        return None

    def probes(self, device: str) -> bool:
        """Tell whether the probe schedule covers this device (opt-in and not opted out)."""
        probe = self.config.probe
        return _matches(device, probe.devices) and not _matches(device, probe.exclude)

    def probe_order(self, device: str, writable_points: Sequence[str]) -> list[str]:
        """Writable, not denied points the probe may use, most preferred first."""
        ordered: list[str] = []
        for glob in self.config.probe.points:
            for point in sorted(writable_points):
                if point in ordered or not fnmatch.fnmatchcase(point, glob):
                    continue
                if self.point_refusal(device, point, writable=True) is None:
                    ordered.append(point)
        return ordered
