"""The MQTT plug-in of the fleet: spec validation, its own broker, collector configuration."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from adapters.mqtt.config import MqttConnection
from collector.config import parse_config
from criteria.industries import classify
from simulators.fleet import FleetError, device_configs, load_fleet, parse_fleet
from simulators.mqtt.fleet_simulator import MqttFleetSimulator
from simulators.mqtt.models import MqttFleetDevice
from simulators.runner import FleetSimulator

MQTT_DEMO = Path(__file__).parents[3] / "simulators" / "fleets" / "mqtt-demo.yaml"
POINT = {"key": "flow", "unit": "m³/h", "signal": {"kind": "sine", "base": 5}}


def spec(devices: list[dict[str, Any]], **mqtt: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "name": "mqtt-plugin-test",
        "protocols": {"mqtt": mqtt},
        "devices": devices,
    }


def json_device(**fields: Any) -> dict[str, Any]:
    return {"id": "p-1", "protocol": "mqtt", "type": "pump", "industry": "C26",
            "points": [POINT], **fields}  # fmt: skip


@pytest.mark.parametrize(
    ("device", "message"),
    [
        (json_device(industry=None), r"a JSON device needs industry"),
        (json_device(points=[{"key": "n", "data_type": "int32"}]), r"use int64"),
        (json_device(points=[{"key": "n", "on_write": "refuse"}]), r"needs writable: true"),
        (json_device(id="a/b"), r"no '/'"),
        (json_device(points=[{"key": "Properties/Type"}]), r"reserved Sparkplug B prefix"),
        (json_device(points=[POINT, POINT]), r"unique within a device: flow"),
        (json_device(encoding="xml"), r"devices\[0\] \(p-1\)\.encoding"),
    ],
)
def test_bad_mqtt_devices_name_the_problem(device: dict[str, Any], message: str) -> None:
    with pytest.raises(FleetError, match=message):
        parse_fleet(spec([device]), "<t>")


def test_bad_broker_url() -> None:
    with pytest.raises(FleetError, match=r"protocols\.mqtt\.broker"):
        parse_fleet(spec([json_device()], broker="http://x"), "<t>")


def test_the_mqtt_demo_fleet() -> None:
    fleet = load_fleet(MQTT_DEMO)
    devices = fleet.devices_of("mqtt")
    assert len(devices) == len(fleet.devices) == 14
    assert len({d.type for d in devices}) == 7
    mqtt = [d for d in devices if isinstance(d, MqttFleetDevice)]
    assert sum(len(d.points) for d in mqtt) == 70
    assert {d.encoding for d in mqtt} == {"json", "sparkplug"}
    assert {classify(d.industry or "") for d in devices} == {"process"}


def _listening(url: str) -> bool:
    host, port = url.removeprefix("mqtt://").split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.integration
async def test_a_throwaway_broker_is_started_named_in_the_manifest_and_stopped() -> None:
    devices = [
        json_device(),
        {**json_device(id="r-1", type="reactor"), "encoding": "sparkplug", "group": "plant",
         "points": [POINT, {"key": "sp", "writable": True, "on_write": "misreport"}]},
    ]  # fmt: skip
    simulator = FleetSimulator(parse_fleet(spec(devices, connection="site-a"), "<t>"))
    async with simulator as manifest:
        endpoints = {d.endpoint for d in manifest.devices}
        (url,) = endpoints
        assert url.startswith("mqtt://127.0.0.1:") and _listening(url)
        mqtt = simulator.simulators["mqtt"]
        assert isinstance(mqtt, MqttFleetSimulator) and mqtt.broker is not None
        reactor = manifest.device("r-1")
        assert reactor.identity == {
            "broker": url, "group": "plant", "edge_node": "edge-1", "device": "r-1",
        }  # fmt: skip
        assert [(p.key, p.writable, p.settings["on_write"]) for p in reactor.points] == [
            ("flow", False, "accept"),
            ("sp", True, "misreport"),
        ]
        (entry,) = device_configs(manifest)
        assert isinstance(entry, MqttConnection)
        assert (entry.id, entry.url, entry.simulated) == ("site-a", url, True)
        assert [(d.id, d.topic_device) for d in entry.devices] == [("p-1", "p-1"), ("r-1", None)]
        assert entry.devices[1].sparkplug is not None
        assert entry.devices[1].sparkplug.device == "r-1"
        assert [p.key for p in entry.devices[1].points if p.writable] == ["sp"]
        assert entry.sparkplug is not None and entry.sparkplug.groups == ["plant"]
        assert entry.control.json_commands is not None
        assert entry.control.json_commands.command_topic == "plant/{industry}/{type}/{device}/set"
        # The entry is a valid `devices:` item of the collector's configuration.
        parse_config({"version": 1, "devices": [entry.model_dump(mode="json")]}, "<t>", {})
    assert not _listening(url)
    assert mqtt.broker is None


@pytest.mark.integration
async def test_a_given_broker_is_used_as_it_is(mqtt_url: str) -> None:
    fleet = parse_fleet(spec([json_device(id="p-9")], broker=mqtt_url, topic_root="given"), "<t>")
    simulator = FleetSimulator(fleet)
    async with simulator as manifest:
        assert [d.endpoint for d in manifest.devices] == [mqtt_url]
        assert manifest.devices[0].identity["topic"] == "given/C26/pump/p-9/telemetry"
        mqtt = simulator.simulators["mqtt"]
        assert isinstance(mqtt, MqttFleetSimulator) and mqtt.broker is None
    assert _listening(mqtt_url)
