"""Control operations on OPC UA devices, end to end: simulator → adapter → service → store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from adapters.base import Value
from adapters.opcua.adapter import OpcUaAdapters
from collector.config import parse_config
from collector.control.outcome import ControlOp, ControlRequest, Kind, Outcome
from collector.embedded.ports import free_port
from collector.service import CollectorService
from simulators.opcua.defaults import default_devices
from simulators.opcua.server import OpcUaSimulatorServer
from tests.adapters.opcua.opcuatest import source
from tests.collector.control.controltest import audit_entries, managed, ops, registered

pytestmark = [
    pytest.mark.integration,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(90),
]

ALLOWED = ["*/Setpoint", "*/SpeedLimit", "*/Mode"]  # press-01/Enabled is writable but not allowed
INITIAL: list[tuple[str, str, Value]] = [
    ("boiler-01", "Setpoint", 185.0),
    ("press-01", "SpeedLimit", 30),
    ("pump-01", "Mode", "auto"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sim() -> AsyncIterator[OpcUaSimulatorServer]:
    server = OpcUaSimulatorServer(default_devices(), port=free_port())
    await server.start()
    yield server
    await server.stop()


def key(sim: OpcUaSimulatorServer, device_id: str) -> str:
    return f"{sim.application_uri}/Objects/DeviceSet/{device_id}"


class Rig:
    """A collector over the simulated OPC UA server, with its control service."""

    def __init__(self, sim: OpcUaSimulatorServer, dsn: str, collector: CollectorService) -> None:
        self.sim = sim
        self.dsn = dsn
        self.collector = collector

    async def write(self, device: str, point: str, value: Any) -> ControlOp:
        return await self.collector.control.execute(
            ControlRequest(key(self.sim, device), point, Kind.WRITE, value, "api-key:test")
        )

    async def probe(self, device: str, point: str | None = None) -> ControlOp:
        return await self.collector.control.execute(
            ControlRequest(key(self.sim, device), point, Kind.PROBE)
        )


@pytest_asyncio.fixture(loop_scope="module")
async def rig(sim: OpcUaSimulatorServer, database_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    config = parse_config(
        {
            "version": 1,
            "data_dir": str(tmp_path),
            "store": {"dsn": database_url},
            "pipeline": {"batch_age": 0.1},
            "control": {"timeout": 0.5, "rate_limit": {"operations": 50}},
        },
        "<test>",
        environ={},
    )
    connection = source(sim.endpoint, control={"writable": ALLOWED})
    async with CollectorService(config, [connection]) as collector:
        for device, points in (("boiler-01", 5), ("press-01", 4), ("pump-01", 3)):
            await registered(database_url, key(sim, device), points)
        try:
            yield Rig(sim, database_url, collector)
        finally:  # the server is shared by the module: put back what the test changed
            sim.faults.clear()
            [adapters] = [a for a in collector.adapters if isinstance(a, OpcUaAdapters)]
            for server in adapters.adapters:  # a held-back answer may have cost the session
                assert await server.wait_ready(20), server.last_error
            for device, point, value in INITIAL:
                await adapters.write(key(sim, device), point, value)


async def test_verified_writes_and_probes_make_devices_managed(rig: Rig) -> None:
    op = await rig.write("boiler-01", "Setpoint", 190.5)
    assert op.outcome is Outcome.VERIFIED, op.detail
    assert (op.value_before, op.read_back, op.protocol) == (185.0, 190.5, "opcua")
    assert await rig.sim.read_value("boiler-01", "Setpoint") == 190.5
    assert await managed(rig.dsn) == (1, 1)

    probe = await rig.probe("press-01")
    assert probe.outcome is Outcome.VERIFIED, probe.detail
    assert probe.point == "SpeedLimit"  # Enabled is writable on the server but not allowed
    assert probe.value_before == probe.requested_value == probe.read_back == 30
    text = await rig.write("pump-01", "Mode", "manual")
    assert (text.outcome, text.read_back) == (Outcome.VERIFIED, "manual"), text.detail
    assert await managed(rig.dsn) == (3, 3)
    audited = [e for e in await audit_entries(rig.dsn) if e[1].startswith("control.")]
    assert [e[1] for e in audited] == ["control.write", "control.probe", "control.write"]


async def test_points_not_allowed_are_refused_before_anything_is_sent(rig: Rig) -> None:
    sent = rig.sim.faults.writes
    cases = {
        ("press-01", "Enabled", False): "not allowed by the configuration",
        ("boiler-01", "Temperature", 20.0): "not writable",
        ("boiler-01", "Setpoint", "hot"): "expected a number",
        ("press-01", "SpeedLimit", 40000): "outside the int16 range",
        ("press-01", "Nope", 1): "no registered point 'Nope'",
    }
    for (device, point, value), why in cases.items():
        op = await rig.write(device, point, value)
        assert op.outcome is Outcome.NOT_ALLOWED, op
        assert op.detail is not None and why in op.detail, op.detail
        assert op.value_before is None
    assert rig.sim.faults.writes == sent, "a refused write reached the server"
    assert await rig.sim.read_value("press-01", "Enabled") is True
    assert await managed(rig.dsn) == (0, 0)


async def test_rejected_mismatched_and_timed_out_writes_leave_devices_unmanaged(
    rig: Rig,
) -> None:
    rig.sim.faults.refuse_writes("boiler-01", "Setpoint")
    rejected = await rig.write("boiler-01", "Setpoint", 190.0)
    assert rejected.outcome is Outcome.REJECTED, rejected.detail
    assert rejected.detail is not None and "BadOutOfService" in rejected.detail
    assert await rig.sim.read_value("boiler-01", "Setpoint") == 185.0

    rig.sim.faults.clear()
    rig.sim.faults.misreport("press-01", "SpeedLimit")
    mismatch = await rig.probe("press-01", "SpeedLimit")
    assert mismatch.outcome is Outcome.MISMATCH, mismatch.detail
    assert (mismatch.requested_value, mismatch.read_back) == (30, 29)

    rig.sim.faults.clear()
    rig.sim.faults.delay("pump-01", "Mode", 1.0)  # control.timeout is 0.5 s
    timed_out = await rig.write("pump-01", "Mode", "manual")
    assert timed_out.outcome is Outcome.TIMEOUT, timed_out.detail
    assert timed_out.detail is not None and "effect is unknown" in timed_out.detail
    assert await managed(rig.dsn) == (0, 0)
    outcomes = sorted(o.outcome.value for o in await ops(rig.dsn))
    assert outcomes == ["mismatch", "rejected", "timeout"]
