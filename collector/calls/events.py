"""One call event as it arrives (JSON object, CSV row, MQTT message), checked field by field.

An event is ``{"id", "ts", "app", "outcome"}`` plus optional ``enterprise``, ``user``,
``developer`` (registry keys of the caller) and ``duration_ms``. ``ts`` is ISO 8601
with a UTC offset (or seconds since the epoch). Checking is hand-written rather than a
pydantic model because it runs once per event on the ingest path; the API documents
the same shape with a model (api/routes/calls.py). ``plain_event`` is the ingest's fast
path for events in the common shape; every other event, bad ones included, goes through
``parse_event``, which names the first bad field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

_INF: Final = float("inf")
# Integers up to this convert to float exactly (larger ones go the slow way).
_EXACT_INT: Final = 2**53

Outcome = Literal["ok", "error", "timeout", "denied"]
OUTCOMES: Final = frozenset({"ok", "error", "timeout", "denied"})
FIELDS: Final = ("id", "ts", "app", "enterprise", "user", "developer", "outcome", "duration_ms")
_REQUIRED: Final = ("id", "ts", "app", "outcome")
_KNOWN: Final = frozenset(FIELDS)
MAX_ID = 200

# An event's fields in CallEvent's order: id, ts (UTC), app, enterprise, user, developer,
# outcome, duration_ms.
EventFields = tuple[str, datetime, str, str | None, str | None, str | None, str, float | None]


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

    def fields(self) -> EventFields:
        """Return the fields as a tuple, as ``plain_event`` does."""
        return (
            self.event_id, self.ts, self.app, self.enterprise, self.user, self.developer,
            self.outcome, self.duration_ms,
        )  # fmt: skip

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
    if not isinstance(outcome, str) or outcome not in OUTCOMES:
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
        if not 0 <= duration < _INF:
            raise EventError(f"duration_ms {duration!r} must be a finite number >= 0")
        try:
            duration = float(duration)
        except OverflowError:  # an integer beyond float's range
            raise EventError(f"duration_ms {duration!r} must be a finite number >= 0") from None
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


def _plain_key(value: object) -> bool:
    """Report whether a key is text that parse_event would accept unchanged."""
    return (
        type(value) is str
        and 0 < len(value) <= MAX_ID
        and " " not in value
        and value.strip() == value
    )


def plain_event(raw: object) -> EventFields | None:
    """Return the fields of an event in the common shape, checked; None for any other event.

    The common shape: an object of known fields, keys that need no stripping, ts ISO 8601
    text with a UTC offset, duration_ms absent, null or a number. For such an event the
    result equals ``parse_event(raw).fields()``; anything else (every bad event, and good
    ones in rarer forms such as epoch times or numbers as text) returns None, for
    ``parse_event`` to check and, when bad, to say why. It runs once per event of every
    batch, hence the inlined checks.
    """
    if type(raw) is not dict or not raw.keys() <= _KNOWN:
        return None
    get = raw.get
    event_id = get("id")
    app = get("app")
    ts_text = get("ts")
    outcome = get("outcome")
    if not (
        type(event_id) is str
        and 0 < len(event_id) <= MAX_ID
        and " " not in event_id
        and event_id.strip() == event_id
        and type(app) is str
        and 0 < len(app) <= MAX_ID
        and " " not in app
        and app.strip() == app
        and type(ts_text) is str
        and type(outcome) is str
        and outcome in OUTCOMES
    ):
        return None
    try:
        ts = datetime.fromisoformat(ts_text)
    except ValueError:
        return None
    if ts.tzinfo is None:  # with an offset, fromisoformat gives a fixed-offset timezone
        return None
    duration = get("duration_ms")
    if duration is not None:
        kind = type(duration)
        if not (
            (kind is float and 0 <= duration < _INF)
            or (kind is int and 0 <= duration <= _EXACT_INT)
        ):
            return None
        duration = float(duration)
    enterprise = get("enterprise")
    user = get("user")
    developer = get("developer")
    if enterprise == "":
        enterprise = None
    elif enterprise is not None and not _plain_key(enterprise):
        return None
    if user == "":
        user = None
    elif user is not None and not _plain_key(user):
        return None
    if developer == "":
        developer = None
    elif developer is not None and not _plain_key(developer):
        return None
    return (event_id, ts.astimezone(UTC), app, enterprise, user, developer, outcome, duration)
