"""The OPC UA plug-in of the fleet simulator (see simulators/fleet.py: FleetPlugin)."""

from __future__ import annotations

import glob
from collections.abc import Sequence

from pydantic import BaseModel

from adapters.opcua.config import OpcUaDevice, OpcUaSource
from simulators.fleet import Fleet, FleetDevice, ManifestDevice
from simulators.opcua.models import DEVICE_FOLDER, OpcUaFleetDevice, OpcUaSettings
from simulators.opcua.simulator import OpcUaFleetSimulator


def opcua_sources(devices: Sequence[ManifestDevice]) -> list[OpcUaSource]:
    """One collector connection per served endpoint, listing its devices by browse path."""
    by_endpoint: dict[str, list[ManifestDevice]] = {}
    for device in devices:
        if device.protocol != "opcua":
            raise ValueError(f"device {device.id!r} is served by {device.protocol}, not opcua")
        by_endpoint.setdefault(device.endpoint, []).append(device)
    out = []
    for endpoint, served in by_endpoint.items():
        settings = served[0].settings
        users: dict[str, str] = dict(settings.get("users") or {})
        secure = settings.get("security", "none") != "none"
        auth: dict[str, object] = {}
        if users:
            username, password = next(iter(sorted(users.items())))
            auth = {"kind": "username", "username": username, "password": password}
        out.append(
            OpcUaSource.model_validate(
                {
                    "protocol": "opcua",
                    "id": f"opcua-{settings.get('server', 'main')}",
                    "endpoint": endpoint,
                    "security": (
                        {"policy": "Basic256Sha256", "mode": "SignAndEncrypt"} if secure else {}
                    ),
                    "auth": auth,
                    "discovery": {"root": f"Objects/{DEVICE_FOLDER}"},
                    "data": {"publishing_interval": settings.get("publishing_interval", 1.0)},
                    # the fleet says which points are writable: control may write exactly those
                    "control": {
                        "writable": [
                            glob.escape(f"{d.id}/{p.key}")
                            for d in served
                            for p in d.points
                            if p.writable
                        ]
                    },
                    "devices": [
                        OpcUaDevice(
                            id=d.id,
                            name=d.name,
                            type=d.type,
                            industry=d.industry,
                            region=d.region,
                            park=d.park,
                            enterprise=d.enterprise,
                            browse_path=str(d.settings["browse_path"]),
                        )
                        for d in served
                    ],
                }
            )
        )
    return out


class OpcUaPlugin:
    """Validates OPC UA fleet devices, serves them, and configures the collector for them."""

    protocol = "opcua"
    device_model: type[FleetDevice] = OpcUaFleetDevice
    settings_model: type[BaseModel] = OpcUaSettings

    def simulator(self, fleet: Fleet, host: str) -> OpcUaFleetSimulator:
        """Build (not start) the simulator of the fleet's OPC UA devices."""
        devices = [d for d in fleet.devices_of(self.protocol) if isinstance(d, OpcUaFleetDevice)]
        settings = fleet.settings.get(self.protocol)
        if not isinstance(settings, OpcUaSettings):
            settings = OpcUaSettings()
        return OpcUaFleetSimulator(fleet, devices, settings, host=host)

    def device_configs(self, devices: Sequence[ManifestDevice]) -> list[BaseModel]:
        """Collector configuration entries (OpcUaSource, one per endpoint) of served devices."""
        return list(opcua_sources(devices))


PLUGIN = OpcUaPlugin()
