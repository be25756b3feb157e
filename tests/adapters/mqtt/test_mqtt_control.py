"""MQTT control writes against the simulator on a real broker: every outcome of the contract."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from adapters.base import Value, utcnow
from adapters.control import (
    ControlError,
    ControlNotAllowed,
    ControlRejected,
    ControlTargetUnknown,
    ControlTimeout,
    ControlUnavailable,
)
from adapters.mqtt.adapter import MqttAdapters
from adapters.mqtt.client import BrokerSettings, MqttClient, Received
from adapters.mqtt.config import MqttConnection
from adapters.mqtt.sparkplug.codec import DataType, build_payload, encode_payload
from simulators.mqtt.devices import DeviceSpec, PointSpec
from simulators.mqtt.simulator import MqttSimulator
from simulators.signals import Signal
from tests.adapters.mqtt.mqttstack import unique, until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

TIMEOUT = 1.0
WRITABLE = ["setpoint", "speed", "refused", "liar"]


def points(int_type: str) -> tuple[PointSpec, ...]:
    return (
        PointSpec("flow", signal=Signal(kind="sine", base=10)),
        PointSpec("setpoint", writable=True, signal=Signal(value=50.0)),
        PointSpec("speed", int_type, writable=True, signal=Signal(value=100)),  # type: ignore[arg-type]
        PointSpec("refused", writable=True, on_write="refuse", signal=Signal(value=1.0)),
        PointSpec("liar", writable=True, on_write="misreport", signal=Signal(value=1.0)),
    )


@dataclass
class Plant:
    adapters: MqttAdapters
    simulator: MqttSimulator
    root: str
    group: str
    commands: list[Received]
    client: MqttClient

    def sent(self) -> list[str]:
        """Topics of the commands and DCMDs published so far (seen by a watcher)."""
        return [m.topic or "" for m in self.commands]

    async def value(self, device: str, point: str) -> Value:
        return (await self.adapters.read(device, point)).value


def config(url: str, root: str, group: str) -> MqttConnection:
    leaf = root + "/{industry}/{type}/{device}/"
    declared_points = [{"key": k, "writable": True} for k in WRITABLE]
    return MqttConnection.model_validate(
        {
            "id": "ctl",
            "protocol": "mqtt",
            "url": url,
            "topics": [
                {
                    "topic": leaf + "telemetry",
                    "timestamp": {"path": "$.ts", "format": "epoch_ms"},
                    "point_object": "$.values",
                }
            ],
            "identification": [{"topic": leaf + "identity"}],
            "sparkplug": {"groups": [group]},
            "control": {
                "timeout": TIMEOUT,
                "json_commands": {"command_topic": leaf + "set", "ack_topic": leaf + "ack"},
                "allow_reported_writable": ["set*"],
            },
            "devices": [
                {"id": "jdev", "topic_device": "j-1", "points": declared_points},
                {
                    "id": "sdev",
                    "sparkplug": {"group": group, "edge_node": "edge-1", "device": "s-1"},
                    "points": declared_points,
                },
                {"id": "jmute", "topic_device": "mute-1", "points": declared_points},
                {
                    "id": "smute",
                    "sparkplug": {"group": group, "edge_node": "mute-node", "device": "mute-2"},
                    "points": declared_points,
                },
                {"id": "never", "topic_device": "never-1"},
            ],
        }
    )


@asynccontextmanager
async def plant(url: str) -> AsyncIterator[Plant]:
    """Run the simulator (JSON j-1, j-2; Sparkplug s-1, s-2) and a connection to it."""
    root, group = unique("ctl"), unique("g")
    specs = [
        DeviceSpec(
            id=device, type="pump", industry="C26", region="360100", interval=0.2,
            encoding=encoding, group=group, topic_root=root,  # type: ignore[arg-type]
            points=points("int64" if encoding == "json" else "int32"),
        )
        for device, encoding in (("j-1", "json"), ("j-2", "json"), ("s-1", "sparkplug"),
                                 ("s-2", "sparkplug"))
    ]  # fmt: skip
    commands: list[Received] = []
    client = MqttClient(BrokerSettings.from_url(url, client_id=unique("watch-")), commands.append)
    client.add_subscription(f"{root}/+/+/+/set", 1)
    client.add_subscription(f"spBv1.0/{group}/DCMD/#", 1)
    client.start()
    assert await asyncio.to_thread(client.wait_subscribed, 10)
    adapters = MqttAdapters([config(url, root, group)], NullSink())
    task = asyncio.create_task(adapters.run())
    try:
        assert await adapters.wait_ready(10)
        async with MqttSimulator(url, specs) as simulator:
            here = Plant(adapters, simulator, root, group, commands, client)
            everyone = ["jdev", "ctl/j-2", "sdev", f"ctl/{group}/edge-1/s-2"]

            async def seen() -> list[str]:
                missing = []
                for key in everyone:
                    try:
                        await adapters.read(key, "setpoint")
                    except ControlError:
                        missing.append(key)
                return missing

            missing, _ = await until(seen, lambda m: not m, 10)
            assert not missing, f"never seen: {missing}"
            yield here
    finally:
        await adapters.stop()
        await asyncio.wait_for(task, 10)
        client.stop()


class NullSink:
    async def put(self, record: object) -> None:
        pass

    async def put_many(self, records: object) -> None:
        pass


@pytest.mark.parametrize(("device", "speed"), [("jdev", 1234), ("sdev", -7)])
async def test_accepted_write_returns_the_confirmed_value_and_read_sees_it(
    device: str, speed: int, mqtt_url: str
) -> None:
    async with plant(mqtt_url) as here:
        assert await here.adapters.write(device, "setpoint", 61.5) == 61.5
        assert await here.adapters.write(device, "speed", speed) == speed
        # read() is the last live value: the telemetry after the ack (JSON), the DDATA itself.
        value, _ = await until(lambda: here.value(device, "setpoint"), lambda v: v == 61.5, 5)
        assert value == 61.5
        value, _ = await until(lambda: here.value(device, "speed"), lambda v: v == speed, 5)
        sample = await here.adapters.read(device, "speed")
        assert sample.live and sample.device == device and sample.value == speed


async def test_json_negative_ack_is_rejected_and_a_misreport_is_returned(mqtt_url: str) -> None:
    async with plant(mqtt_url) as here:
        with pytest.raises(ControlRejected, match=r"jdev point refused.*simulated refusal"):
            await here.adapters.write("jdev", "refused", 5.0)
        assert await here.adapters.write("jdev", "liar", 5.0) == 6.0  # not what was written
        (device,) = [d for d in here.simulator.json_devices.values() if d.spec.id == "j-1"]
        assert device.writes == [("liar", 5.0)]


async def test_sparkplug_refusal_and_misreport_come_back_as_other_values(mqtt_url: str) -> None:
    async with plant(mqtt_url) as here:
        # No negative ack in Sparkplug B: the device keeps reporting its old value.
        assert await here.adapters.write("sdev", "refused", 5.0) == 1.0
        assert await here.adapters.write("sdev", "liar", 5.0) == 6.0
        assert here.simulator.edge_node(here.group).writes == [("s-1", "liar", 5.0)]


async def test_no_ack_and_no_ddata_time_out(mqtt_url: str) -> None:
    async with plant(mqtt_url) as here:
        # Devices nobody answers for: JSON telemetry and a Sparkplug edge node from the test.
        ts = round(utcnow().timestamp() * 1000)
        body = json.dumps({"ts": ts, "values": {"setpoint": 1.0}}).encode()
        here.client.publish(f"{here.root}/C26/pump/mute-1/telemetry", body, 1)
        node = f"spBv1.0/{here.group}/NBIRTH/mute-node"
        birth = build_payload([("bdSeq", None, DataType.UINT64, 0)], timestamp=utcnow(), seq=0)
        here.client.publish(node, encode_payload(birth), 1)
        dbirth = build_payload([("setpoint", 1, DataType.DOUBLE, 1.0)], timestamp=utcnow(), seq=1)
        here.client.publish(
            f"spBv1.0/{here.group}/DBIRTH/mute-node/mute-2", encode_payload(dbirth), 1
        )
        (adapter,) = here.adapters.adapters
        await until(
            lambda: asyncio.sleep(0, set(adapter.book.devices)),
            lambda d: {"jmute", "smute"} <= d,
            5,
        )
        first = asyncio.create_task(here.adapters.write("jmute", "setpoint", 2.0))
        await asyncio.sleep(0.1)
        with pytest.raises(ControlNotAllowed, match="still waiting"):
            await here.adapters.write("jmute", "setpoint", 3.0)  # one write per point at a time
        with pytest.raises(ControlTimeout, match=r"jmute point setpoint: no ack within 1.0 s"):
            await first
        with pytest.raises(ControlTimeout, match=r"no DDATA carrying the point"):
            await here.adapters.write("smute", "setpoint", 2.0)
        assert sum(t.endswith("/mute-1/set") for t in here.sent()) == 1
        assert sum(t.endswith("/DCMD/mute-node/mute-2") for t in here.sent()) == 1


async def test_refused_before_anything_is_published(mqtt_url: str) -> None:
    async with plant(mqtt_url) as here:
        cases: list[tuple[str, str, Any, type[Exception], str]] = [
            ("jdev", "flow", 1.0, ControlNotAllowed, "not writable"),
            ("sdev", "flow", 1.0, ControlNotAllowed, "not writable"),
            ("jdev", "nope", 1.0, ControlTargetUnknown, "has no point nope"),
            ("sdev", "nope", 1.0, ControlTargetUnknown, "has no point nope"),
            ("ghost", "setpoint", 1.0, ControlTargetUnknown, "serves device ghost"),
            ("jdev", "setpoint", "hot", ControlNotAllowed, "expected a float64 value"),
            ("jdev", "speed", 1.5, ControlNotAllowed, "expected a int64 value"),
            ("sdev", "speed", 2**40, ControlNotAllowed, "out of INT32 range"),
            ("sdev", "setpoint", True, ControlNotAllowed, "needs a number"),
            ("never", "setpoint", 1.0, ControlUnavailable, "not been seen yet"),
            # Reported writable by the device, but control.allow_reported_writable is set*.
            ("ctl/j-2", "speed", 1, ControlNotAllowed, "not writable"),
            (f"ctl/{here.group}/edge-1/s-2", "speed", 1, ControlNotAllowed, "not writable"),
        ]
        for device, point, value, error, message in cases:
            with pytest.raises(error, match=message):
                await here.adapters.write(device, point, value)
        with pytest.raises(ControlUnavailable, match="not been seen yet"):
            await here.adapters.read("never", "setpoint")
        with pytest.raises(ControlTargetUnknown):
            await here.adapters.read("jdev", "nope")
        await asyncio.sleep(0.3)
        assert here.sent() == []


async def test_points_the_device_reports_writable_and_config_allows(mqtt_url: str) -> None:
    async with plant(mqtt_url) as here:
        sparkplug = f"ctl/{here.group}/edge-1/s-2"
        assert await here.adapters.write("ctl/j-2", "setpoint", 7.0) == 7.0
        assert await here.adapters.write(sparkplug, "setpoint", 8.0) == 8.0
        (adapter,) = here.adapters.adapters
        registered = adapter.book.registration(adapter.book.devices["ctl/j-2"])
        assert {p.key for p in registered.points if p.writable} == {"setpoint"}
        declared = adapter.book.registration(adapter.book.devices["jdev"])
        assert {p.key for p in declared.points if p.writable} == set(WRITABLE)
