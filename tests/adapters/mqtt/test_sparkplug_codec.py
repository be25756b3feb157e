"""Sparkplug B codec: wire format, data types and topics."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.base import Quality, Value
from adapters.mqtt.json_mapping import MappingError
from adapters.mqtt.rejections import Reason
from adapters.mqtt.sparkplug import sparkplug_b_pb2 as pb
from adapters.mqtt.sparkplug.codec import (
    DataType,
    MessageType,
    SparkplugTopic,
    build_payload,
    decode_payload,
    encode_payload,
    metric_quality,
    metric_value,
    parse_topic,
    rebirth_request,
)

# Hand-assembled from the Sparkplug B wire format (tag = field number << 3 | wire type),
# not produced by protobuf, so a wrong field number or type in the .proto fails here.
GOLDEN = bytes.fromhex(
    "08e807"  # Payload.timestamp (1, varint) = 1000
    "120f"  # Payload.metrics (2, length 15)
    "0a0174"  # Metric.name (1) = "t"
    "1001"  # Metric.alias (2) = 1
    "18e807"  # Metric.timestamp (3) = 1000
    "2009"  # Metric.datatype (4) = 9 Float
    "650000ac41"  # Metric.float_value (12, fixed32) = 21.5
    "120a"  # metrics, length 10
    "0a026f6e"  # name "on"
    "1002"  # alias 2
    "200b"  # datatype 11 Boolean
    "7001"  # boolean_value (14) = true
    "120f"  # metrics, length 15
    "1003"  # alias 3
    "2004"  # datatype 4 Int64
    "58feffffffffffffffff01"  # long_value (11) = -2 as uint64
    "1209"  # metrics, length 9
    "0a0173"  # name "s"
    "200c"  # datatype 12 String
    "7a026f6b"  # string_value (15) = "ok"
    "120e"  # metrics, length 14
    "0a0164"  # name "d"
    "200a"  # datatype 10 Double
    "69000000000000f03f"  # double_value (13, fixed64) = 1.0
    "1206"  # metrics, length 6
    "1004"  # alias 4
    "2003"  # datatype 3 Int32
    "3801"  # is_null (7) = true
    "1805"  # Payload.seq (3) = 5
    "220175"  # Payload.uuid (4) = "u"
)


def golden_payload() -> pb.Payload:
    payload = pb.Payload(timestamp=1000, seq=5, uuid="u")
    payload.metrics.add(name="t", alias=1, timestamp=1000, datatype=9, float_value=21.5)
    payload.metrics.add(name="on", alias=2, datatype=11, boolean_value=True)
    payload.metrics.add(alias=3, datatype=4, long_value=(1 << 64) - 2)
    payload.metrics.add(name="s", datatype=12, string_value="ok")
    payload.metrics.add(name="d", datatype=10, double_value=1.0)
    payload.metrics.add(alias=4, datatype=3, is_null=True)
    return payload


def test_encoding_matches_the_hand_assembled_golden_bytes() -> None:
    assert encode_payload(golden_payload()) == GOLDEN


def test_golden_bytes_decode_to_the_known_values() -> None:
    payload = decode_payload(GOLDEN)
    assert payload.timestamp == 1000 and payload.seq == 5 and payload.uuid == "u"
    values = [metric_value(m, m.datatype, "test") for m in payload.metrics]
    assert values == [21.5, True, -2, "ok", 1.0, None]


def test_remaining_field_numbers_on_the_wire() -> None:
    # body (5), is_historical (5), is_transient (6), metadata (8), properties (9),
    # bytes (16), dataset (17), template (18): each tag byte checked by hand.
    payload = pb.Payload(body=b"\x01")
    metric = payload.metrics.add(is_historical=True, is_transient=True, bytes_value=b"\x02")
    metric.metadata.content_type = "x"
    metric.properties.keys.append("k")
    assert encode_payload(payload) == bytes.fromhex(
        "1212"  # metrics, length 18
        "2801"  # Metric.is_historical (5) = true
        "3001"  # Metric.is_transient (6) = true
        "4203" "120178"  # Metric.metadata (8) { content_type (2) = "x" }
        "4a03" "0a016b"  # Metric.properties (9) { keys (1) = "k" }
        "8201" "0102"  # Metric.bytes_value (16) = 02
        "2a0101"  # Payload.body (5) = 01
    )  # fmt: skip
    dataset = pb.Payload.Metric(dataset_value=pb.Payload.DataSet(num_of_columns=1))
    assert dataset.SerializeToString() == bytes.fromhex("8a01020801")
    template = pb.Payload.Metric(template_value=pb.Payload.Template(version="v"))
    assert template.SerializeToString() == bytes.fromhex("9201030a0176")


def test_round_trip_through_build_and_decode() -> None:
    now = datetime(2024, 5, 1, 8, 0, 0, 123000, tzinfo=UTC)
    metrics: list[tuple[str | None, int | None, DataType, Value]] = [
        ("i8", 1, DataType.INT8, -5),
        ("i16", 2, DataType.INT16, -30000),
        ("i32", 3, DataType.INT32, -2_000_000_000),
        ("i64", 4, DataType.INT64, -(1 << 62)),
        ("u8", 5, DataType.UINT8, 255),
        ("u16", 6, DataType.UINT16, 65535),
        ("u32", 7, DataType.UINT32, 4_000_000_000),
        ("u64", 8, DataType.UINT64, (1 << 64) - 1),
        ("f", 9, DataType.FLOAT, 21.3),
        ("d", 10, DataType.DOUBLE, 21.3),
        ("b", 11, DataType.BOOLEAN, False),
        ("s", 12, DataType.STRING, "running"),
        ("dt", 13, DataType.DATETIME, "2024-05-01T08:00:00.123000+00:00"),
        ("txt", 14, DataType.TEXT, "long text"),
        ("uuid", 15, DataType.UUID, "1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
    ]
    decoded = decode_payload(encode_payload(build_payload(metrics, timestamp=now, seq=7)))
    assert decoded.seq == 7
    assert decoded.timestamp == 1714550400123
    got = [(m.name, m.alias, metric_value(m, m.datatype, m.name)) for m in decoded.metrics]
    assert got == [(name, alias, value) for name, alias, _, value in metrics]


@pytest.mark.parametrize(
    ("datatype", "field", "raw", "expected"),
    [
        (DataType.INT8, "int_value", 0xFFFFFFFF, -1),  # sign-extended to 32 bits (Tahu)
        (DataType.INT8, "int_value", 0xFF, -1),  # only the type's own 8 bits
        (DataType.INT8, "int_value", 127, 127),
        (DataType.INT16, "int_value", 0xFFFF8000, -32768),
        (DataType.INT16, "int_value", 0x8000, -32768),
        (DataType.INT32, "int_value", 0x80000000, -(1 << 31)),
        (DataType.UINT32, "int_value", 0xFFFFFFFF, 0xFFFFFFFF),
        (DataType.INT64, "long_value", (1 << 64) - 1, -1),
        (DataType.UINT64, "long_value", (1 << 64) - 1, (1 << 64) - 1),
        (DataType.DATETIME, "long_value", 0, "1970-01-01T00:00:00+00:00"),
        (DataType.FLOAT, "float_value", 0.1, 0.1),  # float32 shown by its shortest digits
    ],
)
def test_metric_values_by_datatype(
    datatype: DataType, field: str, raw: float, expected: Value
) -> None:
    metric = pb.Payload.Metric(datatype=int(datatype))
    setattr(metric, field, raw)
    assert metric_value(metric, int(datatype), "m") == expected


@pytest.mark.parametrize(
    ("datatype", "kwargs", "reason"),
    [
        (DataType.INT32, {"string_value": "12"}, Reason.WRONG_TYPE),
        (DataType.BOOLEAN, {"int_value": 1}, Reason.WRONG_TYPE),
        (DataType.UINT8, {"int_value": 256}, Reason.WRONG_TYPE),
        (DataType.INT8, {"int_value": 0x1FF}, Reason.WRONG_TYPE),
        (DataType.DATASET, {"dataset_value": pb.Payload.DataSet()}, Reason.UNSUPPORTED_DATATYPE),
        (DataType.BYTES, {"bytes_value": b"x"}, Reason.UNSUPPORTED_DATATYPE),
        (99, {"int_value": 1}, Reason.UNSUPPORTED_DATATYPE),
    ],
)
def test_metric_values_refused(datatype: int, kwargs: dict[str, object], reason: Reason) -> None:
    metric = pb.Payload.Metric(datatype=int(datatype), **kwargs)  # type: ignore[arg-type]
    with pytest.raises(MappingError) as caught:
        metric_value(metric, int(datatype), "m")
    assert caught.value.reason is reason


@pytest.mark.parametrize("data", [b"\xff\xff\xff", b"\x12\x05\x0a", b"\x0a\x80"])
def test_undecodable_bytes(data: bytes) -> None:
    with pytest.raises(MappingError) as caught:
        decode_payload(data)
    assert caught.value.reason is Reason.UNDECODABLE_PROTOBUF


@pytest.mark.parametrize(
    ("code", "quality"), [(192, Quality.GOOD), (64, Quality.UNCERTAIN), (0, Quality.BAD)]
)
def test_quality_property(code: int, quality: Quality) -> None:
    metric = pb.Payload.Metric(datatype=9, float_value=1.0)
    metric.properties.keys.append("Quality")
    metric.properties.values.add(type=3, int_value=code)
    assert metric_quality(metric) is quality


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("spBv1.0/g1/NBIRTH/e1", SparkplugTopic("g1", MessageType.NBIRTH, "e1")),
        ("spBv1.0/g1/DDATA/e1/d1", SparkplugTopic("g1", MessageType.DDATA, "e1", "d1")),
        ("spBv1.0/g1/NCMD/e1", SparkplugTopic("g1", MessageType.NCMD, "e1")),
        ("spBv1.0/g1/DCMD/e1/d1", SparkplugTopic("g1", MessageType.DCMD, "e1", "d1")),
    ],
)
def test_parse_topic(topic: str, expected: SparkplugTopic) -> None:
    assert parse_topic(topic) == expected
    assert str(expected) == topic


@pytest.mark.parametrize(
    "topic",
    [
        "spBv1.0/g1/DDATA/e1",  # device message without a device
        "spBv1.0/g1/NDATA/e1/d1",  # node message with a device
        "spBv1.0/g1/XDATA/e1",
        "spAv1.0/g1/NDATA/e1",
        "spBv1.0//NDATA/e1",
    ],
)
def test_parse_topic_refuses(topic: str) -> None:
    with pytest.raises(MappingError) as caught:
        parse_topic(topic)
    assert caught.value.reason is Reason.BAD_TOPIC


def test_rebirth_request_payload() -> None:
    payload = decode_payload(rebirth_request(datetime(2024, 1, 1, tzinfo=UTC)))
    (metric,) = payload.metrics
    assert metric.name == "Node Control/Rebirth"
    assert metric.datatype == DataType.BOOLEAN and metric.boolean_value is True
    assert not payload.HasField("seq")
