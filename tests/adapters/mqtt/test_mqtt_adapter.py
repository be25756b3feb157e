"""The MQTT adapter against a real Mosquitto broker and the bundled simulator."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from functools import partial
from typing import Any

import pytest

from adapters.base import DeviceEvent, DeviceEventKind, Record, Sample, utcnow
from adapters.mqtt.adapter import MqttAdapter, MqttAdapters
from adapters.mqtt.client import BrokerSettings, MqttClient, Received
from adapters.mqtt.config import MqttConnection
from adapters.mqtt.sparkplug.codec import DataType, build_payload, decode_payload, encode_payload
from adapters.registry import build_adapters
from collector.embedded.mosquitto import ThrowawayMosquitto
from collector.embedded.ports import free_port
from simulators.mqtt.devices import DeviceSpec, PointSpec
from simulators.mqtt.simulator import MqttSimulator

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


class ListSink:
    """Collects records and lets a test wait for a condition on them."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self._changed = asyncio.Event()

    async def put(self, record: Record) -> None:
        self.records.append(record)
        self._changed.set()

    async def put_many(self, records: Sequence[Record]) -> None:
        self.records.extend(records)
        self._changed.set()

    def samples(self, device: str | None = None) -> list[Sample]:
        return [r for r in self.records if isinstance(r, Sample) and device in (None, r.device)]

    def events(self, kind: DeviceEventKind) -> list[DeviceEvent]:
        return [r for r in self.records if isinstance(r, DeviceEvent) and r.kind is kind]

    async def wait_for(self, condition: Callable[[], bool], within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"condition not met within {within} s: {self.records[-5:]}")
            self._changed.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.2))


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def connection(url: str, **overrides: Any) -> MqttConnection:
    config: dict[str, Any] = {"id": unique("b"), "protocol": "mqtt", "url": url}
    config.update(overrides)
    return MqttConnection.model_validate(config)


@asynccontextmanager
async def running(config: MqttConnection) -> AsyncIterator[tuple[MqttAdapter, ListSink]]:
    sink = ListSink()
    adapter = MqttAdapter(config, sink)
    await adapter.start()
    try:
        assert await adapter.wait_ready(10), "adapter did not subscribe"
        yield adapter, sink
    finally:
        await adapter.stop()


@contextmanager
def observer(url: str, *subscriptions: str) -> Iterator[tuple[MqttClient, list[Received]]]:
    received: list[Received] = []
    client = MqttClient(BrokerSettings.from_url(url, client_id=unique("test-")), received.append)
    for sub in subscriptions:
        client.add_subscription(sub, 1)
    client.start()
    assert client.wait_subscribed(10)
    try:
        yield client, received
    finally:
        client.stop()


def json_topics(root: str, **extra: Any) -> dict[str, Any]:
    return {
        "topics": [
            {
                "topic": root + "/{industry}/{type}/{device}/telemetry",
                "points": [
                    {"key": "temp", "path": "$.v.temp"},
                    {"key": "on", "path": "$.v.on", "data_type": "boolean"},
                ],
                "timestamp": {"path": "$.ts"},
            }
        ],
        "identification": [{"topic": root + "/{industry}/{type}/{device}/identity"}],
        **extra,
    }


def telemetry(temp: Any = 21.5, on: Any = True, ts: Any = 1714564800000) -> bytes:
    return json.dumps({"ts": ts, "v": {"temp": temp, "on": on}}).encode()


async def test_identification_registers_before_first_sample(mqtt_url: str) -> None:
    root = unique("plant")
    with observer(mqtt_url) as (client, _):
        identity = {"name": "Press 7", "region": "360100", "simulated": True}
        assert client.publish_and_wait(
            f"{root}/C3421/press/p7/identity", json.dumps(identity).encode(), retain=True
        )
        config = connection(mqtt_url, **json_topics(root))
        async with running(config) as (_adapter, sink):
            await sink.wait_for(lambda: bool(sink.events(DeviceEventKind.REGISTERED)))
            (event,) = sink.events(DeviceEventKind.REGISTERED)
            assert event.info is not None
            assert event.device == f"{config.id}/p7"
            assert (event.info.name, event.info.device_type, event.info.industry) == (
                "Press 7",
                "press",
                "C3421",
            )
            assert event.info.region == "360100" and event.info.simulated
            assert sink.samples() == []
            client.publish(f"{root}/C3421/press/p7/telemetry", telemetry(), 1)
            await sink.wait_for(lambda: len(sink.samples()) == 2)
            assert [(s.point, s.value) for s in sink.samples()] == [("temp", 21.5), ("on", True)]
        client.publish_and_wait(f"{root}/C3421/press/p7/identity", b"", retain=True)


