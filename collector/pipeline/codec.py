"""The spool file format: one Batch as a versioned, self-checking, columnar byte string.

Layout (little-endian header, native-order columns flagged in the header):

    header   magic "TLYB", version u16, flags u16, samples u32, events u32,
             payload length u64, CRC-32 of the payload u32
    payload  batch id (16 bytes), created_at (i64 µs since the Unix epoch, UTC)
             string table: count u32, lengths u32[count], UTF-8 bytes
             sample columns (n = samples): device u32[n], point u32[n] (string indexes),
             ts i64[n] (µs, UTC), quality u8[n], live u8[n], value kind u8[n],
             then per kind: floats f64[], ints i64[], strings u32[] (string indexes)
             events: positions u32[events] (index in the batch's records), JSON array

Timestamps keep their instant to the microsecond and come back in UTC. Samples are
columnar so that a batch encodes and decodes at several hundred thousand samples a
second in pure Python; device events are rare and go as JSON.
"""

from __future__ import annotations

import json
import struct
import sys
import uuid
import zlib
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.base import (
    DeviceEvent,
    DeviceEventKind,
    DeviceInfo,
    PointInfo,
    Quality,
    Record,
    Sample,
    Value,
)
from collector.batch import Batch

MAGIC = b"TLYB"
FORMAT_VERSION = 1
HEADER = struct.Struct("<4sHHIIQI")
_FLAG_BIG_ENDIAN = 0x1
_NATIVE_FLAGS = _FLAG_BIG_ENDIAN if sys.byteorder == "big" else 0
_U32 = struct.Struct("<I")
_BATCH_HEAD = struct.Struct("<16sq")
_COUNTS = struct.Struct("<III")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1

# Value kinds of the sample `kind` column.
_NONE, _FLOAT, _INT, _FALSE, _TRUE, _STR, _BIGINT = range(7)
_QUALITIES = tuple(Quality)


class SpoolFormatError(ValueError):
    """Bytes that are not a valid spooled batch (torn, corrupt, or from another version)."""


class UnencodableRecord(ValueError):
    """A record that the spool format cannot represent (e.g. a naive timestamp)."""


@dataclass(frozen=True, slots=True)
class Header:
    """The fixed-size head of a spool file: what it claims to hold."""

    version: int
    flags: int
    samples: int
    events: int
    payload_length: int
    crc32: int

    @property
    def total_length(self) -> int:
        """Return the byte length of the whole file this header announces."""
        return HEADER.size + self.payload_length


def read_header(data: bytes) -> Header:
    """Parse and check the header at the start of `data`; raise SpoolFormatError if invalid."""
    if len(data) < HEADER.size:
        raise SpoolFormatError(
            f"file is {len(data)} bytes, shorter than the {HEADER.size}-byte header"
        )
    magic, version, flags, samples, events, length, crc = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise SpoolFormatError(f"bad magic {magic!r}, expected {MAGIC!r}: not a Tally spool file")
    if version != FORMAT_VERSION:
        raise SpoolFormatError(
            f"spool format version {version}; this collector reads version {FORMAT_VERSION}"
        )
    return Header(version, flags, samples, events, length, crc)


def _micros(ts: datetime, what: str) -> int:
    if ts.tzinfo is None:
        raise UnencodableRecord(f"{what} has a naive timestamp {ts.isoformat()}; expected tz-aware")
    return (ts - _EPOCH) // _MICROSECOND


def _datetime(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, UTC)


def _point_json(point: PointInfo) -> list[Any]:
    return [
        point.key,
        point.address,
        point.data_type,
        point.unit,
        point.writable,
        point.description,
    ]


def _info_json(info: DeviceInfo) -> dict[str, Any]:
    return {
        "key": info.key,
        "protocol": info.protocol,
        "endpoint": info.endpoint,
        "device_type": info.device_type,
        "industry": info.industry,
        "region": info.region,
        "park": info.park,
        "enterprise": info.enterprise,
        "name": info.name,
        "simulated": info.simulated,
        "identity": dict(info.identity),
        "points": [_point_json(p) for p in info.points],
    }


def _event_json(event: DeviceEvent) -> dict[str, Any]:
    return {
        "kind": event.kind.value,
        "device": event.device,
        "ts": _micros(event.ts, f"event {event.kind.value} of device {event.device!r}"),
        "info": None if event.info is None else _info_json(event.info),
        "detail": event.detail,
    }


