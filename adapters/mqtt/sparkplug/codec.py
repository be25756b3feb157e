"""Sparkplug B topics and payloads: decode, encode and typed metric values."""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import DecodeError

from adapters.base import Quality, Value
from adapters.mqtt.json_mapping import MappingError
from adapters.mqtt.rejections import Reason
from adapters.mqtt.sparkplug import sparkplug_b_pb2 as pb

NAMESPACE = "spBv1.0"
REBIRTH_METRIC = "Node Control/Rebirth"
BDSEQ_METRIC = "bdSeq"

Payload = pb.Payload
Metric = pb.Payload.Metric


class DataType(enum.IntEnum):
    """Sparkplug B 3.0 data types (the numbers of the DataType enum)."""

    UNKNOWN = 0
    INT8 = 1
    INT16 = 2
    INT32 = 3
    INT64 = 4
    UINT8 = 5
    UINT16 = 6
    UINT32 = 7
    UINT64 = 8
    FLOAT = 9
    DOUBLE = 10
    BOOLEAN = 11
    STRING = 12
    DATETIME = 13
    TEXT = 14
    UUID = 15
    DATASET = 16
    BYTES = 17
    FILE = 18
    TEMPLATE = 19
    PROPERTYSET = 20
    PROPERTYSETLIST = 21


_SIGNED_BITS = {DataType.INT8: 8, DataType.INT16: 16, DataType.INT32: 32, DataType.INT64: 64}
_UNSIGNED_BITS = {DataType.UINT8: 8, DataType.UINT16: 16, DataType.UINT32: 32, DataType.UINT64: 64}
_LONG_TYPES = frozenset({DataType.INT64, DataType.UINT64, DataType.DATETIME})
_STRING_TYPES = frozenset({DataType.STRING, DataType.TEXT, DataType.UUID})
SAMPLED_TYPES = frozenset(
    {*_SIGNED_BITS, *_UNSIGNED_BITS, DataType.FLOAT, DataType.DOUBLE, DataType.BOOLEAN}
    | _STRING_TYPES
    | {DataType.DATETIME}
)

POINT_TYPE = {
    DataType.INT8: "int8",
    DataType.INT16: "int16",
    DataType.INT32: "int32",
    DataType.INT64: "int64",
    DataType.UINT8: "uint8",
    DataType.UINT16: "uint16",
    DataType.UINT32: "uint32",
    DataType.UINT64: "uint64",
    DataType.FLOAT: "float32",
    DataType.DOUBLE: "float64",
    DataType.BOOLEAN: "bool",
    DataType.STRING: "string",
    DataType.TEXT: "string",
    DataType.UUID: "string",
    DataType.DATETIME: "datetime",
}


class MessageType(enum.StrEnum):
    """The Sparkplug B message types of a topic."""

    NBIRTH = "NBIRTH"
    NDEATH = "NDEATH"
    DBIRTH = "DBIRTH"
    DDEATH = "DDEATH"
    NDATA = "NDATA"
    DDATA = "DDATA"
    NCMD = "NCMD"
    DCMD = "DCMD"


_DEVICE_TYPES = frozenset(
    {MessageType.DBIRTH, MessageType.DDEATH, MessageType.DDATA, MessageType.DCMD}
)


@dataclass(frozen=True, slots=True)
class SparkplugTopic:
    """spBv1.0/<group>/<type>/<edge node>[/<device>]."""

    group: str
    message_type: MessageType
    edge_node: str
    device: str | None = None

    def __str__(self) -> str:
        tail = f"/{self.device}" if self.device is not None else ""
        return f"{NAMESPACE}/{self.group}/{self.message_type.value}/{self.edge_node}{tail}"


def parse_topic(topic: str) -> SparkplugTopic:
    """Parse a Sparkplug B topic or raise MappingError(bad_topic)."""
    parts = topic.split("/")
    if len(parts) not in (4, 5) or parts[0] != NAMESPACE or not all(parts):
        raise MappingError(Reason.BAD_TOPIC, f"not a Sparkplug B topic: {topic!r}")
    try:
        kind = MessageType(parts[2])
    except ValueError:
        raise MappingError(
            Reason.BAD_TOPIC, f"unknown Sparkplug message type {parts[2]!r}"
        ) from None
    if (len(parts) == 5) != (kind in _DEVICE_TYPES):
        raise MappingError(
            Reason.BAD_TOPIC, f"{kind.value} topic has the wrong number of levels: {topic!r}"
        )
    return SparkplugTopic(parts[1], kind, parts[3], parts[4] if len(parts) == 5 else None)


