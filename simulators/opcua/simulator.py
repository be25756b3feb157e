"""Serves a fleet's OPC UA devices: one simulated server per named server of the fleet."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from simulators.fleet import Fleet, ManifestDevice, ManifestPoint
from simulators.opcua.models import OpcUaFleetDevice, OpcUaSettings
from simulators.opcua.server import OpcUaSimulatorServer

log = logging.getLogger("tally.simulators.opcua")


class OpcUaFleetSimulator:
    """The OPC UA part of a fleet: its servers, each serving its devices."""

    def __init__(
        self,
        fleet: Fleet,
        devices: Sequence[OpcUaFleetDevice],
        settings: OpcUaSettings,
        *,
        host: str = "127.0.0.1",
    ) -> None:
        self.fleet = fleet
        self.settings = settings
        self.servers: dict[str, OpcUaSimulatorServer] = {}
        names = list(dict.fromkeys(d.server for d in devices))
        for name in names:
            spec = settings.server(name)
            self.servers[name] = OpcUaSimulatorServer(
                [d for d in devices if d.server == name],
                host=host,
                port=spec.port,
                name=name,
                security=spec.security,
                users=spec.users,
                nodeid_offset=spec.nodeid_offset,
                subscriptions=spec.subscriptions,
                seed=fleet.seed,
            )

    async def start(self) -> list[ManifestDevice]:
        """Start every server; describe the served devices for the manifest."""
        for server in self.servers.values():
            await server.start()
        return [self._manifest(s, d) for s in self.servers.values() for d in s.devices]

    async def stop(self) -> None:
        """Stop every server."""
        for server in self.servers.values():
            await server.stop()

    def _manifest(self, server: OpcUaSimulatorServer, device: OpcUaFleetDevice) -> ManifestDevice:
        spec = self.settings.server(server.name)
        return ManifestDevice(
            id=device.id,
            protocol="opcua",
            endpoint=server.endpoint,
            name=device.name,
            type=device.type,
            industry=device.industry,
            region=device.region,
            park=device.park,
            enterprise=device.enterprise,
            update_interval=device.update_interval,
            identity={
                **device.reported_identity(),
                "serial": f"SIM-{device.id}",
                "application_uri": server.application_uri,
            },
            settings={
                "server": server.name,
                "browse_path": server.browse_path(device.id),
                "security": spec.security,
                "users": dict(spec.users),
                "publishing_interval": self.settings.publishing_interval,
            },
            points=[
                ManifestPoint(
                    key=p.key,
                    data_type=p.data_type,
                    unit=p.unit,
                    writable=p.writable,
                    address=f"{server.browse_path(device.id)}/{p.key}",
                    settings={"node_id": server.node_id(device.id, p.key)},
                )
                for p in device.points
            ],
        )