def _info_from(raw: Mapping[str, Any]) -> DeviceInfo:
    points = tuple(
        PointInfo(
            key=p[0], address=p[1], data_type=p[2], unit=p[3], writable=p[4], description=p[5]
        )
        for p in raw["points"]
    )
    return DeviceInfo(
        key=raw["key"],
        protocol=raw["protocol"],
        endpoint=raw["endpoint"],
        device_type=raw["device_type"],
        industry=raw["industry"],
        region=raw["region"],
        park=raw["park"],
        enterprise=raw["enterprise"],
        name=raw["name"],
        simulated=raw["simulated"],
        identity=dict(raw["identity"]),
        points=points,
    )


def _event_from(raw: Mapping[str, Any]) -> DeviceEvent:
    info = raw["info"]
    return DeviceEvent(
        kind=DeviceEventKind(raw["kind"]),
        device=raw["device"],
        ts=_datetime(raw["ts"]),
        info=None if info is None else _info_from(info),
        detail=raw["detail"],
    )


def _unusual_value(value: object, sample: Sample) -> tuple[int, Value]:
    """Classify a value whose type is a subclass (IntEnum, numpy scalar) or out of range."""
    if isinstance(value, bool):
        return (_TRUE if value else _FALSE), None
    if isinstance(value, int):
        number = int(value)
        if _INT64_MIN <= number <= _INT64_MAX:
            return _INT, number
        return _BIGINT, str(number)
    if isinstance(value, float):
        return _FLOAT, float(value)
    if isinstance(value, str):
        return _STR, str(value)
    raise UnencodableRecord(
        f"sample of device {sample.device!r} point {sample.point!r} has a value of type "
        f"{type(value).__name__}; expected float, int, bool, str or None"
    )


