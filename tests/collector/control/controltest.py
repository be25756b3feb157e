"""Helpers of the control tests: bounded waits, registered targets, managed counts, audit."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from psycopg import AsyncConnection

from adapters.base import utcnow
from adapters.modbus.adapter import ModbusAdapter
from adapters.modbus.config import ModbusDevice
from api.window import floor_hour
from collector.config import parse_config
from collector.control import records
from collector.control.outcome import ControlOp, ControlRequest, Kind
from collector.control.service import ControlService
from collector.service import CollectorService
from collector.store import audit, queries
from simulators.fleet import parse_fleet
from simulators.modbus.datastore import UnitStore
from simulators.modbus.plugin import modbus_devices
from simulators.modbus.simulator import ModbusFleetSimulator
from simulators.runner import FleetSimulator

WAIT = 20.0  # upper bound of every wait; the happy path takes well under a second


async def until(check: Callable[[], Awaitable[Any]], what: str, within: float = WAIT) -> Any:
    """Return check()'s first truthy result; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.1)


async def registered(dsn: str, key: str, points: int) -> records.DeviceTarget:
    """Wait until the device and `points` of its points are in the store; return it."""

    async def check() -> records.DeviceTarget | None:
        async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
            target = await records.find_device(conn, key=key)
        return target if target is not None and len(target.points) >= points else None

    found: records.DeviceTarget = await until(check, f"device {key} to be registered")
    return found


async def managed(dsn: str, include_simulated: bool = True) -> tuple[int, int]:
    """Return (managed devices, managed device types) in the current UTC hour."""
    start = floor_hour(utcnow())
    async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
        rows = await queries.managed_device_counts(
            conn, start, start + timedelta(hours=1), include_simulated
        )
    if not rows:
        return 0, 0
    return rows[0].managed_devices, rows[0].managed_device_types


async def audit_entries(dsn: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """Return (actor, action, subject, payload) of every audit entry, and check the chain."""
    async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
        verdict = await audit.verify(conn)
        assert verdict.ok, verdict.reason
        cur = await conn.execute(
            "SELECT actor, action, subject, payload FROM audit_log ORDER BY seq"
        )
        return [tuple(row) for row in await cur.fetchall()]


async def ops(dsn: str, **filters: Any) -> list[Any]:
    """Return recorded control operations (newest first)."""
    async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
        _, found = await records.list_ops(conn, records.OpFilter(**filters), 1000, 0)
    return found


# --- a collector over two simulated Modbus pumps -------------------------------------

POINTS: list[dict[str, Any]] = [
    {"key": "speed_setpoint", "address": 0, "data_type": "uint16", "writable": True,
     "signal": {"value": 1480}},
    {"key": "pressure_setpoint", "address": 1, "data_type": "int32", "scale": 0.01,
     "writable": True, "signal": {"value": 7.5}},
    {"key": "running", "table": "coil", "address": 0, "data_type": "bool", "writable": True,
     "signal": {"value": True}},
    {"key": "flow", "table": "input", "address": 0, "data_type": "float32",
     "signal": {"value": 12.5}},
]  # fmt: skip

FLEET: dict[str, Any] = {
    "version": 1,
    "name": "control-test",
    "seed": 6,
    "protocols": {"modbus": {"timeout": 0.3}},
    "templates": {
        "pump": {"protocol": "modbus", "type": "pump", "update_interval": 3600, "points": POINTS}
    },
    "devices": [
        {"id": "pump-1", "template": "pump", "device_id": 1},
        {"id": "pump-2", "template": "pump", "device_id": 2},
    ],
}


@dataclass
class ModbusRig:
    """A collector with its control service over two simulated pumps."""

    dsn: str
    collector: CollectorService
    simulator: ModbusFleetSimulator

    @property
    def control(self) -> ControlService:
        return self.collector.control

    def unit(self, device: str) -> UnitStore:
        return self.simulator.unit(device)

    @property
    def requests(self) -> int:
        """Modbus requests the collector has sent so far."""
        return sum(a.requests for a in self.collector.adapters if isinstance(a, ModbusAdapter))

    async def write(self, device: str, point: str, value: Any) -> ControlOp:
        return await self.control.execute(
            ControlRequest(device, point, Kind.WRITE, value, requested_by="api-key:test")
        )

    async def probe(self, device: str, point: str | None = None) -> ControlOp:
        return await self.control.execute(ControlRequest(device, point, Kind.PROBE))


def _bounded(devices: list[ModbusDevice]) -> list[ModbusDevice]:
    """Give speed_setpoint a register-map bound (max 3000 rpm), as an operator would."""
    out = []
    for device in devices:
        points = [
            p.model_copy(update={"max": 3000.0}) if p.key == "speed_setpoint" else p
            for p in device.points
        ]
        out.append(device.model_copy(update={"points": points, "poll_interval": 3600}))
    return out


async def modbus_rig(dsn: str, data_dir: Path, control: dict[str, Any]) -> AsyncIterator[ModbusRig]:
    """Serve two simulated pumps and run a collector over them until the caller is done."""
    fleet = FleetSimulator(parse_fleet(copy.deepcopy(FLEET), "<control test fleet>"))
    manifest = await fleet.start()
    try:
        config = parse_config(
            {
                "version": 1,
                "data_dir": str(data_dir),
                "store": {"dsn": dsn},
                "pipeline": {"batch_age": 0.1},
                "control": control,
            },
            "<test>",
            environ={},
        )
        devices = _bounded(modbus_devices(manifest.devices))
        async with CollectorService(config, devices) as collector:
            for device in ("pump-1", "pump-2"):
                await registered(dsn, device, len(POINTS))
            simulator = cast(ModbusFleetSimulator, fleet.simulators["modbus"])
            yield ModbusRig(dsn, collector, simulator)
    finally:
        await fleet.stop()
