"""Maps protocol names to their device configuration models and adapter classes."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from adapters.modbus.config import ModbusDevice

DeviceConfig = Annotated[ModbusDevice, Field(discriminator="protocol")]

PROTOCOLS: tuple[str, ...] = ("modbus",)
