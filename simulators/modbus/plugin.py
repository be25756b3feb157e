"""The Modbus plug-in of the fleet simulator (see simulators/fleet.py: FleetPlugin)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from adapters.modbus.config import ModbusDevice, ModbusPoint
from simulators.fleet import Fleet, FleetDevice, ManifestDevice
from simulators.modbus.models import ModbusFleetDevice, ModbusSettings
from simulators.modbus.simulator import ModbusFleetSimulator


def modbus_devices(devices: Sequence[ManifestDevice]) -> list[ModbusDevice]:
    """Turn served Modbus devices of a manifest into the collector's device configuration."""
    out = []
    for device in devices:
        if device.protocol != "modbus":
            raise ValueError(f"device {device.id!r} is served by {device.protocol}, not modbus")
        settings = device.settings
        out.append(
            ModbusDevice(
                id=device.id,
                name=device.name,
                type=device.type,
                industry=device.industry,
                region=device.region,
                park=device.park,
                enterprise=device.enterprise,
                protocol="modbus",
                endpoint=device.endpoint,
                device_id=int(settings["device_id"]),
                poll_interval=device.update_interval,
                timeout=float(settings.get("timeout", 1.0)),
                max_gap=int(settings.get("max_gap", 8)),
                points=[
                    ModbusPoint.model_validate(
                        {**p.settings, "key": p.key, "unit": p.unit, "writable": p.writable}
                    )
                    for p in device.points
                ],
            )
        )
    return out


class ModbusPlugin:
    """Validates Modbus fleet devices, serves them, and configures the collector for them."""

    protocol = "modbus"
    device_model: type[FleetDevice] = ModbusFleetDevice
    settings_model: type[BaseModel] = ModbusSettings

    def simulator(self, fleet: Fleet, host: str) -> ModbusFleetSimulator:
        """Build (not start) the simulator of the fleet's Modbus devices."""
        devices = [d for d in fleet.devices_of(self.protocol) if isinstance(d, ModbusFleetDevice)]
        settings = fleet.settings.get(self.protocol)
        if not isinstance(settings, ModbusSettings):
            settings = ModbusSettings()
        return ModbusFleetSimulator(fleet, devices, settings, host=host)

    def device_configs(self, devices: Sequence[ManifestDevice]) -> list[BaseModel]:
        """Collector configuration entries (ModbusDevice) of served Modbus devices."""
        return list(modbus_devices(devices))


PLUGIN = ModbusPlugin()
