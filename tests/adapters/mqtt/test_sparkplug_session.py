"""Sparkplug B host state: births, aliases, sequence numbers, deaths and rebirth requests."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.base import Value
from adapters.mqtt.rejections import Reason
from adapters.mqtt.sparkplug import sparkplug_b_pb2 as pb
from adapters.mqtt.sparkplug.codec import DataType, build_payload, parse_topic
from adapters.mqtt.sparkplug.session import Outcome, SparkplugSessions

NOW = datetime(2024, 5, 1, tzinfo=UTC)
Metric = tuple[str | None, int | None, DataType, Value]


def payload(metrics: list[Metric], seq: int | None) -> pb.Payload:
    return build_payload(metrics, timestamp=NOW, seq=seq)


def feed(sessions: SparkplugSessions, topic: str, body: pb.Payload, at: float = 0.0) -> Outcome:
    return sessions.handle(parse_topic(topic), body, NOW, at)


def born() -> SparkplugSessions:
    sessions = SparkplugSessions(rebirth_interval=5.0, max_nodes=10)
    out = feed(
        sessions,
        "spBv1.0/g/NBIRTH/e",
        payload([("bdSeq", None, DataType.UINT64, 3), ("uptime", 1, DataType.INT32, 10)], 0),
    )
    assert not out.problems
    out = feed(
        sessions,
        "spBv1.0/g/DBIRTH/e/d",
        payload([("temp", 7, DataType.FLOAT, 20.5), ("on", 8, DataType.BOOLEAN, True)], 1),
    )
    assert [b.entity for b in out.births] == [("g", "e", "d")]
    assert [(s.metric.name, s.value) for s in out.samples] == [("temp", 20.5), ("on", True)]
    return sessions


def test_birth_data_death_with_aliases() -> None:
    sessions = born()
    out = feed(
        sessions,
        "spBv1.0/g/DDATA/e/d",
        payload([(None, 7, DataType.FLOAT, 21.5), (None, 8, DataType.BOOLEAN, False)], 2),
    )
    assert not out.problems and out.rebirth is None
    assert [(s.entity, s.metric.name, s.value) for s in out.samples] == [
        (("g", "e", "d"), "temp", 21.5),
        (("g", "e", "d"), "on", False),
    ]
    out = feed(sessions, "spBv1.0/g/DDEATH/e/d", payload([], 3))
    assert out.deaths == [("g", "e", "d")]
    assert not sessions.device_online("g", "e", "d")
    out = feed(sessions, "spBv1.0/g/NDEATH/e", payload([("bdSeq", None, DataType.UINT64, 3)], None))
    assert out.deaths == [("g", "e", None)]


def test_node_death_takes_its_devices_offline() -> None:
    sessions = born()
    out = feed(sessions, "spBv1.0/g/NDEATH/e", payload([("bdSeq", None, DataType.UINT64, 3)], None))
    assert out.deaths == [("g", "e", None), ("g", "e", "d")]


def test_stale_death_of_an_earlier_session_is_ignored() -> None:
    sessions = born()
    out = feed(sessions, "spBv1.0/g/NDEATH/e", payload([("bdSeq", None, DataType.UINT64, 2)], None))
    assert out.deaths == [] and sessions.device_online("g", "e", "d")


def test_sequence_gap_refuses_and_asks_for_rebirth_until_reborn() -> None:
    sessions = born()
    out = feed(sessions, "spBv1.0/g/DDATA/e/d", payload([(None, 7, DataType.FLOAT, 1.0)], 5))
    assert [p.reason for p in out.problems] == [Reason.SEQUENCE_GAP]
    assert out.rebirth == ("g", "e") and out.samples == []
    # Even a message with the "right" next number is refused until the rebirth arrives,
    # and the request is not repeated within rebirth_interval.
    out = feed(sessions, "spBv1.0/g/DDATA/e/d", payload([(None, 7, DataType.FLOAT, 1.0)], 6), 1.0)
    assert [p.reason for p in out.problems] == [Reason.AWAITING_REBIRTH]
    assert out.rebirth is None
    out = feed(sessions, "spBv1.0/g/DDATA/e/d", payload([(None, 7, DataType.FLOAT, 1.0)], 7), 6.0)
    assert out.rebirth == ("g", "e")
    out = feed(sessions, "spBv1.0/g/NBIRTH/e", payload([("bdSeq", None, DataType.UINT64, 4)], 0))
    assert not out.problems
    out = feed(sessions, "spBv1.0/g/DBIRTH/e/d", payload([("temp", 7, DataType.FLOAT, 2.0)], 1))
    out = feed(sessions, "spBv1.0/g/DDATA/e/d", payload([(None, 7, DataType.FLOAT, 3.0)], 2))
    assert [s.value for s in out.samples] == [3.0] and not out.problems


def test_sequence_wraps_at_256() -> None:
    sessions = SparkplugSessions(rebirth_interval=5.0, max_nodes=10)
    feed(sessions, "spBv1.0/g/NBIRTH/e", payload([("x", 1, DataType.INT32, 1)], 254))
    for seq in (255, 0, 1):
        out = feed(sessions, "spBv1.0/g/NDATA/e", payload([(None, 1, DataType.INT32, seq)], seq))
        assert not out.problems, seq


def test_data_before_birth_is_refused_without_a_device() -> None:
    sessions = SparkplugSessions(rebirth_interval=5.0, max_nodes=10)
    out = feed(sessions, "spBv1.0/g/DDATA/e/d", payload([("temp", None, DataType.FLOAT, 1.0)], 4))
    assert [p.reason for p in out.problems] == [Reason.BEFORE_BIRTH]
    assert out.births == [] and out.samples == [] and out.rebirth == ("g", "e")
    assert not sessions.device_online("g", "e", "d")


def test_device_data_before_device_birth() -> None:
    sessions = born()
    out = feed(sessions, "spBv1.0/g/DDATA/e/other", payload([(None, 7, DataType.FLOAT, 1.0)], 2))
    assert [p.reason for p in out.problems] == [Reason.BEFORE_BIRTH]
    assert out.rebirth == ("g", "e")


def test_unknown_alias_is_refused_and_asks_for_rebirth() -> None:
    sessions = born()
    out = feed(
        sessions,
        "spBv1.0/g/DDATA/e/d",
        payload([(None, 99, DataType.FLOAT, 1.0), (None, 7, DataType.FLOAT, 2.0)], 2),
    )
    assert [p.reason for p in out.problems] == [Reason.UNKNOWN_ALIAS]
    assert [s.value for s in out.samples] == [2.0]
    assert out.rebirth == ("g", "e")


def test_birth_metric_without_datatype_is_refused() -> None:
    sessions = SparkplugSessions(rebirth_interval=5.0, max_nodes=10)
    body = pb.Payload(seq=0)
    body.metrics.add(name="nodatatype", int_value=1)
    out = feed(sessions, "spBv1.0/g/NBIRTH/e", body)
    assert [p.reason for p in out.problems] == [Reason.BAD_BIRTH]


def test_node_limit() -> None:
    sessions = SparkplugSessions(rebirth_interval=5.0, max_nodes=1)
    feed(sessions, "spBv1.0/g/NBIRTH/a", payload([], 0))
    out = feed(sessions, "spBv1.0/g/NBIRTH/b", payload([], 0))
    assert [p.reason for p in out.problems] == [Reason.DEVICE_LIMIT]
    assert out.births == []
