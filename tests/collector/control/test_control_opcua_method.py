"""OPC UA method calls as verified control operations: simulator → adapter → service → store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from adapters.base import Value
from adapters.opcua.adapter import OpcUaAdapters
from api.app import create_app
from api.auth import Role
from api.settings import Settings
from collector.config import parse_config
from collector.control.outcome import ControlOp, ControlRequest, Kind, Outcome
from collector.embedded.ports import free_port
from collector.service import CollectorService
from simulators.opcua.defaults import default_devices
from simulators.opcua.server import OpcUaSimulatorServer
from tests.adapters.opcua.opcuatest import source
from tests.api.apitest import bearer, role_keys, running
from tests.collector.control.controltest import audit_entries, managed, ops, registered

pytestmark = [
    pytest.mark.integration,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(90),
]

ALLOWED = ["*/Setpoint", "*/SpeedLimit", "*/Mode"]
INITIAL: list[tuple[str, str, Value]] = [
    ("boiler-01", "Setpoint", 185.0),
    ("press-01", "SpeedLimit", 30),
    ("pump-01", "Mode", "auto"),
]


def method(key: str, device: str, args: list[Any], equals: Value, **more: Any) -> dict[str, Any]:
    """Return a control.methods entry calling the simulator's SetValue(point, value)."""
    return {
        "key": key,
        "device": device,
        "method": "SetValue",
        "arguments": args,
        "verify": {"point": args[0], "equals": equals},
        **more,
    }


METHODS = [
    method("set-setpoint", "boiler-01", ["Setpoint", 175.5], 175.5),
    method("claims-999", "boiler-01", ["Setpoint", 170.0], 999.0),
    method("set-speed", "press-01", ["SpeedLimit", 25], 25),
    method("set-mode", "pump-01", ["Mode", "manual"], "manual", object="Objects/DeviceSet/pump-01"),
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

    async def call(self, device: str, method: str) -> ControlOp:
        return await self.collector.control.execute(
            ControlRequest(
                key(self.sim, device), None, Kind.METHOD, requested_by="api-key:test", method=method
            )
        )


@pytest_asyncio.fixture(loop_scope="module")
async def rig(sim: OpcUaSimulatorServer, database_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    config = parse_config(
        {
            "version": 1,
            "data_dir": str(tmp_path),
            "store": {"dsn": database_url},
            "pipeline": {"batch_age": 0.1},
            "control": {"timeout": 2.0, "rate_limit": {"operations": 50}},
        },
        "<test>",
        environ={},
    )
    connection = source(sim.endpoint, control={"writable": ALLOWED, "methods": METHODS})
    async with CollectorService(config, [connection]) as collector:
        for device, points in (("boiler-01", 5), ("press-01", 4), ("pump-01", 3)):
            await registered(database_url, key(sim, device), points)
        try:
            yield Rig(sim, database_url, collector)
        finally:  # the server is shared by the module: put back what the test changed
            sim.faults.clear()
            [adapters] = [a for a in collector.adapters if isinstance(a, OpcUaAdapters)]
            for device, point, value in INITIAL:
                await adapters.write(key(sim, device), point, value)


async def test_a_verified_method_call_makes_the_device_managed(rig: Rig) -> None:
    op = await rig.call("boiler-01", "set-setpoint")
    assert op.outcome is Outcome.VERIFIED, op.detail
    assert (op.kind, op.point, op.read_back, op.protocol) == (
        Kind.METHOD,
        "Setpoint",
        175.5,
        "opcua",
    )
    assert op.requested_value == {"method": "set-setpoint", "arguments": ["Setpoint", 175.5]}
    assert await rig.sim.read_value("boiler-01", "Setpoint") == 175.5
    absolute = await rig.call("pump-01", "set-mode")  # object given from Objects
    assert (absolute.outcome, absolute.read_back) == (Outcome.VERIFIED, "manual"), absolute.detail
    assert await managed(rig.dsn) == (2, 2)
    audited = [e for e in await audit_entries(rig.dsn) if e[1].startswith("control.")]
    assert [e[1] for e in audited] == ["control.method", "control.method"]
    assert audited[0][3]["requested_value"]["method"] == "set-setpoint"


async def test_refused_mismatched_and_unconfigured_calls_leave_devices_unmanaged(
    rig: Rig,
) -> None:
    calls = rig.sim.faults.calls
    for device, name in (("boiler-01", "nope"), ("press-01", "set-setpoint")):
        refused = await rig.call(device, name)
        assert refused.outcome is Outcome.NOT_ALLOWED, refused
        assert refused.detail is not None and f"no configured method {name!r}" in refused.detail
    assert rig.sim.faults.calls == calls, "a call that is not configured reached the server"

    rig.sim.faults.refuse_calls("press-01")
    rejected = await rig.call("press-01", "set-speed")
    assert rejected.outcome is Outcome.REJECTED, rejected.detail
    assert rejected.detail is not None and "BadOutOfService" in rejected.detail
    assert rig.sim.faults.calls == calls + 1
    assert await rig.sim.read_value("press-01", "SpeedLimit") == 30

    mismatch = await rig.call("boiler-01", "claims-999")
    assert mismatch.outcome is Outcome.MISMATCH, mismatch.detail
    assert mismatch.read_back == 170.0
    assert await managed(rig.dsn) == (0, 0)
    outcomes = sorted(o.outcome.value for o in await ops(rig.dsn, kind="method"))
    assert outcomes == ["mismatch", "not_allowed", "not_allowed", "rejected"]


async def test_the_api_calls_methods_and_refuses_ambiguous_commands(rig: Rig) -> None:
    keys = await role_keys(rig.dsn)
    settings = Settings(dsn=rig.dsn, pool_min_size=1, pool_max_size=2)
    target = await rig.collector.control.find_device(key=key(rig.sim, "boiler-01"))
    url = f"/v1/devices/{target.id}/commands"
    headers = bearer(keys[Role.OPERATOR])
    async with running(create_app(settings, control=rig.collector.control)) as client:
        for body in (
            {"method": "set-setpoint", "point": "Setpoint"},
            {"method": "set-setpoint", "value": 1},
            {"method": "set-setpoint", "probe": True},
            {"method": ""},
        ):
            response = await client.post(url, json=body, headers=headers)
            assert response.status_code == 422, (body, response.text)
        assert await ops(rig.dsn) == []
        response = await client.post(url, json={"method": "set-setpoint"}, headers=headers)
        assert response.status_code == 200, response.text
        op = response.json()
        assert (op["kind"], op["outcome"], op["point"], op["read_back"]) == (
            "method",
            "verified",
            "Setpoint",
            175.5,
        )
