"""Fleet-spec models of simulated Modbus devices, points and servers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapters.modbus.config import ModbusPoint
from simulators.fleet import FleetDevice
from simulators.signals import Signal

DEFAULT_SERVER = "main"


class ModbusFleetPoint(ModbusPoint):
    """A register-map point (as the adapter reads it) plus how its value changes."""

    signal: Signal = Signal()


class ModbusFleetDevice(FleetDevice):
    """A simulated Modbus device: one unit id on one simulated server."""

    protocol: Literal["modbus"]
    server: str = Field(DEFAULT_SERVER, min_length=1, description="Name of the serving server.")
    device_id: int = Field(1, ge=1, le=247, description="Modbus unit id on that server.")
    points: list[ModbusFleetPoint] = Field(min_length=1)
    identification: Literal["answer", "refuse"] = Field(
        "answer", description="refuse: answer Read Device Identification with exception 1."
    )

    @model_validator(mode="after")
    def _unambiguous_map(self) -> ModbusFleetDevice:
        keys = [p.key for p in self.points]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"point keys must be unique within a device: {', '.join(dupes)}")
        owner: dict[tuple[str, int], str] = {}
        for point in self.points:
            for address in range(point.address, point.address + point.register_count):
                slot = (point.table.value, address)
                if slot in owner:
                    raise ValueError(
                        f"points {owner[slot]!r} and {point.key!r} both use "
                        f"{point.table.value} address {address}"
                    )
                owner[slot] = point.key
        return self


class ModbusServerSpec(BaseModel):
    """One simulated Modbus server (a listening socket serving several unit ids)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    framing: Literal["tcp", "rtu+tcp"] = "tcp"
    port: int = Field(0, ge=0, le=65535, description="0: any free port.")


class ModbusSettings(BaseModel):
    """`protocols.modbus` of a fleet spec."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    servers: list[ModbusServerSpec] = Field(
        default_factory=list, description="Servers not listed here are TCP on a free port."
    )
    timeout: float = Field(1.0, gt=0, description="Request timeout in generated collector config.")
    max_gap: int = Field(8, ge=0, le=100, description="max_gap in generated collector config.")

    def server(self, name: str) -> ModbusServerSpec:
        """Return the settings of a server (defaults when not listed)."""
        for spec in self.servers:
            if spec.name == name:
                return spec
        return ModbusServerSpec(name=name)