async def test_every_bad_input_is_counted_and_the_next_good_message_accepted(
    mqtt_url: str,
) -> None:
    root = unique("plant")
    config = connection(
        mqtt_url,
        sparkplug={"groups": [root]},
        limits={"max_payload_bytes": 512},
        **json_topics(root),
    )
    good = f"{root}/C26/mixer/m1/telemetry"
    bad_inputs: list[tuple[str, bytes, str]] = [
        (good, b"{not json", "invalid_json"),
        (good, b"[1, 2, 3]", "not_an_object"),
        (good, json.dumps({"v": {"temp": 1}}).encode(), "missing_field"),
        (good, telemetry(temp="hot"), "wrong_type"),
        (good, telemetry(ts="last tuesday"), "bad_timestamp"),
        (good, b"{" + b" " * 600 + b"}", "oversized_payload"),
        (f"{root}/C26/mixer/bad%20id/telemetry", telemetry(), "bad_device_id"),
        (f"spBv1.0/{root}/NDATA/e1", b"\xff\xff\xff", "undecodable_protobuf"),
        (f"spBv1.0/{root}/DDATA/e1", b"", "bad_topic"),
        (
            f"spBv1.0/{root}/DDATA/e1/d1",
            encode_payload(
                build_payload([("x", None, DataType.INT32, 1)], timestamp=utcnow(), seq=1)
            ),
            "before_birth",
        ),
    ]
    async with running(config) as (adapter, sink):
        with observer(mqtt_url, f"spBv1.0/{root}/NCMD/#") as (client, commands):
            for i, (topic, payload, reason) in enumerate(bad_inputs):
                client.publish(topic, payload, 1)
                await sink.wait_for(partial(rejected, adapter, reason))
                # The stream goes on: the next good message is accepted.
                client.publish(good, telemetry(temp=float(i)), 1)
                await sink.wait_for(partial(has_value, sink, float(i)))
            device_keys = {e.device for e in sink.events(DeviceEventKind.REGISTERED)}
            assert device_keys == {f"{config.id}/m1"}  # no phantom devices
            await asyncio.to_thread(_wait, lambda: bool(commands), 5)
            assert commands[0].topic == f"spBv1.0/{root}/NCMD/e1"
    # "missing_field": the partial message above also counts; wrong_type likewise.
    for _, _, reason in bad_inputs:
        assert adapter.rejections[reason] >= 1, reason
    assert len(sink.samples(f"{config.id}/m1")) >= 2 * len(bad_inputs) - 2


def rejected(adapter: MqttAdapter, reason: str) -> bool:
    return adapter.rejections[reason] >= 1


def has_value(sink: ListSink, value: float) -> bool:
    return value in [s.value for s in sink.samples()]


def _wait(condition: Callable[[], bool], within: float) -> bool:
    deadline = time.monotonic() + within
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


async def test_device_and_point_limits_are_enforced_and_counted(mqtt_url: str) -> None:
    root = unique("plant")
    config = connection(
        mqtt_url,
        topics=[{"topic": root + "/{device}/telemetry", "point_object": "$"}],
        limits={"max_devices": 2, "max_points_per_device": 3},
    )
    async with running(config) as (adapter, sink):
        with observer(mqtt_url) as (client, _):
            for n in range(5):
                client.publish(f"{root}/dev{n}/telemetry", json.dumps({"a": n}).encode(), 1)
            client.publish(
                f"{root}/dev0/telemetry", json.dumps({"a": 1, "b": 2, "c": 3, "d": 4}).encode(), 1
            )
            await sink.wait_for(lambda: adapter.stats.messages == 6)
    registered = sink.events(DeviceEventKind.REGISTERED)
    assert {e.device for e in registered} == {f"{config.id}/dev0", f"{config.id}/dev1"}
    assert adapter.rejections["device_limit"] == 3
    assert adapter.rejections["point_limit"] == 1
    last = registered[-1].info
    assert last is not None and [p.key for p in last.points] == ["a", "b", "c"]


