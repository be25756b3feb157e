"""The MQTT plug-in of the fleet simulator (see simulators/fleet.py: FleetPlugin)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from adapters.mqtt.config import MqttConnection
from simulators.fleet import Fleet, FleetDevice, ManifestDevice
from simulators.mqtt.fleet_simulator import MqttFleetSimulator
from simulators.mqtt.json_device import topic_template
from simulators.mqtt.models import MqttFleetDevice, MqttSettings


def _declared(device: ManifestDevice) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": device.id,
        "name": device.name,
        "type": device.type,
        "industry": device.industry,
        "region": device.region,
        "park": device.park,
        "enterprise": device.enterprise,
        "points": [{"key": p.key, "unit": p.unit, "writable": p.writable} for p in device.points],
    }
    if device.settings["encoding"] == "sparkplug":
        entry["sparkplug"] = {
            "group": device.settings["group"],
            "edge_node": device.settings["edge_node"],
            "device": device.id,
        }
    else:
        entry["topic_device"] = device.id
    return entry


def mqtt_connections(devices: Sequence[ManifestDevice]) -> list[MqttConnection]:
    """One collector broker connection per served broker, declaring its devices by address."""
    by_broker: dict[str, list[ManifestDevice]] = {}
    for device in devices:
        if device.protocol != "mqtt":
            raise ValueError(f"device {device.id!r} is served by {device.protocol}, not mqtt")
        by_broker.setdefault(device.endpoint, []).append(device)
    out: list[MqttConnection] = []
    for index, (url, served) in enumerate(by_broker.items()):
        settings = served[0].settings
        root = str(settings["topic_root"])
        json_devices = [d for d in served if d.settings["encoding"] == "json"]
        groups = sorted({str(d.settings["group"]) for d in served if "group" in d.settings})
        name = str(settings["connection"])
        raw: dict[str, Any] = {
            "id": name if index == 0 else f"{name}-{index + 1}",
            "protocol": "mqtt",
            "url": url,
            "simulated": True,
            "reconnect_max_delay": 5,
            "devices": [_declared(d) for d in served],
            "control": {"timeout": float(settings["command_timeout"])},
        }
        if json_devices:
            raw["topics"] = [
                {
                    "topic": topic_template(root, "telemetry"),
                    "timestamp": {"path": "$.ts", "format": "epoch_ms"},
                    "point_object": "$.values",
                }
            ]
            raw["identification"] = [{"topic": topic_template(root, "identity")}]
            raw["control"]["json_commands"] = {
                "command_topic": topic_template(root, "set"),
                "ack_topic": topic_template(root, "ack"),
            }
        if groups:
            raw["sparkplug"] = {"groups": groups}
        out.append(MqttConnection.model_validate(raw))
    return out


class MqttPlugin:
    """Validates MQTT fleet devices, serves them on a broker, and configures the collector."""

    protocol = "mqtt"
    device_model: type[FleetDevice] = MqttFleetDevice
    settings_model: type[BaseModel] = MqttSettings

    def simulator(self, fleet: Fleet, host: str) -> MqttFleetSimulator:
        """Build (not start) the simulator of the fleet's MQTT devices."""
        devices = [d for d in fleet.devices_of(self.protocol) if isinstance(d, MqttFleetDevice)]
        settings = fleet.settings.get(self.protocol)
        if not isinstance(settings, MqttSettings):
            settings = MqttSettings()
        return MqttFleetSimulator(fleet, devices, settings, host=host)

    def device_configs(self, devices: Sequence[ManifestDevice]) -> list[BaseModel]:
        """Collector configuration entries (MqttConnection, one per broker) of served devices."""
        return list(mqtt_connections(devices))


PLUGIN = MqttPlugin()
