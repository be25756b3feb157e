"""JSON topics: topic templates, JSON paths, timestamps and typed point values.

Pure functions and small value classes; nothing here knows about the network.
"""

from __future__ import annotations

import math
import re
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from adapters.base import PointInfo, Quality, Value
from adapters.mqtt.config import JsonTopic, TimestampField
from adapters.mqtt.jsonpath import JsonPath
from adapters.mqtt.rejections import Reason

_SEGMENT = re.compile(r"^\{([a-z_][a-z0-9_]*)\}$")
_MS_THRESHOLD = 1e11  # epoch seconds reach 1e11 in the year 5138; milliseconds did in 1973
_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)
# The plausible range as whole epoch seconds and milliseconds (`parse_timestamp`'s fast path).
_EARLIEST_S, _LATEST_S = int(_EARLIEST.timestamp()), int(_LATEST.timestamp())
_EARLIEST_MS, _LATEST_MS = _EARLIEST_S * 1000, _LATEST_S * 1000
_from_epoch = datetime.fromtimestamp

DATA_TYPE_NAMES = {"number": "float64", "integer": "int64", "boolean": "bool", "string": "string"}


class MappingError(Exception):
    """A message or field that cannot be mapped, with the reason to count it under."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class TopicTemplate:
    """A topic with named single-level segments, e.g. plant/{industry}/{device}/telemetry."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.levels: tuple[tuple[str, bool], ...] = tuple(
            (m.group(1), True) if (m := _SEGMENT.match(level)) else (level, False)
            for level in template.split("/")
        )

    @property
    def subscription(self) -> str:
        """The MQTT filter that receives every topic the template can match."""
        return "/".join("+" if named else text for text, named in self.levels)

    def match(self, topic: str) -> dict[str, str] | None:
        """Return the named segments of `topic`, or None when it does not fit."""
        parts = topic.split("/")
        if len(parts) != len(self.levels):
            return None
        bound: dict[str, str] = {}
        for part, (text, named) in zip(parts, self.levels, strict=True):
            if named:
                if not part:
                    return None
                bound[text] = part
            elif part != text:
                return None
        return bound

    def render(self, **segments: str) -> str:
        """Fill the named segments (the inverse of `match`)."""
        return "/".join(segments[text] if named else text for text, named in self.levels)


def parse_json_object(payload: bytes) -> dict[str, Any]:
    """Decode a payload that must be one JSON object (NaN, Infinity and 1e400 refused).

    orjson (≈5× the standard library's speed here) checks UTF-8 itself, refuses what
    strict JSON refuses, numbers that overflow a double, lone surrogates and nesting
    deeper than 1,024.
    """
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise MappingError(Reason.INVALID_JSON, f"payload is not JSON: {exc}") from None
    if type(document) is not dict:
        raise MappingError(
            Reason.NOT_AN_OBJECT, f"expected a JSON object, got {type(document).__name__}"
        )
    return document


def parse_timestamp(raw: Any, fmt: str, where: str) -> datetime:
    """Turn epoch seconds/milliseconds or an RFC 3339 string into an aware UTC datetime."""
    if type(raw) is int and fmt != "rfc3339":
        # The usual case, an integer in the plausible range, checked as an integer: the
        # same datetime the general path makes, without its checks (bool is not int here).
        if fmt != "epoch_s" and _EARLIEST_MS <= raw < _LATEST_MS:  # auto: >= 1e11, ms
            return _from_epoch(raw / 1000, UTC)
        if fmt != "epoch_ms" and _EARLIEST_S <= raw < _LATEST_S:  # auto: < 1e11, seconds
            return _from_epoch(raw, UTC)
    if isinstance(raw, bool) or raw is None:
        raise MappingError(Reason.BAD_TIMESTAMP, f"{where}: expected a time, got {raw!r}")
    if isinstance(raw, int | float):
        if fmt == "rfc3339":
            raise MappingError(
                Reason.BAD_TIMESTAMP, f"{where}: expected an RFC 3339 string, got {raw!r}"
            )
        millis = fmt == "epoch_ms" or (fmt == "auto" and abs(raw) >= _MS_THRESHOLD)
        try:
            ts = datetime.fromtimestamp(raw / 1000 if millis else raw, UTC)
        except (OverflowError, OSError, ValueError):
            raise MappingError(Reason.BAD_TIMESTAMP, f"{where}: {raw!r} is out of range") from None
    elif isinstance(raw, str):
        if fmt in {"epoch_ms", "epoch_s"}:
            raise MappingError(Reason.BAD_TIMESTAMP, f"{where}: expected a number, got {raw!r}")
        try:
            ts = datetime.fromisoformat(raw)
        except ValueError:
            raise MappingError(
                Reason.BAD_TIMESTAMP, f"{where}: {raw!r} is not an RFC 3339 time"
            ) from None
        if ts.tzinfo is None:
            raise MappingError(
                Reason.BAD_TIMESTAMP, f"{where}: {raw!r} has no UTC offset (RFC 3339 needs one)"
            )
        ts = ts.astimezone(UTC)
    else:
        raise MappingError(
            Reason.BAD_TIMESTAMP, f"{where}: expected a time, got {type(raw).__name__}"
        )
    if not _EARLIEST <= ts < _LATEST:
        raise MappingError(Reason.BAD_TIMESTAMP, f"{where}: {ts.isoformat()} is implausible")
    return ts