def encode_batch(batch: Batch) -> bytes:
    """Return the spool file bytes of `batch` (header + checked payload)."""
    strings: dict[str, int] = {}
    intern = strings.setdefault
    devices, points, stamps = array("I"), array("I"), array("q")
    qualities, lives, kinds = array("B"), array("B"), array("B")
    floats, ints, texts = array("d"), array("q"), array("I")
    event_positions = array("I")
    events: list[dict[str, Any]] = []
    epoch, micro = _EPOCH, _MICROSECOND
    for position, record in enumerate(batch.records):
        if type(record) is not Sample:
            if not isinstance(record, DeviceEvent):
                raise UnencodableRecord(f"cannot spool a {type(record).__name__}: {record!r}")
            event_positions.append(position)
            events.append(_event_json(record))
            continue
        ts = record.ts
        if ts.tzinfo is None:
            _micros(ts, f"sample of device {record.device!r} point {record.point!r}")
        devices.append(intern(record.device, len(strings)))
        points.append(intern(record.point, len(strings)))
        stamps.append((ts - epoch) // micro)
        qualities.append(record.quality)
        lives.append(record.live)
        value = record.value
        kind = type(value)
        if kind is float:
            kinds.append(_FLOAT)
            floats.append(value)  # type: ignore[arg-type]
        elif kind is bool:
            kinds.append(_TRUE if value else _FALSE)
        elif value is None:
            kinds.append(_NONE)
        elif kind is str:
            kinds.append(_STR)
            texts.append(intern(value, len(strings)))  # type: ignore[arg-type]
        else:
            code, normal = _unusual_value(value, record)
            kinds.append(code)
            if code == _FLOAT:
                floats.append(normal)  # type: ignore[arg-type]
            elif code == _INT:
                ints.append(normal)  # type: ignore[arg-type]
            elif code in (_STR, _BIGINT):
                texts.append(intern(normal, len(strings)))  # type: ignore[arg-type]
    encoded = [s.encode() for s in strings]
    lengths = array("I", [len(b) for b in encoded])
    parts = [
        _BATCH_HEAD.pack(batch.id.bytes, _micros(batch.created_at, f"batch {batch.id}")),
        _U32.pack(len(encoded)),
        lengths.tobytes(),
        b"".join(encoded),
        devices.tobytes(),
        points.tobytes(),
        stamps.tobytes(),
        qualities.tobytes(),
        lives.tobytes(),
        kinds.tobytes(),
        _COUNTS.pack(len(floats), len(ints), len(texts)),
        floats.tobytes(),
        ints.tobytes(),
        texts.tobytes(),
        event_positions.tobytes(),
        json.dumps(events, ensure_ascii=False, separators=(",", ":")).encode(),
    ]
    payload = b"".join(parts)
    header = HEADER.pack(
        MAGIC,
        FORMAT_VERSION,
        _NATIVE_FLAGS,
        len(devices),
        len(events),
        len(payload),
        zlib.crc32(payload),
    )
    return header + payload


class _Reader:
    """Sequential reads from a payload, with bounds checks that name what was short."""

    def __init__(self, data: memoryview, swap: bool) -> None:
        self._data = data
        self._at = 0
        self._swap = swap

    def take(self, size: int, what: str) -> memoryview:
        end = self._at + size
        if size < 0 or end > len(self._data):
            raise SpoolFormatError(f"payload ends inside {what}")
        view = self._data[self._at : end]
        self._at = end
        return view

    def unpack(self, shape: struct.Struct, what: str) -> tuple[Any, ...]:
        return shape.unpack(self.take(shape.size, what))

    def column(self, typecode: str, count: int, what: str) -> array[Any]:
        column: array[Any] = array(typecode)
        column.frombytes(self.take(count * column.itemsize, what))
        if self._swap:
            column.byteswap()
        return column

    def rest(self) -> memoryview:
        return self.take(len(self._data) - self._at, "the event section")


def _values(kinds: Sequence[int], floats: Iterator[float], ints: Iterator[int],
            texts: Iterator[str]) -> list[Value]:  # fmt: skip
    values: list[Value] = []
    append = values.append
    for kind in kinds:
        if kind == _FLOAT:
            append(next(floats))
        elif kind == _INT:
            append(next(ints))
        elif kind == _STR:
            append(next(texts))
        elif kind == _TRUE:
            append(True)
        elif kind == _FALSE:
            append(False)
        elif kind == _NONE:
            append(None)
        elif kind == _BIGINT:
            append(int(next(texts)))
        else:
            raise SpoolFormatError(f"unknown value kind {kind}")
    return values


def decode_batch(data: bytes) -> Batch:
    """Rebuild the Batch from spool file bytes; raise SpoolFormatError if torn or corrupt."""
    header = read_header(data)
    if len(data) != header.total_length:
        raise SpoolFormatError(
            f"file is {len(data)} bytes but its header announces {header.total_length}"
        )
    payload = memoryview(data)[HEADER.size :]
    if zlib.crc32(payload) != header.crc32:
        raise SpoolFormatError("payload CRC-32 mismatch: the file is corrupt")
    try:
        return _decode_payload(header, payload)
    except (ValueError, KeyError, TypeError, IndexError, StopIteration) as exc:
        if isinstance(exc, SpoolFormatError):
            raise
        raise SpoolFormatError(f"payload does not decode: {exc!r}") from exc


def _decode_payload(header: Header, payload: memoryview) -> Batch:
    reader = _Reader(payload, swap=(header.flags & _FLAG_BIG_ENDIAN) != _NATIVE_FLAGS)
    raw_id, created = reader.unpack(_BATCH_HEAD, "the batch id")
    (count,) = reader.unpack(_U32, "the string count")
    lengths = reader.column("I", count, "the string lengths")
    blob = bytes(reader.take(sum(lengths), "the string table"))
    strings: list[str] = []
    at = 0
    for length in lengths:
        strings.append(blob[at : at + length].decode())
        at += length
    n = header.samples
    devices = reader.column("I", n, "the device column")
    points = reader.column("I", n, "the point column")
    stamps = reader.column("q", n, "the timestamp column")
    qualities = reader.column("B", n, "the quality column")
    lives = reader.column("B", n, "the live column")
    kinds = reader.column("B", n, "the value kind column")
    n_floats, n_ints, n_texts = reader.unpack(_COUNTS, "the value counts")
    floats = reader.column("d", n_floats, "the float values")
    ints = reader.column("q", n_ints, "the integer values")
    texts = reader.column("I", n_texts, "the string values")
    positions = reader.column("I", header.events, "the event positions")
    raw_events = json.loads(bytes(reader.rest()))
    if len(raw_events) != header.events:
        raise SpoolFormatError(f"{len(raw_events)} events, header announces {header.events}")
    values = _values(kinds, iter(floats), iter(ints), (strings[i] for i in texts))
    from_ts, quality_of = _datetime, _QUALITIES
    samples = [
        Sample(strings[d], strings[p], from_ts(t), v, quality_of[q], live == 1)
        for d, p, t, v, q, live in zip(
            devices, points, stamps, values, qualities, lives, strict=True
        )
    ]
    records: list[Record] = []
    taken = 0
    for position, raw in zip(positions, raw_events, strict=True):
        gap = position - len(records)
        records.extend(samples[taken : taken + gap])
        taken += gap
        records.append(_event_from(raw))
    records.extend(samples[taken:])
    if len(records) != n + header.events:
        raise SpoolFormatError("event positions do not fit the sample count")
    return Batch(
        records=tuple(records), id=uuid.UUID(bytes=bytes(raw_id)), created_at=_datetime(created)
    )