def decode_payload(data: bytes) -> pb.Payload:
    """Decode a Sparkplug B payload or raise MappingError(undecodable_protobuf)."""
    payload = pb.Payload()
    try:
        payload.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise MappingError(
            Reason.UNDECODABLE_PROTOBUF, f"not a Sparkplug B payload ({len(data)} bytes): {exc}"
        ) from None
    return payload


def encode_payload(payload: pb.Payload) -> bytes:
    """Serialize a payload to its wire bytes."""
    return payload.SerializeToString()


def ms(ts: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime."""
    return round(ts.timestamp() * 1000)


def from_ms(value: int) -> datetime:
    """Aware UTC datetime of epoch milliseconds."""
    return datetime.fromtimestamp(value / 1000, UTC)


def _shortest_float32(value: float) -> float:
    for digits in range(6, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.pack("<f", candidate) == struct.pack("<f", value):
            return candidate
    return value


def set_value(metric: pb.Payload.Metric, datatype: DataType, value: Value) -> None:
    """Put a Python value into the right oneof field for `datatype` (for encoding)."""
    metric.datatype = int(datatype)
    if value is None:
        metric.is_null = True
    elif datatype in _SIGNED_BITS or datatype in _UNSIGNED_BITS:
        number = int(value)
        if datatype in _LONG_TYPES:
            metric.long_value = number & 0xFFFF_FFFF_FFFF_FFFF
        else:
            metric.int_value = number & 0xFFFF_FFFF
    elif datatype is DataType.FLOAT:
        metric.float_value = float(value)
    elif datatype is DataType.DOUBLE:
        metric.double_value = float(value)
    elif datatype is DataType.BOOLEAN:
        metric.boolean_value = bool(value)
    elif datatype in _STRING_TYPES:
        metric.string_value = str(value)
    elif datatype is DataType.DATETIME:
        metric.long_value = (
            int(value) if not isinstance(value, str) else ms(datetime.fromisoformat(value))
        )
    else:
        raise ValueError(f"cannot encode a {datatype.name} metric")


def _signed(kind: DataType) -> Callable[[int, str], Value]:
    bits = _SIGNED_BITS[kind]
    width = 64 if kind in _LONG_TYPES else 32
    low, high = -(1 << (bits - 1)), 1 << (bits - 1)

    def convert(raw: int, where: str) -> Value:
        signed = raw - (1 << width) if raw >= 1 << (width - 1) else raw
        if bits < width and high <= signed < 1 << bits:
            signed -= 1 << bits  # an encoder that wrote only the type's own bits
        if not low <= signed < high:
            raise MappingError(Reason.WRONG_TYPE, f"{where}: {raw} is out of {kind.name} range")
        return signed

    return convert


def _unsigned(kind: DataType) -> Callable[[int, str], Value]:
    limit = 1 << _UNSIGNED_BITS[kind]

    def convert(raw: int, where: str) -> Value:
        if raw >= limit:
            raise MappingError(Reason.WRONG_TYPE, f"{where}: {raw} is out of {kind.name} range")
        return raw

    return convert


def _float32(raw: float, where: str) -> Value:
    return _shortest_float32(raw)


def _datetime(raw: int, where: str) -> Value:
    try:
        return from_ms(raw).isoformat()
    except (OverflowError, OSError, ValueError):
        raise MappingError(Reason.WRONG_TYPE, f"{where}: DateTime {raw} is out of range") from None


def _field_of(kind: DataType) -> str:
    if kind in _LONG_TYPES:
        return "long_value"
    if kind in _SIGNED_BITS or kind in _UNSIGNED_BITS:
        return "int_value"
    if kind is DataType.FLOAT:
        return "float_value"
    if kind is DataType.DOUBLE:
        return "double_value"
    if kind is DataType.BOOLEAN:
        return "boolean_value"
    return "string_value"


def _converter(kind: DataType) -> Callable[[Any, str], Value] | None:
    if kind in _SIGNED_BITS:
        return _signed(kind)
    if kind in _UNSIGNED_BITS:
        return _unsigned(kind)
    if kind is DataType.FLOAT:
        return _float32
    if kind is DataType.DATETIME:
        return _datetime
    return None  # Double, Boolean, String, Text, UUID: the field is the value


_DECODERS: dict[int, tuple[DataType, str, Callable[[Any, str], Value] | None]] = {
    int(kind): (kind, _field_of(kind), _converter(kind)) for kind in SAMPLED_TYPES
}


def metric_value(metric: pb.Payload.Metric, datatype: int, where: str) -> Value:
    """Return a metric's value as a sample value, checked against its data type.

    `where` names the metric in error messages.
    """
    decoder = _DECODERS.get(datatype)
    if decoder is None:
        raise MappingError(
            Reason.UNSUPPORTED_DATATYPE, f"{where}: data type {datatype} is not sampled"
        )
    if metric.is_null:
        return None
    kind, expected, convert = decoder
    field = metric.WhichOneof("value")
    if field != expected:
        raise MappingError(
            Reason.WRONG_TYPE, f"{where}: {kind.name} needs {expected}, the metric has {field}"
        )
    raw = getattr(metric, expected)
    return raw if convert is None else convert(raw, where)


def metric_quality(metric: pb.Payload.Metric) -> Quality:
    """Quality from a `Quality` property (OPC DA codes: 192 good), else good; null is bad."""
    if metric.is_null:
        return Quality.BAD
    if not metric.HasField("properties"):
        return Quality.GOOD
    props = metric.properties
    for key, prop in zip(props.keys, props.values, strict=False):
        if key.lower() != "quality" or prop.WhichOneof("value") not in {"int_value", "long_value"}:
            continue
        code = prop.int_value if prop.WhichOneof("value") == "int_value" else prop.long_value
        if code >= 0xC0:
            return Quality.GOOD
        return Quality.UNCERTAIN if code >= 0x40 else Quality.BAD
    return Quality.GOOD


WRITABLE_PROPERTY = "writable"


def metric_writable(metric: pb.Payload.Metric) -> bool:
    """Tell whether a birth metric carries the boolean property `writable` set to true."""
    props = metric.properties
    for key, prop in zip(props.keys, props.values, strict=False):
        if key.lower() == WRITABLE_PROPERTY and prop.WhichOneof("value") == "boolean_value":
            return prop.boolean_value
    return False


def set_writable(metric: pb.Payload.Metric) -> None:
    """Mark a birth metric writable (the boolean property `writable`)."""
    metric.properties.keys.append(WRITABLE_PROPERTY)
    metric.properties.values.add(type=int(DataType.BOOLEAN), boolean_value=True)


def command_value(datatype: int, value: Value, where: str) -> Value:
    """Check a value to write against a metric's data type; return it as it will be sent.

    Raises ValueError naming what was expected and what came.
    """
    try:
        kind = DataType(datatype)
    except ValueError:
        kind = None
    if kind is None or kind not in SAMPLED_TYPES or kind is DataType.DATETIME:
        raise ValueError(f"{where}: cannot write a metric of data type {datatype}")
    if kind in _SIGNED_BITS or kind in _UNSIGNED_BITS:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{where}: {kind.name} needs an integer, got {value!r}")
        if kind in _SIGNED_BITS:
            bits = _SIGNED_BITS[kind]
            low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        else:
            low, high = 0, (1 << _UNSIGNED_BITS[kind]) - 1
        if not low <= value <= high:
            raise ValueError(f"{where}: {value} is out of {kind.name} range {low}..{high}")
        return value
    if kind in (DataType.FLOAT, DataType.DOUBLE):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where}: {kind.name} needs a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value!r} is not a finite number")
        return _shortest_float32(float(value)) if kind is DataType.FLOAT else float(value)
    if kind is DataType.BOOLEAN:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: Boolean needs true or false, got {value!r}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"{where}: {kind.name} needs a string, got {value!r}")
    return value


def build_payload(
    metrics: list[tuple[str | None, int | None, DataType, Value]],
    *,
    timestamp: datetime,
    seq: int | None,
) -> pb.Payload:
    """Build a payload from (name, alias, datatype, value) tuples."""
    payload = pb.Payload(timestamp=ms(timestamp))
    if seq is not None:
        payload.seq = seq
    for name, alias, datatype, value in metrics:
        metric = payload.metrics.add()
        if name is not None:
            metric.name = name
        if alias is not None:
            metric.alias = alias
        metric.timestamp = ms(timestamp)
        set_value(metric, datatype, value)
    return payload


def rebirth_request(now: datetime) -> bytes:
    """Return the NCMD payload that asks an edge node to publish its births again."""
    payload = build_payload(
        [(REBIRTH_METRIC, None, DataType.BOOLEAN, True)], timestamp=now, seq=None
    )
    return encode_payload(payload)