async def test_sparkplug_birth_data_death_with_aliases(mqtt_url: str) -> None:
    group = unique("g")
    spec = DeviceSpec(
        id="r1",
        type="reactor",
        industry="C2614",
        region="320500",
        points=(PointSpec("temp"), PointSpec("on", "bool"), PointSpec("n", "int32")),
        interval=0.2,
        encoding="sparkplug",
        group=group,
    )
    config = connection(mqtt_url, sparkplug={"groups": [group]})
    key = f"{config.id}/{group}/edge-1/r1"
    async with running(config) as (adapter, sink):
        simulator = MqttSimulator(mqtt_url, [spec])
        await simulator.start()
        try:
            await sink.wait_for(lambda: len(sink.samples(key)) >= 9)  # birth + 2 DDATA
        finally:
            await simulator.stop()
        await sink.wait_for(lambda: bool(sink.events(DeviceEventKind.OFFLINE)))
    (registered,) = sink.events(DeviceEventKind.REGISTERED)
    assert registered.info is not None
    assert registered.info.device_type == "reactor" and registered.info.industry == "C2614"
    assert registered.info.simulated
    assert [(p.key, p.data_type) for p in registered.info.points] == [
        ("temp", "float64"),
        ("on", "bool"),
        ("n", "int32"),
    ]
    assert {p.address for p in registered.info.points} == {
        "temp (alias 1)",
        "on (alias 2)",
        "n (alias 3)",
    }
    assert [e.device for e in sink.events(DeviceEventKind.ONLINE)] == [key]
    assert {s.point for s in sink.samples(key)} == {"temp", "on", "n"}
    assert [e.device for e in sink.events(DeviceEventKind.OFFLINE)] == [key]
    assert not adapter.rejections


async def test_sequence_gap_triggers_a_rebirth_seen_by_another_client(mqtt_url: str) -> None:
    group = unique("g")
    spec = DeviceSpec(
        id="r1",
        type="reactor",
        industry="C2614",
        region="320500",
        points=(PointSpec("temp"),),
        interval=0.2,
        encoding="sparkplug",
        group=group,
    )
    config = connection(mqtt_url, sparkplug={"groups": [group]})
    key = f"{config.id}/{group}/edge-1/r1"
    async with running(config) as (adapter, sink):
        with observer(mqtt_url, f"spBv1.0/{group}/NCMD/#") as (_, commands):
            async with MqttSimulator(mqtt_url, [spec]) as simulator:
                edge = simulator.edge_node(group)
                await sink.wait_for(lambda: len(sink.samples(key)) >= 2)
                edge.skip_sequence(3)
                await sink.wait_for(lambda: adapter.rejections["sequence_gap"] == 1)
                assert await asyncio.to_thread(_wait, lambda: bool(commands), 5)
                ncmd = decode_payload(commands[0].payload)
                assert commands[0].topic == f"spBv1.0/{group}/NCMD/edge-1"
                assert [(m.name, m.boolean_value) for m in ncmd.metrics] == [
                    ("Node Control/Rebirth", True)
                ]
                await sink.wait_for(lambda: edge.births == 2)
                before = len(sink.samples(key))
                await sink.wait_for(lambda: len(sink.samples(key)) >= before + 2)
    assert adapter.stats.rebirth_requests >= 1


async def test_qos1_delivers_every_message(mqtt_url: str) -> None:
    root = unique("plant")
    config = connection(
        mqtt_url, topics=[{"topic": root + "/{device}/t", "points": [{"key": "n", "path": "$.n"}]}]
    )
    count = 500
    async with running(config) as (adapter, sink):
        with observer(mqtt_url) as (client, _):
            for n in range(count):
                client.publish(f"{root}/d/t", json.dumps({"n": n}).encode(), 1)
            await sink.wait_for(lambda: len(sink.samples()) == count, within=20)
    assert sorted(float(s.value or 0) for s in sink.samples()) == [float(n) for n in range(count)]
    assert not adapter.rejections


