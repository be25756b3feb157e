"""Serves a fleet's MQTT devices on a broker (the fleet's own, or a throwaway Mosquitto)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from collector.embedded.mosquitto import ThrowawayMosquitto
from simulators.fleet import Fleet, ManifestDevice, ManifestPoint
from simulators.mqtt.devices import DeviceSpec, PointSpec
from simulators.mqtt.json_device import device_topic
from simulators.mqtt.models import MqttFleetDevice, MqttSettings
from simulators.mqtt.simulator import MqttSimulator

log = logging.getLogger("tally.simulators.mqtt")

START_WITHIN = 15.0


def device_spec(device: MqttFleetDevice, settings: MqttSettings, seed: int) -> DeviceSpec:
    """Return the simulator's spec of one fleet device."""
    return DeviceSpec(
        id=device.id,
        type=device.type,
        industry=device.industry,
        region=device.region,
        points=tuple(
            PointSpec(
                key=p.key,
                data_type=p.data_type,
                writable=p.writable,
                unit=p.unit,
                signal=p.signal,
                on_write=p.on_write,
            )
            for p in device.points
        ),
        interval=device.update_interval,
        encoding=device.encoding,
        group=device.group,
        edge_node=device.edge_node,
        name=device.name,
        park=device.park,
        enterprise=device.enterprise,
        topic_root=settings.topic_root,
        seed=seed,
    )


class MqttFleetSimulator:
    """The MQTT part of a fleet: the broker (unless given) and every simulated device."""

    def __init__(
        self,
        fleet: Fleet,
        devices: Sequence[MqttFleetDevice],
        settings: MqttSettings,
        *,
        host: str = "127.0.0.1",
    ) -> None:
        self.fleet = fleet
        self.devices = list(devices)
        self.settings = settings
        self.host = host
        self.broker: ThrowawayMosquitto | None = None
        self.simulator: MqttSimulator | None = None

    @property
    def broker_url(self) -> str:
        """mqtt://host:port of the broker the devices publish to."""
        if self.settings.broker is not None:
            return self.settings.broker
        if self.broker is None:
            raise RuntimeError("the throwaway broker is not started yet")
        return self.broker.url

    async def start(self) -> list[ManifestDevice]:
        """Start the broker (when the fleet names none) and the devices; describe them."""
        if self.settings.broker is None:
            if self.host != "127.0.0.1":
                log.warning(
                    "the throwaway Mosquitto listens on 127.0.0.1 only, not on %s; give "
                    "protocols.mqtt.broker to use a broker reachable elsewhere",
                    self.host,
                )
            self.broker = ThrowawayMosquitto()
            await asyncio.to_thread(self.broker.start)
        specs = [device_spec(d, self.settings, self.fleet.seed) for d in self.devices]
        self.simulator = MqttSimulator(self.broker_url, specs)
        await self.simulator.start(START_WITHIN)
        return [self._manifest(d, s) for d, s in zip(self.devices, specs, strict=True)]

    async def stop(self) -> None:
        """Stop the devices (edge nodes publish NDEATH), then the throwaway broker."""
        if self.simulator is not None:
            try:
                await self.simulator.stop()
            finally:
                self.simulator = None
        if self.broker is not None:
            await asyncio.to_thread(self.broker.remove)
            self.broker = None

    def _manifest(self, device: MqttFleetDevice, spec: DeviceSpec) -> ManifestDevice:
        url = self.broker_url
        settings: dict[str, object] = {
            "connection": self.settings.connection,
            "encoding": device.encoding,
            "topic_root": self.settings.topic_root,
            "command_timeout": self.settings.command_timeout,
        }
        if device.encoding == "json":
            telemetry = device_topic(spec, "telemetry")
            identity = {"broker": url, "topic": telemetry, "device": device.id}
            addresses = {p.key: f"{telemetry}#$.values.{p.key}" for p in device.points}
        else:
            settings.update(group=device.group, edge_node=device.edge_node)
            identity = {
                "broker": url,
                "group": device.group,
                "edge_node": device.edge_node,
                "device": device.id,
            }
            data = f"spBv1.0/{device.group}/DDATA/{device.edge_node}/{device.id}"
            addresses = {p.key: f"{data}#{p.key}" for p in device.points}
        return ManifestDevice(
            id=device.id,
            protocol="mqtt",
            endpoint=url,
            name=device.name,
            type=device.type,
            industry=device.industry,
            region=device.region,
            park=device.park,
            enterprise=device.enterprise,
            update_interval=device.update_interval,
            identity=identity,
            settings=settings,
            points=[
                ManifestPoint(
                    key=p.key,
                    data_type=p.data_type,
                    unit=p.unit,
                    writable=p.writable,
                    address=addresses[p.key],
                    settings={"on_write": p.on_write},
                )
                for p in device.points
            ],
        )
