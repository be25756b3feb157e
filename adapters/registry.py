"""Maps protocol names to their device configuration models and adapter classes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Protocol

from pydantic import Field

from adapters.base import Sink
from adapters.modbus.adapter import ModbusAdapter
from adapters.modbus.config import ModbusDevice
from adapters.mqtt.adapter import MqttAdapters
from adapters.mqtt.config import MqttConnection
from adapters.opcua.config import OpcUaSource

DeviceConfig = Annotated[
    ModbusDevice | MqttConnection | OpcUaSource, Field(discriminator="protocol")
]

PROTOCOLS: tuple[str, ...] = ("modbus", "mqtt", "opcua")


# --- adapter construction (Modbus adapter engineer; other protocols add one line each) ---


class Adapter(Protocol):
    """A protocol session over some devices: `run()` polls/subscribes until `stop()`."""

    async def run(self) -> None:
        """Run until stop() is called."""
        ...

    async def stop(self) -> None:
        """Stop and release every connection and task."""
        ...


AdapterFactory = Callable[[Sequence[Any], Sink], Adapter]

ADAPTERS: dict[str, AdapterFactory] = {"modbus": ModbusAdapter, "mqtt": MqttAdapters}
"""Protocol name to adapter class; each is built with (its devices, the sink)."""


class AdapterConfigError(ValueError):
    """Devices that no adapter can serve; the message lists the valid protocols."""


def build_adapters(devices: Sequence[Any], sink: Sink) -> list[Adapter]:
    """Build one adapter per protocol for a configuration's `devices` (no network yet)."""
    by_protocol: dict[str, list[Any]] = {}
    for index, device in enumerate(devices):
        protocol = getattr(device, "protocol", None)
        if protocol not in ADAPTERS:
            raise AdapterConfigError(
                f"devices[{index}].protocol: no adapter for {protocol!r}; "
                f"valid: {', '.join(sorted(ADAPTERS))}"
            )
        by_protocol.setdefault(protocol, []).append(device)
    return [ADAPTERS[protocol](members, sink) for protocol, members in by_protocol.items()]