def coerce(raw: Any, data_type: str, where: str) -> Value:
    """Check a JSON value against a point's data type and return the sample value."""
    if data_type == "number":
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return float(raw)
    elif data_type == "integer":
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, float) and raw.is_integer():
            return int(raw)
    elif data_type == "boolean":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int) and raw in (0, 1):
            return bool(raw)
    elif data_type == "string":
        if isinstance(raw, str):
            return raw
    elif data_type == "auto":
        if isinstance(raw, bool | str):
            return raw
        if isinstance(raw, int | float) and math.isfinite(raw):
            return raw
    shown = repr(raw) if len(repr(raw)) <= 60 else repr(raw)[:57] + "..."
    raise MappingError(Reason.WRONG_TYPE, f"{where}: expected {data_type}, got {shown}")


def auto_type(value: Value) -> str:
    """Return the point data type name of a discovered value."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    return "string"


class MappedValue(NamedTuple):
    """One point value found in a message (its PointInfo: `JsonTopicMapper.point_info`)."""

    point: str
    value: Value
    quality: Quality = Quality.GOOD


_new_tuple = tuple.__new__  # MappedValue without its Python-level __new__ (hot path)


@dataclass(slots=True)
class MappedMessage:
    """What one JSON message yields: its time, point values and refused fields."""

    ts: datetime
    values: list[MappedValue] = field(default_factory=list)
    problems: list[MappingError] = field(default_factory=list)
    unknown: bool = False  # a value of a point not in `known` (see JsonTopicMapper.map)


class JsonTopicMapper:
    """Maps the messages of one configured JSON topic to point values."""

    def __init__(self, config: JsonTopic) -> None:
        self.config = config
        self.template = TopicTemplate(config.topic)
        self._points = [(p, JsonPath(p.path)) for p in config.points]
        self._declared = {p.key: p for p in config.points}
        self._taken = frozenset(self._declared)
        self._object = JsonPath(config.point_object) if config.point_object else None
        self._ts = _timestamp_path(config.timestamp)
        self.timestamped = config.timestamp is not None
        """The messages carry their sample time (a retained one is still live then)."""
        # One-name paths (`$.values`, `$.ts`), looked up directly by `map_known`.
        self._object_key = _single_name(self._object)
        self._ts_key = _single_name(None if self._ts is None else self._ts[0])
        self._ts_where = "" if self._ts is None else f"timestamp field {self._ts[0].path}"

    def point_info(self, value: MappedValue) -> PointInfo:
        """Return how a point first seen with `value` registers: address, type, unit."""
        declared = self._declared.get(value.point)
        if declared is not None:
            return PointInfo(
                key=declared.key,
                address=f"{self.config.topic}#{declared.path}",
                data_type=DATA_TYPE_NAMES[declared.data_type],
                unit=declared.unit,
                description=declared.description,
            )
        assert self._object is not None
        data_type = "float64" if value.value is None else auto_type(value.value)
        return PointInfo(
            key=value.point,
            address=f"{self.config.topic}#{self._object.path}.{value.point}",
            data_type=data_type,
        )

    def map(
        self,
        document: Mapping[str, Any],
        received: datetime,
        known: Container[str] | None = None,
    ) -> MappedMessage:
        """Return the point values of one decoded message; a bad timestamp refuses it whole.

        With `known` (the points registered so far), `unknown` says whether any value is
        of another point; without it, every value counts as unknown.
        """
        ts = received
        if self._ts is not None:
            path, fmt = self._ts
            found, raw = path.find(document)
            if not found:
                raise MappingError(Reason.MISSING_FIELD, f"timestamp field {path.path} is missing")
            ts = parse_timestamp(raw, fmt, self._ts_where)
        out = MappedMessage(ts=ts)
        for point, path in self._points:
            found, raw = path.find(document)
            if not found:
                out.problems.append(
                    MappingError(Reason.MISSING_FIELD, f"point {point.key}: {path.path} is missing")
                )
                continue
            if raw is None:
                out.values.append(MappedValue(point.key, None, Quality.BAD))
                continue
            try:
                value = coerce(raw, point.data_type, f"point {point.key} ({path.path})")
            except MappingError as exc:
                out.problems.append(exc)
                continue
            out.values.append(MappedValue(point.key, value))
        if self._object is not None:
            self._map_object(document, out, known)
        if known is None:
            out.unknown = bool(out.values)
        elif not out.unknown:
            out.unknown = any(v.point not in known for v in out.values[: len(self._points)])
        return out

    def map_known(
        self, document: Mapping[str, Any], received: datetime, known: Mapping[str, object]
    ) -> tuple[datetime, list[str], list[Value]] | None:
        """Return (time, points, values) of a message `map` would take whole, or None.

        The steady state of a point-object topic, in C-level checks: no declared
        points, the object's members all `known` points, every value a finite number
        or a Boolean. Anything else (None: `map` it) takes the general path, which
        gives the same values for the same message; a bad timestamp raises as in `map`.
        """
        if self._points or self._object is None:
            return None
        name = self._object_key
        members = document.get(name) if name is not None else self._object.find(document)[1]
        if type(members) is not dict or not members:
            return None
        if not members.keys() <= known.keys():  # a new point (known names passed the checks)
            return None
        values = list(members.values())
        try:
            total = sum(values)  # TypeError for a string, null, list or object
        except (TypeError, OverflowError):
            return None
        if total - total != 0:  # an infinite or NaN member, or a sum that overflowed
            return None
        ts = received
        if self._ts is not None:
            path, fmt = self._ts
            name = self._ts_key
            if name is not None and name in document:
                raw = document[name]
            else:
                found, raw = path.find(document)
                if not found:
                    raise MappingError(
                        Reason.MISSING_FIELD, f"timestamp field {path.path} is missing"
                    )
            ts = parse_timestamp(raw, fmt, self._ts_where)
        return ts, list(members), values

    def _map_object(
        self, document: Mapping[str, Any], out: MappedMessage, known: Container[str] | None
    ) -> None:
        # The hot path of JSON telemetry: plain type checks, no per-member allocation
        # besides the value itself.
        assert self._object is not None
        found, members = self._object.find(document)
        if not found:
            out.problems.append(
                MappingError(Reason.MISSING_FIELD, f"point object {self._object.path} is missing")
            )
            return
        if not isinstance(members, dict):
            out.problems.append(
                MappingError(
                    Reason.WRONG_TYPE,
                    f"point object {self._object.path}: expected an object, "
                    f"got {type(members).__name__}",
                )
            )
            return
        taken = self._taken
        append = out.values.append
        good = Quality.GOOD
        new, value_type = _new_tuple, MappedValue
        unknown = False
        for key, raw in members.items():
            if key in taken:
                continue
            if known is not None and key not in known:
                unknown = True
            kind = type(raw)
            if not key or len(key) > 200:
                out.problems.append(
                    MappingError(
                        Reason.WRONG_TYPE, f"point {key[:60]!r} ({self._object.path}): bad name"
                    )
                )
            elif kind is float:
                if raw - raw == 0.0:  # finite (JSON numbers such as 1e400 parse as inf)
                    append(new(value_type, (key, raw, good)))
                else:
                    out.problems.append(
                        MappingError(Reason.WRONG_TYPE, f"point {key}: {raw} is not finite")
                    )
            elif kind is int or kind is bool or kind is str:
                append(new(value_type, (key, raw, good)))
            elif raw is None:
                append(MappedValue(key, None, Quality.BAD))
            else:
                try:
                    coerce(raw, "auto", f"point {key} ({self._object.path})")
                except MappingError as exc:
                    out.problems.append(exc)
        out.unknown = unknown


def _single_name(path: JsonPath | None) -> str | None:
    if path is not None and len(path.steps) == 1 and isinstance(path.steps[0], str):
        return path.steps[0]
    return None


def _timestamp_path(config: TimestampField | None) -> tuple[JsonPath, str] | None:
    if config is None:
        return None
    return JsonPath(config.path), config.format
