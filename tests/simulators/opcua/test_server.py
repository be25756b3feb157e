"""The OPC UA simulator seen through a plain asyncua client over loopback."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from asyncua import Client, ua
from asyncua.ua.uaerrors import BadTooManySubscriptions

from collector.embedded.ports import free_port
from simulators.fleet import SIMULATED_VENDOR
from simulators.opcua.defaults import default_devices
from simulators.opcua.server import DI_NAMESPACE, OpcUaSimulatorServer

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sim() -> AsyncIterator[OpcUaSimulatorServer]:
    server = OpcUaSimulatorServer(default_devices(), port=free_port(), nodeid_offset=3)
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def client(sim: OpcUaSimulatorServer) -> AsyncIterator[Any]:
    async with Client(sim.endpoint, timeout=5) as connected:
        yield connected


async def _device(client: Any, name: str) -> Any:
    return await client.nodes.objects.get_child(["DeviceSet", name])


async def test_devices_carry_di_identification(client: Any) -> None:
    di = await client.get_namespace_index(DI_NAMESPACE)
    boiler = await _device(client, "boiler-01")
    manufacturer = await (await boiler.get_child(f"{di}:Manufacturer")).read_value()
    assert manufacturer.Text == SIMULATED_VENDOR
    assert await (await boiler.get_child(f"{di}:SerialNumber")).read_value() == "SIM-boiler-01"
    assert await (await boiler.get_child(f"{di}:DeviceClass")).read_value() == "boiler"
    assert (await boiler.read_display_name()).Text == "Steam boiler 1"


async def test_read_only_values_change_and_writable_ones_read_back(client: Any) -> None:
    boiler = await _device(client, "boiler-01")
    temperature = await boiler.get_child("Temperature")
    first = await temperature.read_value()
    await asyncio.sleep(1.2)
    assert await temperature.read_value() != first
    setpoint = await boiler.get_child("Setpoint")
    assert await setpoint.read_value() == 185.0
    await setpoint.write_value(ua.DataValue(ua.Variant(172.5, ua.VariantType.Double)))
    await asyncio.sleep(1.2)  # two update periods: the simulator leaves it alone
    assert await setpoint.read_value() == 172.5
    await setpoint.write_value(ua.DataValue(ua.Variant(185.0, ua.VariantType.Double)))
    with pytest.raises(ua.UaStatusCodeError):
        await temperature.write_value(ua.DataValue(ua.Variant(1.0, ua.VariantType.Double)))


async def test_nested_points_and_engineering_units(client: Any) -> None:
    boiler = await _device(client, "boiler-01")
    flame = await boiler.get_child(["Burner", "FlameOn"])
    assert isinstance(await flame.read_value(), bool)
    unit = await (await boiler.get_child(["Pressure", "EngineeringUnits"])).read_value()
    assert unit.DisplayName.Text == "bar"
    stroke = await (await _device(client, "press-01")).get_child("StrokeCount")
    assert await stroke.read_data_type_as_variant_type() == ua.VariantType.UInt32


async def test_nodeid_offset_moves_every_node_id(sim: OpcUaSimulatorServer) -> None:
    other = OpcUaSimulatorServer(default_devices(), port=free_port(), nodeid_offset=4)
    await other.start()
    try:
        for device in default_devices():
            assert other.browse_path(device.id) == sim.browse_path(device.id)
            for point in device.points:
                assert other.node_id(device.id, point.key) != sim.node_id(device.id, point.key)
    finally:
        await other.stop()


async def test_subscriptions_can_be_refused(tmp_path: Path) -> None:
    server = OpcUaSimulatorServer(default_devices(), port=free_port(), subscriptions=False)
    await server.start()
    try:
        async with Client(server.endpoint, timeout=5) as connected:
            with pytest.raises(BadTooManySubscriptions):
                await connected.create_subscription(100, None)
    finally:
        await server.stop()


async def test_a_point_can_be_given_a_bad_status_that_survives_updates(
    sim: OpcUaSimulatorServer, client: Any
) -> None:
    force = await (await _device(client, "press-01")).get_child("Force")
    await sim.set_status("press-01", "Force", "BadSensorFailure")
    try:
        first = await force.read_data_value(raise_on_bad_status=False)
        await asyncio.sleep(1.2)  # two update periods: updated, same status
        later = await force.read_data_value(raise_on_bad_status=False)
        for data in (first, later):
            assert data.StatusCode.value == ua.StatusCodes.BadSensorFailure
        assert later.SourceTimestamp > first.SourceTimestamp
    finally:
        await sim.set_status("press-01", "Force", ua.StatusCodes.Good)
    assert (await force.read_data_value()).StatusCode.is_good()


async def test_a_removed_point_is_gone_from_the_address_space(tmp_path: Path) -> None:
    server = OpcUaSimulatorServer(default_devices(), port=free_port())
    await server.start()
    try:
        async with Client(server.endpoint, timeout=5) as connected:
            pump = await _device(connected, "pump-01")
            assert await (await pump.get_child("FlowRate")).read_value() > 0
            await server.remove_point("pump-01", "FlowRate")
            with pytest.raises(ua.UaStatusCodeError):
                await pump.get_child("FlowRate")
            assert await (await pump.get_child("State")).read_value() == "running"
    finally:
        await server.stop()
