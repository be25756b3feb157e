"""Run a fleet of simulated MQTT devices against a broker."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from types import TracebackType

from simulators.mqtt.devices import DeviceSpec
from simulators.mqtt.json_device import DEVICES_PER_CONNECTION, JsonDevice, SharedConnection
from simulators.mqtt.sparkplug_edge import SparkplugEdgeNode


class MqttSimulator:
    """JSON devices on shared connections and Sparkplug devices behind their edge nodes."""

    def __init__(self, broker_url: str, devices: Iterable[DeviceSpec]) -> None:
        self.broker_url = broker_url
        self.specs = list(devices)
        ids = [d.id for d in self.specs]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"simulated device ids must be unique: {', '.join(dupes)}")
        self.json_devices: dict[str, JsonDevice] = {}
        self.connections: list[SharedConnection] = []
        self.edge_nodes: dict[tuple[str, str], SparkplugEdgeNode] = {}

    async def start(self, within: float = 10.0) -> None:
        """Connect every device and edge node and start publishing."""
        by_node: dict[tuple[str, str], list[DeviceSpec]] = defaultdict(list)
        for spec in self.specs:
            if spec.encoding == "sparkplug":
                by_node[(spec.group, spec.edge_node)].append(spec)
                continue
            if len(self.json_devices) % DEVICES_PER_CONNECTION == 0:
                client_id = f"sim-json-{spec.id}"
                self.connections.append(SharedConnection(self.broker_url, client_id))
            self.json_devices[spec.id] = JsonDevice(self.connections[-1], spec)
        for (group, edge), specs in by_node.items():
            self.edge_nodes[(group, edge)] = SparkplugEdgeNode(self.broker_url, group, edge, specs)
        await asyncio.gather(
            *(c.start(within) for c in self.connections),
            *(n.start(within) for n in self.edge_nodes.values()),
        )
        for device in self.json_devices.values():
            device.start()

    async def stop(self) -> None:
        """Stop every device (edge nodes publish NDEATH)."""
        await asyncio.gather(
            *(d.stop() for d in self.json_devices.values()),
            *(n.stop() for n in self.edge_nodes.values()),
        )
        await asyncio.gather(*(c.stop() for c in self.connections))

    def edge_node(self, group: str = "tally-sim", edge: str = "edge-1") -> SparkplugEdgeNode:
        """Return one edge node."""
        return self.edge_nodes[(group, edge)]

    async def __aenter__(self) -> MqttSimulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def serve(
    broker_url: str, devices: Iterable[DeviceSpec], stop: asyncio.Event | None = None
) -> None:
    """Run the simulator until `stop` is set (or forever, until cancelled)."""
    async with MqttSimulator(broker_url, devices):
        await (stop or asyncio.Event()).wait()
