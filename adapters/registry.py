"""Maps protocol names to their device configuration models and adapter classes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Protocol

from pydantic import Field

from adapters.base import NULL_OBSERVER, AdapterContext, AdapterObserver, Sink
from adapters.modbus.adapter import ModbusAdapter
from adapters.modbus.config import ModbusDevice
from adapters.mqtt.adapter import MqttAdapters
from adapters.mqtt.config import MqttConnection
from adapters.opcua.adapter import OpcUaAdapters
from adapters.opcua.config import OpcUaSource

DeviceConfig = Annotated[
    ModbusDevice | MqttConnection | OpcUaSource, Field(discriminator="protocol")
]

PROTOCOLS: tuple[str, ...] = ("modbus", "mqtt", "opcua")


# --- adapter construction: one factory per protocol; a new protocol is one line more ---


class Adapter(Protocol):
    """A protocol session over some devices: `run()` polls/subscribes until `stop()`."""

    async def run(self) -> None:
        """Run until stop() is called."""
        ...

    async def stop(self) -> None:
        """Stop and release every connection and task."""
        ...


AdapterFactory = Callable[[Sequence[Any], AdapterContext], Adapter]


def _modbus(devices: Sequence[Any], ctx: AdapterContext) -> Adapter:
    return ModbusAdapter(devices, ctx.sink, observer=ctx.observer)


def _mqtt(devices: Sequence[Any], ctx: AdapterContext) -> Adapter:
    return MqttAdapters(devices, ctx.sink, observer=ctx.observer)


def _opcua(devices: Sequence[Any], ctx: AdapterContext) -> Adapter:
    return OpcUaAdapters(devices, ctx.sink, data_dir=ctx.data_dir, observer=ctx.observer)


ADAPTERS: dict[str, AdapterFactory] = {"modbus": _modbus, "mqtt": _mqtt, "opcua": _opcua}
"""Protocol name to the factory that builds its adapter from (its devices, the context)."""


class AdapterConfigError(ValueError):
    """Devices that no adapter can serve; the message lists the valid protocols."""


def build_adapters(
    devices: Sequence[Any],
    sink: Sink,
    *,
    data_dir: Path = Path("."),
    observer: AdapterObserver = NULL_OBSERVER,
) -> list[Adapter]:
    """Build one adapter per protocol for a configuration's `devices` (no network yet)."""
    ctx = AdapterContext(sink=sink, data_dir=data_dir, observer=observer)
    by_protocol: dict[str, list[Any]] = {}
    for index, device in enumerate(devices):
        protocol = getattr(device, "protocol", None)
        if protocol not in ADAPTERS:
            raise AdapterConfigError(
                f"devices[{index}].protocol: no adapter for {protocol!r}; "
                f"valid: {', '.join(sorted(ADAPTERS))}"
            )
        by_protocol.setdefault(protocol, []).append(device)
    return [ADAPTERS[protocol](members, ctx) for protocol, members in by_protocol.items()]
