"""JSON topics: templates, paths, timestamps and typed values, table-driven."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from adapters.base import Quality
from adapters.mqtt.config import JsonTopic
from adapters.mqtt.json_mapping import (
    JsonTopicMapper,
    MappingError,
    TopicTemplate,
    coerce,
    parse_json_object,
    parse_timestamp,
)
from adapters.mqtt.jsonpath import JsonPath
from adapters.mqtt.rejections import Reason

RECEIVED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("template", "topic", "expected"),
    [
        (
            "plant/{industry}/{type}/{device}/telemetry",
            "plant/C26/reactor/r-1/telemetry",
            {"industry": "C26", "type": "reactor", "device": "r-1"},
        ),
        ("plant/{device}", "plant/m7", {"device": "m7"}),
        ("plant/{device}/telemetry", "plant/m7/status", None),
        ("plant/{device}/telemetry", "plant/m7/telemetry/extra", None),
        ("plant/{device}/telemetry", "plant//telemetry", None),
        ("{device}/x", "a/x", {"device": "a"}),
    ],
)
def test_topic_templates(template: str, topic: str, expected: dict[str, str] | None) -> None:
    assert TopicTemplate(template).match(topic) == expected


def test_template_subscription_and_render() -> None:
    template = TopicTemplate("plant/{industry}/{type}/{device}/telemetry")
    assert template.subscription == "plant/+/+/+/telemetry"
    assert template.render(industry="C26", type="t", device="d") == "plant/C26/t/d/telemetry"


@pytest.mark.parametrize(
    ("path", "document", "found", "value"),
    [
        ("$.a", {"a": 1}, True, 1),
        ("$.a.b", {"a": {"b": [1, 2]}}, True, [1, 2]),
        ("$.a.b[1]", {"a": {"b": [1, 2]}}, True, 2),
        ("$['flow rate']", {"flow rate": 3.5}, True, 3.5),
        ("$.rows[0].v", {"rows": [{"v": False}]}, True, False),
        ("a.b", {"a": {"b": None}}, True, None),
        ("$.a.b[5]", {"a": {"b": [1]}}, False, None),
        ("$.a.c", {"a": {"b": 1}}, False, None),
        ("$.a.b", {"a": 7}, False, None),
    ],
)
def test_json_paths(path: str, document: Any, found: bool, value: Any) -> None:
    assert JsonPath(path).find(document) == (found, value)


@pytest.mark.parametrize("path", ["$..a", "$.a[x]", "$[", "$.a[-1]"])
def test_json_path_syntax_errors(path: str) -> None:
    with pytest.raises(ValueError, match="JSON path"):
        JsonPath(path)


@pytest.mark.parametrize(
    ("raw", "fmt", "expected"),
    [
        (1714564800000, "auto", datetime(2024, 5, 1, 12, 0, tzinfo=UTC)),
        (1714564800, "auto", datetime(2024, 5, 1, 12, 0, tzinfo=UTC)),
        (1714564800.5, "epoch_s", datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)),
        (1714564800123, "epoch_ms", datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)),
        ("2024-05-01T12:00:00Z", "auto", datetime(2024, 5, 1, 12, 0, tzinfo=UTC)),
        ("2024-05-01T20:00:00+08:00", "rfc3339", datetime(2024, 5, 1, 12, 0, tzinfo=UTC)),
        ("2024-05-01T12:00:00.250Z", "auto", datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)),
    ],
)
def test_timestamps(raw: Any, fmt: str, expected: datetime) -> None:
    assert parse_timestamp(raw, fmt, "ts") == expected


@pytest.mark.parametrize("fmt", ["auto", "epoch_ms", "epoch_s"])
@pytest.mark.parametrize(
    "raw",
    [
        631152000000,  # 1990-01-01 in ms: the earliest plausible
        631151999999,
        7258118399999,  # the last ms before 2200
        7258118400000,
        1714564800123,
        631152000,  # 1990-01-01 in s
        631151999,
        7258118399,
        7258118400,
        1714564800,
        99999999999,  # just under the auto threshold of 1e11 (ms from then on)
        100000000000,
        -1714564800000,
        0,
    ],
)
def test_integer_timestamps_take_what_the_same_float_takes(raw: int, fmt: str) -> None:
    # Integers take a fast path; the same number as a float takes the general one.
    try:
        expected: datetime | Reason = parse_timestamp(float(raw), fmt, "ts")
    except MappingError as exc:
        expected = exc.reason
    try:
        got: datetime | Reason = parse_timestamp(raw, fmt, "ts")
    except MappingError as exc:
        got = exc.reason
    assert got == expected
    assert isinstance(got, Reason) or got.tzinfo is UTC


@pytest.mark.parametrize(
    ("raw", "fmt"),
    [
        ("2024-05-01T12:00:00", "auto"),  # no offset
        ("yesterday", "auto"),
        (True, "auto"),
        (None, "auto"),
        ([1], "auto"),
        (1714564800, "rfc3339"),
        ("2024-05-01T12:00:00Z", "epoch_ms"),
        (1e30, "auto"),
        (12, "epoch_s"),  # 1970: implausible
    ],
)
def test_bad_timestamps(raw: Any, fmt: str) -> None:
    with pytest.raises(MappingError) as caught:
        parse_timestamp(raw, fmt, "ts")
    assert caught.value.reason is Reason.BAD_TIMESTAMP


@pytest.mark.parametrize(
    ("raw", "data_type", "expected"),
    [
        (3, "number", 3.0),
        (2.5, "number", 2.5),
        (4, "integer", 4),
        (4.0, "integer", 4),
        (True, "boolean", True),
        (0, "boolean", False),
        ("on", "string", "on"),
        (1.5, "auto", 1.5),
        ("x", "auto", "x"),
    ],
)
def test_coerce(raw: Any, data_type: str, expected: Any) -> None:
    value = coerce(raw, data_type, "p")
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("raw", "data_type"),
    [
        ("3", "number"),
        (True, "number"),
        (4.5, "integer"),
        (2, "boolean"),
        ("true", "boolean"),
        (1, "string"),
        ({"a": 1}, "auto"),
        ([1], "auto"),
    ],
)
def test_coerce_refuses(raw: Any, data_type: str) -> None:
    with pytest.raises(MappingError) as caught:
        coerce(raw, data_type, "p")
    assert caught.value.reason is Reason.WRONG_TYPE


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", Reason.INVALID_JSON),
        (b"\xff\xfe", Reason.INVALID_JSON),
        (b'{"v": NaN}', Reason.INVALID_JSON),
        (b"[1, 2]", Reason.NOT_AN_OBJECT),
        (b"42", Reason.NOT_AN_OBJECT),
    ],
)
def test_payloads_that_are_not_json_objects(payload: bytes, reason: Reason) -> None:
    with pytest.raises(MappingError) as caught:
        parse_json_object(payload)
    assert caught.value.reason is reason


def mapper(**overrides: Any) -> JsonTopicMapper:
    config: dict[str, Any] = {
        "topic": "plant/{device}/telemetry",
        "points": [
            {"key": "temp", "path": "$.v.temp", "unit": "°C"},
            {"key": "count", "path": "$.v.count", "data_type": "integer"},
            {"key": "running", "path": "$.v.running", "data_type": "boolean"},
            {"key": "mode", "path": "$.mode", "data_type": "string"},
        ],
        "timestamp": {"path": "$.ts"},
    }
    config.update(overrides)
    return JsonTopicMapper(JsonTopic.model_validate(config))


def test_several_points_per_message() -> None:
    document = {
        "ts": "2024-05-01T08:00:00+08:00",
        "v": {"temp": 21, "count": 7, "running": True},
        "mode": "auto",
    }
    m = mapper()
    out = m.map(document, RECEIVED)
    assert out.ts == datetime(2024, 5, 1, 8, tzinfo=timezone(timedelta(hours=8)))
    assert [(v.point, v.value, m.point_info(v).data_type) for v in out.values] == [
        ("temp", 21.0, "float64"),
        ("count", 7, "int64"),
        ("running", True, "bool"),
        ("mode", "auto", "string"),
    ]
    assert m.point_info(out.values[0]).unit == "°C" and out.problems == []
    assert m.point_info(out.values[0]).address.endswith("#$.v.temp")


def test_missing_and_wrong_fields_spare_the_others() -> None:
    out = mapper().map({"ts": 1714564800, "v": {"temp": "hot", "count": 3}}, RECEIVED)
    assert [(v.point, v.value) for v in out.values] == [("count", 3)]
    assert sorted(p.reason.value for p in out.problems) == [
        "missing_field",
        "missing_field",
        "wrong_type",
    ]


def test_null_value_is_a_bad_quality_sample() -> None:
    out = mapper(timestamp=None).map({"v": {"temp": None}}, RECEIVED)
    temp = next(v for v in out.values if v.point == "temp")
    assert temp.value is None and temp.quality is Quality.BAD
    assert out.ts == RECEIVED


def test_missing_timestamp_refuses_the_message() -> None:
    with pytest.raises(MappingError) as caught:
        mapper().map({"v": {"temp": 1}}, RECEIVED)
    assert caught.value.reason is Reason.MISSING_FIELD


def test_point_object_registers_points_as_they_appear() -> None:
    m = mapper(points=[{"key": "temp", "path": "$.values.temp"}], point_object="$.values")
    out = m.map(
        json.loads('{"ts": 1714564800000, "values": {"temp": 1, "rpm": 1500, "alarm": false}}'),
        RECEIVED,
    )
    assert [(v.point, v.value, m.point_info(v).data_type) for v in out.values] == [
        ("temp", 1.0, "float64"),
        ("rpm", 1500, "int64"),
        ("alarm", False, "bool"),
    ]
    assert m.point_info(out.values[1]).address.endswith("#$.values.rpm")


def test_point_object_refuses_what_cannot_be_a_point() -> None:
    m = mapper(points=[], point_object="$.v", timestamp=None)
    document = json.loads('{"v": {"ok": 1.5, "inf": 1e400, "list": [1], "": 2, "nil": null}}')
    out = m.map(document, RECEIVED)
    assert [(v.point, v.value, v.quality) for v in out.values] == [
        ("ok", 1.5, Quality.GOOD),
        ("nil", None, Quality.BAD),
    ]
    assert sorted(p.reason.value for p in out.problems) == ["wrong_type"] * 3


KNOWN = dict.fromkeys(["a", "b", "c", "n", "big"], None)


@pytest.mark.parametrize(
    ("members", "fast"),
    [
        ('{"a": 1.5, "b": -2.25, "c": 0.0}', True),
        ('{"a": 1, "b": true, "c": 2.5}', True),
        ('{"a": -9223372036854775808, "b": 0.5}', True),
        ('{"a": 1e308, "b": 1e308}', False),  # finite values whose sum overflows
        ('{"big": 18446744073709551615, "a": 1e308}', True),
        ('{"a": 1.5, "b": "text"}', False),
        ('{"a": 1.5, "n": null}', False),
        ('{"a": [1], "b": 1.0}', False),
        ('{"a": {"x": 1}}', False),
        ('{"a": 1.5, "new": 2.0}', False),
        ("{}", False),
        ("[1, 2]", False),
        ('"a string"', False),
    ],
)
def test_map_known_takes_what_map_takes_whole_and_gives_the_same(members: str, fast: bool) -> None:
    m = mapper(points=[], point_object="$.v")
    document = parse_json_object(f'{{"ts": 1714564800000, "v": {members}}}'.encode())
    known = m.map_known(document, RECEIVED, KNOWN)
    slow = m.map(document, RECEIVED, KNOWN)
    assert (known is not None) is fast
    if known is None:  # the general path decides, and would refuse or register something
        return
    assert not slow.problems and not slow.unknown
    ts, points, values = known
    assert ts == slow.ts
    assert [(p, v, Quality.GOOD) for p, v in zip(points, values, strict=True)] == [
        tuple(v) for v in slow.values
    ]
    assert [type(v) for v in values] == [type(v.value) for v in slow.values]


def test_map_known_refuses_infinite_values_and_topics_with_declared_points() -> None:
    m = mapper(points=[], point_object="$.v")
    for value in (float("inf"), float("-inf"), float("nan")):
        assert m.map_known({"ts": 1714564800000, "v": {"a": value}}, RECEIVED, KNOWN) is None
    declared = mapper(points=[{"key": "a", "path": "$.v.a"}], point_object="$.v")
    assert declared.map_known({"ts": 1714564800000, "v": {"a": 1.0}}, RECEIVED, KNOWN) is None


def test_map_known_refuses_a_bad_timestamp_as_map_does() -> None:
    m = mapper(points=[], point_object="$.v")
    with pytest.raises(MappingError) as caught:
        m.map_known({"ts": "yesterday", "v": {"a": 1.0}}, RECEIVED, KNOWN)
    assert caught.value.reason is Reason.BAD_TIMESTAMP
    with pytest.raises(MappingError) as missing:
        m.map_known({"v": {"a": 1.0}}, RECEIVED, KNOWN)
    assert missing.value.reason is Reason.MISSING_FIELD
    receipt = mapper(points=[], point_object="$.v", timestamp=None)
    assert receipt.map_known({"v": {"a": 1.0}}, RECEIVED, KNOWN) == (RECEIVED, ["a"], [1.0])


def test_map_known_follows_nested_paths_as_map_does() -> None:
    m = mapper(points=[], point_object="$.data.values", timestamp={"path": "$.meta['ts']"})
    document = {"meta": {"ts": 1714564800000}, "data": {"values": {"a": 2.5, "b": 1}}}
    slow = m.map(document, RECEIVED, KNOWN)
    assert m.map_known(document, RECEIVED, KNOWN) == (
        slow.ts,
        [v.point for v in slow.values],
        [v.value for v in slow.values],
    )
    assert m.map_known({"meta": {"ts": 1714564800000}, "data": {}}, RECEIVED, KNOWN) is None
    with pytest.raises(MappingError) as caught:
        m.map_known({"ts": 1714564800000, "data": {"values": {"a": 1.0}}}, RECEIVED, KNOWN)
    assert caught.value.reason is Reason.MISSING_FIELD
