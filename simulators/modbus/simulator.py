"""Serves a fleet's Modbus devices: builds the stores, runs the servers, animates the values."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from adapters.modbus.config import BIT_TABLES, DataType
from simulators.fleet import Fleet, ManifestDevice, ManifestPoint
from simulators.modbus.datastore import ServerStore, UnitStore
from simulators.modbus.models import ModbusFleetDevice, ModbusFleetPoint, ModbusSettings
from simulators.modbus.server import SimulatorServer
from simulators.signals import ValueKind, point_seed, signal_value

log = logging.getLogger("tally.simulators.modbus")

_POINT_SETTINGS = {
    "table",
    "address",
    "data_type",
    "length",
    "byte_order",
    "word_order",
    "scale",
    "offset",
}


def _kind(point: ModbusFleetPoint) -> ValueKind:
    if point.table in BIT_TABLES or point.data_type is DataType.BOOL:
        return "bool"
    return "string" if point.data_type is DataType.STRING else "number"


class ModbusFleetSimulator:
    """The Modbus part of a fleet: several servers, many unit ids, changing values."""

    def __init__(
        self,
        fleet: Fleet,
        devices: Sequence[ModbusFleetDevice],
        settings: ModbusSettings,
        *,
        host: str = "127.0.0.1",
    ) -> None:
        self.fleet = fleet
        self.devices = list(devices)
        self.settings = settings
        self.servers: dict[str, SimulatorServer] = {}
        self.units: dict[str, UnitStore] = {}
        for device in self.devices:
            server = self.servers.get(device.server)
            if server is None:
                spec = settings.server(device.server)
                server = SimulatorServer(
                    ServerStore(), host=host, port=spec.port, framing=spec.framing, name=spec.name
                )
                self.servers[device.server] = server
            identity = device.reported_identity() if device.identification == "answer" else {}
            unit = UnitStore(device.device_id, identity)
            try:
                server.store.add_unit(unit)
            except ValueError:
                raise ValueError(
                    f"device {device.id!r}: unit id {device.device_id} is already used on "
                    f"server {device.server!r}"
                ) from None
            self.units[device.id] = unit
        self._started_at = time.monotonic()
        self._animator: asyncio.Task[None] | None = None
        self._seeded = False

    def unit(self, device_id: str) -> UnitStore:
        """Return the data store of one simulated device (by fleet device id)."""
        return self.units[device_id]

    def server_of(self, device_id: str) -> SimulatorServer:
        """Return the server that serves one simulated device."""
        for device in self.devices:
            if device.id == device_id:
                return self.servers[device.server]
        raise KeyError(f"no Modbus device {device_id!r} in fleet {self.fleet.name!r}")

    def update(self, now: float | None = None) -> None:
        """Set every non-writable point to its signal's value at `now` (seconds since start)."""
        t = (time.monotonic() - self._started_at) if now is None else now
        for device in self.devices:
            self._update_device(device, t)

    def _update_device(self, device: ModbusFleetDevice, t: float) -> None:
        unit = self.units[device.id]
        for point in device.points:
            if point.writable and self._seeded:
                continue  # a writable point holds what was written (or its initial value)
            seed = point_seed(self.fleet.seed, device.id, point.key)
            value = signal_value(point.signal, t, _kind(point), seed)
            if point.key in unit.points:
                unit.set_value(point.key, value)
            else:
                unit.add_point(point, value)

    async def start(self) -> list[ManifestDevice]:
        """Fill the stores, start every server and the value updates; describe the devices."""
        if not self._seeded:
            self._started_at = time.monotonic()
            self.update(0.0)
            self._seeded = True
        for server in self.servers.values():
            await server.start()
        if self._animator is None:
            self._animator = asyncio.create_task(self._animate(), name="modbus-sim-animate")
        log.info(
            "serving %d Modbus device(s) on %s",
            len(self.devices),
            ", ".join(s.endpoint for s in self.servers.values()),
        )
        return [self._manifest_device(d) for d in self.devices]

    async def stop(self) -> None:
        """Stop the value updates and every server."""
        task, self._animator = self._animator, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for server in self.servers.values():
            await server.stop()

    async def _animate(self) -> None:
        due = {d.id: d.update_interval for d in self.devices}
        by_id = {d.id: d for d in self.devices}
        while True:
            t = time.monotonic() - self._started_at
            next_due = min(due.values())
            if next_due > t:
                await asyncio.sleep(next_due - t)
                continue
            for device_id, at in due.items():
                if at <= t:
                    device = by_id[device_id]
                    self._update_device(device, t)
                    due[device_id] = max(at + device.update_interval, t)

    def _manifest_device(self, device: ModbusFleetDevice) -> ManifestDevice:
        server = self.servers[device.server]
        return ManifestDevice(
            id=device.id,
            protocol="modbus",
            endpoint=server.endpoint,
            name=device.name,
            type=device.type,
            industry=device.industry,
            region=device.region,
            park=device.park,
            enterprise=device.enterprise,
            update_interval=device.update_interval,
            identity=device.reported_identity(),
            settings={
                "device_id": device.device_id,
                "server": device.server,
                "timeout": self.settings.timeout,
                "max_gap": self.settings.max_gap,
            },
            points=[
                ManifestPoint(
                    key=p.key,
                    data_type=p.data_type.value,
                    unit=p.unit,
                    writable=p.writable,
                    address=f"{p.table.value}:{p.address}",
                    settings=p.model_dump(mode="json", include=_POINT_SETTINGS),
                )
                for p in device.points
            ],
        )
