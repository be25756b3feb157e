"""The Modbus simulator over loopback: exceptions, writes, identification, changing values."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from adapters.modbus.client import ModbusClient
from adapters.modbus.config import Table
from adapters.modbus.endpoint import Endpoint
from adapters.modbus.errors import ModbusExceptionResponse
from adapters.modbus.identity import identity_fields, is_simulated
from simulators.fleet import SIMULATED_VENDOR, Manifest, parse_fleet
from simulators.modbus.simulator import ModbusFleetSimulator
from simulators.runner import FleetSimulator

pytestmark = pytest.mark.integration


def fleet_spec(framing: str) -> dict[str, Any]:
    return {
        "version": 1,
        "name": "server-test",
        "protocols": {"modbus": {"servers": [{"name": "s", "framing": framing}]}},
        "devices": [
            {
                "id": f"meter-{unit}",
                "protocol": "modbus",
                "type": "power_meter",
                "server": "s",
                "device_id": unit,
                "update_interval": 0.05,
                "identity": {"product_code": f"PM-{unit}"},
                "points": [
                    {"key": "power", "table": "input", "address": 0, "data_type": "float32",
                     "signal": {"kind": "sawtooth", "base": 0, "amplitude": 1000, "period": 5}},
                    {"key": "energy", "table": "input", "address": 2, "data_type": "uint32",
                     "signal": {"kind": "counter", "step": 1, "period": 0.05}},
                    {"key": "limit", "address": 0, "data_type": "uint16", "writable": True,
                     "signal": {"value": 500}},
                    {"key": "serial", "address": 1, "data_type": "uint16",
                     "signal": {"value": unit}},
                    {"key": "relay", "table": "coil", "address": 4, "data_type": "bool",
                     "writable": True, "signal": {"value": False}},
                ],
            }
            for unit in (1, 2)
        ],
    }  # fmt: skip


@pytest.fixture(params=["tcp", "rtu+tcp"])
async def served(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[ModbusFleetSimulator, ModbusClient]]:
    simulator = FleetSimulator(parse_fleet(fleet_spec(request.param), "<test>"))
    manifest: Manifest = await simulator.start()
    client = ModbusClient(Endpoint.parse(manifest.devices[0].endpoint), timeout=2.0)
    await client.connect()
    try:
        yield cast(ModbusFleetSimulator, simulator.simulators["modbus"]), client
    finally:
        client.close()
        await simulator.stop()


async def test_several_units_on_one_server(
    served: tuple[ModbusFleetSimulator, ModbusClient],
) -> None:
    _, client = served
    assert await client.read(1, Table.HOLDING, 1, 1) == [1]
    assert await client.read(2, Table.HOLDING, 1, 1) == [2]


async def test_unmapped_addresses_and_unknown_units_are_exceptions(
    served: tuple[ModbusFleetSimulator, ModbusClient],
) -> None:
    _, client = served
    with pytest.raises(ModbusExceptionResponse) as unmapped:
        await client.read(1, Table.HOLDING, 0, 3)  # address 2 is not mapped
    assert unmapped.value.code == 2
    with pytest.raises(ModbusExceptionResponse) as coil:
        await client.read(1, Table.COIL, 0, 1)
    assert coil.value.code == 2
    with pytest.raises(ModbusExceptionResponse) as unknown:
        await client.read(9, Table.HOLDING, 0, 1)
    assert unknown.value.code == 0x0B
    assert unknown.value.device_unreachable
    assert await client.read(1, Table.HOLDING, 0, 2) == [500, 1]  # the connection is fine


async def test_writable_registers_and_coils_read_back(
    served: tuple[ModbusFleetSimulator, ModbusClient],
) -> None:
    simulator, client = served
    await client.write_registers(1, 0, [777])
    await client.write_coil(1, 4, True)
    assert await client.read(1, Table.HOLDING, 0, 1) == [777]
    assert await client.read(1, Table.COIL, 4, 1) == [True]
    assert simulator.unit("meter-1").value("limit") == 777
    assert await client.read(2, Table.HOLDING, 0, 1) == [500]
    await asyncio.sleep(0.2)  # several value updates later, the written values stay
    assert await client.read(1, Table.HOLDING, 0, 1) == [777]
    with pytest.raises(ModbusExceptionResponse) as refused:
        await client.write_registers(1, 1, [5])  # 'serial' is not writable
    assert refused.value.code == 2
    assert await client.read(1, Table.HOLDING, 1, 1) == [1]


async def test_identifies_itself_as_simulated(
    served: tuple[ModbusFleetSimulator, ModbusClient],
) -> None:
    _, client = served
    identity = identity_fields(await client.identify(2))
    assert identity["vendor"] == SIMULATED_VENDOR
    assert identity["product_code"] == "PM-2"
    assert identity["model"] == "power_meter"
    assert is_simulated(identity)
    with pytest.raises(ModbusExceptionResponse):
        await client.identify(7)


async def test_values_change_over_time(served: tuple[ModbusFleetSimulator, ModbusClient]) -> None:
    _, client = served
    first = await client.read(1, Table.INPUT, 0, 4)
    deadline = asyncio.get_running_loop().time() + 5
    while await client.read(1, Table.INPUT, 0, 4) == first:
        assert asyncio.get_running_loop().time() < deadline, "values never changed"
        await asyncio.sleep(0.05)
