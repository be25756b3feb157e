"""Counting windows: `30d`, `24h` or explicit start/end, aligned to whole UTC hours."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

HOUR = timedelta(hours=1)
DEFAULT_WINDOW = "30d"
MAX_SPAN = timedelta(days=3660)
_RELATIVE = re.compile(r"^(?P<n>[1-9][0-9]{0,5})(?P<unit>[dh])$")

WINDOW_DEFINITION = (
    "Counts use whole UTC hours, because the rollups are hourly. The window is [start, end): "
    "an explicit start is floored and an explicit end raised to the next hour boundary; a "
    "relative window such as 30d ends at the end of the current UTC hour and spans exactly "
    "that many days or hours. Activity in every hour inside [start, end) counts; `start` and "
    "`end` in the answer are the aligned bounds actually used."
)


class WindowError(ValueError):
    """A window the caller asked for that cannot be used; the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Window:
    """A half-open interval [start, end) of whole UTC hours, and what was asked for."""

    start: datetime
    end: datetime
    requested_start: datetime
    requested_end: datetime
    spec: str | None

    @property
    def hours(self) -> int:
        """Number of whole hours in the window."""
        return int((self.end - self.start) / HOUR)


def floor_hour(ts: datetime) -> datetime:
    """Return ts truncated to the start of its UTC hour."""
    ts = ts.astimezone(UTC)
    return ts.replace(minute=0, second=0, microsecond=0)


def ceil_hour(ts: datetime) -> datetime:
    """Return the first UTC hour boundary at or after ts."""
    floored = floor_hour(ts)
    return floored if floored == ts else floored + HOUR


def parse_relative(spec: str) -> timedelta:
    """Turn `30d` or `24h` into a timedelta; raise WindowError otherwise."""
    match = _RELATIVE.match(spec.strip())
    if not match:
        raise WindowError(
            "window",
            f"window {spec!r} is not understood; use a whole number of days or hours such as "
            "30d, 7d or 24h, or give explicit start and end timestamps",
        )
    n = int(match["n"])
    span = timedelta(days=n) if match["unit"] == "d" else timedelta(hours=n)
    if span > MAX_SPAN:
        raise WindowError("window", f"window {spec!r} is longer than the maximum of 3660 days")
    return span


def _require_aware(field: str, ts: datetime) -> datetime:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise WindowError(
            field,
            f"{field} {ts.isoformat()} has no UTC offset; give one, e.g. "
            f"{ts.replace(tzinfo=UTC).isoformat().replace('+00:00', 'Z')}",
        )
    return ts.astimezone(UTC)


def resolve_window(
    window: str | None,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
) -> Window:
    """Build the window from the query parameters (default 30d); raise WindowError if bad."""
    if window is not None and (start is not None or end is not None):
        raise WindowError("window", "give either window (e.g. 30d) or start/end, not both")
    if start is None and end is not None:
        raise WindowError("start", "end was given without start; give both, or use window=30d")
    if start is None:
        spec = window if window is not None else DEFAULT_WINDOW
        span = parse_relative(spec)
        aligned_end = ceil_hour(now)
        return Window(aligned_end - span, aligned_end, now - span, now, spec.strip())
    begin = _require_aware("start", start)
    finish = _require_aware("end", end) if end is not None else now.astimezone(UTC)
    if finish <= begin:
        raise WindowError("end", f"end {finish.isoformat()} is not after start {begin.isoformat()}")
    if finish - begin > MAX_SPAN:
        raise WindowError("end", "the window from start to end is longer than 3660 days")
    return Window(floor_hour(begin), ceil_hour(finish), begin, finish, None)
