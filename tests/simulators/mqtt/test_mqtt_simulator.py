"""The MQTT simulator as a broker client sees it: births, telemetry, commands, deaths."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable

import pytest

from adapters.base import utcnow
from adapters.mqtt.client import BrokerSettings, MqttClient, Received
from adapters.mqtt.sparkplug.codec import (
    DataType,
    build_payload,
    decode_payload,
    encode_payload,
    metric_value,
)
from simulators.mqtt.devices import DeviceSpec, PointSpec, default_fleet
from simulators.mqtt.simulator import MqttSimulator, serve

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def wait(condition: Callable[[], bool], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def watcher(url: str, *subscriptions: str) -> tuple[MqttClient, list[Received]]:
    received: list[Received] = []
    client = MqttClient(
        BrokerSettings.from_url(url, client_id=f"watch-{uuid.uuid4().hex[:8]}"), received.append
    )
    for sub in subscriptions:
        client.add_subscription(sub, 1)
    client.start()
    assert client.wait_subscribed(10)
    return client, received


def spec(encoding: str, group: str = "tally-sim") -> DeviceSpec:
    return DeviceSpec(
        id=f"dev-{uuid.uuid4().hex[:6]}",
        type="pump",
        industry="C3441",
        region="360100",
        points=(PointSpec("flow"), PointSpec("speed", "int32", writable=True)),
        interval=0.1,
        encoding=encoding,  # type: ignore[arg-type]
        group=group,
    )


async def test_json_device_identity_telemetry_and_write(mqtt_url: str) -> None:
    device = spec("json")
    base = f"plant/C3441/pump/{device.id}"
    client, received = watcher(mqtt_url, f"{base}/#")
    try:
        async with MqttSimulator(mqtt_url, [device]):
            assert await asyncio.to_thread(
                wait, lambda: sum(m.topic == f"{base}/telemetry" for m in received) >= 2
            )
            identity = next(m for m in received if m.topic == f"{base}/identity")
            assert json.loads(identity.payload)["simulated"] is True
            body = json.loads(next(m for m in received if m.topic == f"{base}/telemetry").payload)
            assert set(body["values"]) == {"flow", "speed"} and isinstance(body["ts"], int)
            client.publish(f"{base}/set", json.dumps({"point": "speed", "value": 42}).encode(), 1)
            assert await asyncio.to_thread(
                wait, lambda: any(m.topic == f"{base}/ack" for m in received)
            )
            ack = json.loads(next(m for m in received if m.topic == f"{base}/ack").payload)
            assert ack == {"point": "speed", "value": 42, "ok": True}
            client.publish(f"{base}/set", json.dumps({"point": "flow", "value": 1}).encode(), 1)
            assert await asyncio.to_thread(
                wait, lambda: sum(m.topic == f"{base}/ack" for m in received) == 2
            )
            refused = json.loads([m for m in received if m.topic == f"{base}/ack"][1].payload)
            assert refused["ok"] is False and "not writable" in refused["error"]
    finally:
        client.stop()


async def test_sparkplug_edge_births_data_rebirth_write_and_death(mqtt_url: str) -> None:
    group = f"g{uuid.uuid4().hex[:8]}"
    device = spec("sparkplug", group)
    client, received = watcher(mqtt_url, f"spBv1.0/{group}/#")

    def kinds() -> list[str]:
        return [(m.topic or "").split("/")[2] for m in received]

    try:
        async with MqttSimulator(mqtt_url, [device]) as simulator:
            assert await asyncio.to_thread(wait, lambda: kinds().count("DDATA") >= 2)
            assert kinds()[:2] == ["NBIRTH", "DBIRTH"]
            seqs = [decode_payload(m.payload).seq for m in received]
            assert seqs[:4] == [0, 1, 2, 3]
            dbirth = decode_payload(received[1].payload)
            names = {m.name: m.alias for m in dbirth.metrics}
            assert names["Properties/Simulated"] == 0 and names["flow"] == 1
            # Rebirth on request.
            rebirth = build_payload(
                [("Node Control/Rebirth", None, DataType.BOOLEAN, True)],
                timestamp=utcnow(),
                seq=None,
            )
            client.publish(f"spBv1.0/{group}/NCMD/edge-1", encode_payload(rebirth), 0)
            assert await asyncio.to_thread(wait, lambda: kinds().count("NBIRTH") == 2)
            # A write by alias comes back in DDATA carrying the new value.
            write = build_payload([(None, 2, DataType.INT32, -7)], timestamp=utcnow(), seq=None)
            client.publish(f"spBv1.0/{group}/DCMD/edge-1/{device.id}", encode_payload(write), 0)
            assert await asyncio.to_thread(
                wait, lambda: simulator.edge_node(group).writes == [(device.id, "speed", -7)]
            )

            def written_back() -> bool:
                for m in received:
                    if m.topic and m.topic.endswith(f"DDATA/edge-1/{device.id}"):
                        for metric in decode_payload(m.payload).metrics:
                            if metric.alias == 2 and metric_value(metric, 3, "speed") == -7:
                                return True
                return False

            assert await asyncio.to_thread(wait, written_back)
        assert await asyncio.to_thread(wait, lambda: "NDEATH" in kinds())
    finally:
        client.stop()


async def test_serve_runs_a_default_fleet_until_stopped(mqtt_url: str) -> None:
    fleet = default_fleet(json_devices=1, sparkplug_devices=1, interval=0.1)
    client, received = watcher(mqtt_url, "plant/#", "spBv1.0/tally-sim/#")
    try:
        stop = asyncio.Event()
        task = asyncio.create_task(serve(mqtt_url, fleet, stop))
        assert await asyncio.to_thread(
            wait,
            lambda: (
                any("DDATA" in (m.topic or "") for m in received)
                and any((m.topic or "").endswith("/telemetry") for m in received)
            ),
        )
        stop.set()
        await asyncio.wait_for(task, 10)
    finally:
        client.stop()