async def test_mqtt5_and_persistent_session_keep_messages_while_away(mqtt_url: str) -> None:
    root = unique("plant")
    config = connection(
        mqtt_url,
        version="5",
        persistent_session=True,
        client_id=unique("tally-"),
        topics=[{"topic": root + "/{device}/t", "points": [{"key": "n", "path": "$.n"}]}],
    )
    async with running(config) as (_, sink):
        with observer(mqtt_url) as (client, _):
            client.publish(f"{root}/d/t", b'{"n": 1}', 1)
            await sink.wait_for(lambda: len(sink.samples()) == 1)
    with observer(mqtt_url) as (client, _):
        for n in (2, 3):
            assert client.publish_and_wait(f"{root}/d/t", json.dumps({"n": n}).encode(), 1)
    async with running(config) as (_, sink):
        await sink.wait_for(lambda: len(sink.samples()) == 2)
    assert [s.value for s in sink.samples()] == [2.0, 3.0]


async def test_broker_restart_reconnects_resubscribes_and_samples_resume() -> None:
    broker = ThrowawayMosquitto(port=free_port())
    broker.start()
    try:
        root = unique("plant")
        config = connection(
            broker.url,
            topics=[{"topic": root + "/{device}/t", "points": [{"key": "n", "path": "$.n"}]}],
        )
        async with running(config) as (adapter, sink):
            with observer(broker.url) as (client, _):
                client.publish(f"{root}/d/t", b'{"n": 1}', 1)
                await sink.wait_for(lambda: len(sink.samples()) == 1)
            await asyncio.to_thread(broker.stop)
            await sink.wait_for(lambda: not adapter.stats.connected, within=10)
            await asyncio.to_thread(broker.start)
            assert await adapter.wait_ready(15)
            assert adapter.stats.connects == 2
            with observer(broker.url) as (client, _):
                client.publish(f"{root}/d/t", b'{"n": 2}', 1)
                await sink.wait_for(lambda: len(sink.samples()) == 2)
        assert [s.value for s in sink.samples()] == [1.0, 2.0]
    finally:
        broker.remove()


async def test_registry_builds_mqtt_adapters_that_run_until_stopped(mqtt_url: str) -> None:
    root = unique("plant")
    config = connection(
        mqtt_url, topics=[{"topic": root + "/{device}/t", "points": [{"key": "n", "path": "$.n"}]}]
    )
    sink = ListSink()
    (adapters,) = build_adapters([config], sink)
    assert isinstance(adapters, MqttAdapters)
    task = asyncio.create_task(adapters.run())
    (adapter,) = adapters.adapters
    await sink.wait_for(lambda: adapter.stats.connected)
    assert await adapter.wait_ready(10)
    with observer(mqtt_url) as (client, _):
        client.publish(f"{root}/d/t", b'{"n": 5}', 1)
        await sink.wait_for(lambda: len(sink.samples()) == 1)
    await adapters.stop()
    await asyncio.wait_for(task, 10)
    assert not adapter.stats.connected


class RecordingObserver:
    def __init__(self) -> None:
        self.connections: list[tuple[str, str, bool]] = []
        self.requests: list[tuple[str, str]] = []

    def connection_changed(self, protocol: str, endpoint: str, up: bool) -> None:
        self.connections.append((protocol, endpoint, up))

    def request_observed(self, protocol: str, kind: str, seconds: float) -> None:
        assert seconds >= 0
        self.requests.append((protocol, kind))


async def test_the_registry_passes_the_observer_connections_and_message_latency(
    mqtt_url: str,
) -> None:
    root = unique("plant")
    config = connection(
        mqtt_url, topics=[{"topic": root + "/{device}/t", "points": [{"key": "n", "path": "$.n"}]}]
    )
    sink, seen = ListSink(), RecordingObserver()
    (adapters,) = build_adapters([config], sink, observer=seen)
    assert isinstance(adapters, MqttAdapters)
    task = asyncio.create_task(adapters.run())
    assert await adapters.wait_ready(10)
    assert seen.connections == [("mqtt", mqtt_url, True)]
    with observer(mqtt_url) as (client, _):
        for n in range(150):  # the handling time of one message in 100 is observed
            client.publish(f"{root}/d/t", json.dumps({"n": n}).encode(), 1)
        await sink.wait_for(lambda: len(sink.samples()) == 150)
    assert seen.requests == [("mqtt", "message")]
    await adapters.stop()
    await asyncio.wait_for(task, 10)
    assert seen.connections[-1] == ("mqtt", mqtt_url, False)
