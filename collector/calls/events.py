"""One call event as it arrives (JSON object, CSV row, MQTT message), checked field by field.

An event is ``{"id", "ts", "app", "outcome"}`` plus optional ``enterprise``, ``user``,
``developer`` (registry keys of the caller) and ``duration_ms``. ``ts`` is ISO 8601
with a UTC offset (or seconds since the epoch). Checking is hand-written rather than a
pydantic model because it runs once per event on the ingest path; the API documents
the same shape with a model (api/routes/calls.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

Outcome = Literal["ok", "error", "timeout", "denied"]
OUTCOMES: Final = frozenset({"ok", "error", "timeout", "denied"})
FIELDS: Final = ("id", "ts", "app", "enterprise", "user", "developer", "outcome", "duration_ms")
_REQUIRED: Final = ("id", "ts", "app", "outcome")
_KNOWN: Final = frozenset(FIELDS)
MAX_ID = 200


class EventError(ValueError):
    """An event that cannot be stored; the message says which field and what was expected."""


@dataclass(frozen=True, slots=True)
class CallEvent:
    """One invocation: who called what, when, with which outcome."""

    event_id: str
    ts: datetime
    app: str
    enterprise: str | None
    user: str | None
    developer: str | None
    outcome: str
    duration_ms: float | None

    def as_json(self) -> dict[str, object]:
        """Return the event in its wire form."""
        out: dict[str, object] = {
            "id": self.event_id,
            "ts": self.ts.isoformat(),
            "app": self.app,
            "outcome": self.outcome,
        }
        for name in ("enterprise", "user", "developer", "duration_ms"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def _key(raw: dict[str, object], name: str, required: bool) -> str | None:
    value = raw.get(name)
    if value is None or value == "":
        if required:
            raise EventError(f"{name} is missing; expected a registry key")
        return None
    if not isinstance(value, str):
        raise EventError(f"{name} must be a string key, got {type(value).__name__}")
    value = value.strip()
    if not value or len(value) > MAX_ID or " " in value:
        raise EventError(f"{name} {value!r} is not a key (1-{MAX_ID} characters, no spaces)")
    return value


def parse_ts(value: object) -> datetime:
    """Return an aware UTC datetime from ISO 8601 with offset or epoch seconds."""
    if isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            raise EventError(
                f"ts {value!r} is not ISO 8601; expected e.g. 2026-01-31T23:59:59+08:00"
            ) from None
        if ts.tzinfo is None or ts.utcoffset() is None:
            raise EventError(f"ts {value!r} has no UTC offset; add one, e.g. +08:00 or Z")
        return ts.astimezone(UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise EventError(f"ts {value!r} is not a usable epoch time in seconds") from None
    raise EventError(f"ts must be ISO 8601 text or epoch seconds, got {type(value).__name__}")


def parse_event(raw: object) -> CallEvent:
    """Check one event and return it; raise EventError naming the first bad field."""
    if not isinstance(raw, dict):
        raise EventError(
            f"expected a JSON object with {', '.join(_REQUIRED)}, got {type(raw).__name__}"
        )
    if not raw.keys() <= _KNOWN:
        unknown = sorted(str(k) for k in raw.keys() - _KNOWN)
        raise EventError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}")
    event_id = _key(raw, "id", True)
    app = _key(raw, "app", True)
    assert event_id is not None and app is not None
    if "ts" not in raw:
        raise EventError("ts is missing; expected ISO 8601 with offset")
    ts = parse_ts(raw["ts"])
    outcome = raw.get("outcome")
    if outcome not in OUTCOMES:
        raise EventError(f"outcome {outcome!r} is not one of {', '.join(sorted(OUTCOMES))}")
    duration = raw.get("duration_ms")
    if duration is not None and duration != "":
        if isinstance(duration, str):
            try:
                duration = float(duration)
            except ValueError:
                raise EventError(f"duration_ms {duration!r} is not a number") from None
        if isinstance(duration, bool) or not isinstance(duration, int | float):
            raise EventError(f"duration_ms must be a number, got {type(duration).__name__}")
        if not 0 <= duration < float("inf"):
            raise EventError(f"duration_ms {duration!r} must be a finite number >= 0")
        duration = float(duration)
    else:
        duration = None
    return CallEvent(
        event_id,
        ts,
        app,
        _key(raw, "enterprise", False),
        _key(raw, "user", False),
        _key(raw, "developer", False),
        str(outcome),
        duration,
    )
