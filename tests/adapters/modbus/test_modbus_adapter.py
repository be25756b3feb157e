"""The Modbus adapter against the bundled simulator over loopback (TCP and RTU over TCP)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, cast

import pytest

from adapters.base import DeviceEvent, DeviceEventKind, Quality, Record, Sample
from adapters.modbus.adapter import ModbusAdapter
from adapters.modbus.config import ModbusDevice, ModbusPoint
from adapters.modbus.errors import (
    DeviceUnavailableError,
    PointNotWritableError,
    UnknownDeviceError,
    UnknownPointError,
    ValueNotAllowedError,
)
from simulators.fleet import Manifest, parse_fleet
from simulators.modbus.plugin import modbus_devices
from simulators.modbus.simulator import ModbusFleetSimulator
from simulators.runner import FleetSimulator

pytestmark = pytest.mark.integration

WAIT = 10.0  # upper bound of every wait; the happy path takes well under a second

POINTS: list[dict[str, Any]] = [
    {"key": "h_int16", "address": 0, "data_type": "int16", "signal": {"value": -1234}},
    {"key": "h_uint16", "address": 1, "data_type": "uint16", "writable": True,
     "signal": {"value": 1234}},
    {"key": "h_int32", "address": 2, "data_type": "int32", "word_order": "little",
     "signal": {"value": -123456}},
    {"key": "h_uint32", "address": 4, "data_type": "uint32", "byte_order": "little",
     "signal": {"value": 3_000_000_000}},
    {"key": "h_int64", "address": 6, "data_type": "int64", "signal": {"kind": "counter",
     "base": -5_000_000_000_000, "step": 1, "period": 1}},
    {"key": "h_uint64", "address": 10, "data_type": "uint64", "byte_order": "little",
     "word_order": "little", "signal": {"value": 12_345_678_901_234}},
    {"key": "h_float32", "address": 14, "data_type": "float32", "writable": True, "unit": "°C",
     "signal": {"kind": "sine", "base": 20, "amplitude": 5, "period": 60, "phase": 0.1}},
    {"key": "h_float64", "address": 16, "data_type": "float64", "word_order": "little",
     "signal": {"value": 3.141592653589793}},
    {"key": "h_string", "address": 20, "data_type": "string", "length": 5,
     "signal": {"value": "RIG-01"}},
    # Four unmapped registers (25..28) lie between h_string and h_bool: the planner spans
    # them, the simulator refuses, and the adapter splits the request.
    {"key": "h_bool", "address": 29, "data_type": "bool", "signal": {"value": True}},
    {"key": "i_scaled", "table": "input", "address": 0, "data_type": "int16", "scale": 0.1,
     "offset": -40, "unit": "°C", "signal": {"kind": "sine", "base": 25, "amplitude": 10}},
    {"key": "i_float", "table": "input", "address": 1, "data_type": "float32",
     "byte_order": "little", "signal": {"value": -0.5}},
    {"key": "coil_run", "table": "coil", "address": 0, "data_type": "bool", "writable": True,
     "signal": {"value": True}},
    {"key": "di_alarm", "table": "discrete_input", "address": 3, "data_type": "bool",
     "signal": {"kind": "square", "period": 60}},
]  # fmt: skip

FLEET: dict[str, Any] = {
    "version": 1,
    "name": "adapter-test",
    "seed": 3,
    "protocols": {
        "modbus": {"servers": [{"name": "tcp-a"}, {"name": "rtu-b", "framing": "rtu+tcp"}]}
    },
    "templates": {
        "rig": {
            "protocol": "modbus",
            "type": "test_rig",
            "industry": "C26",
            "region": "360100",
            "update_interval": 3600,  # values stay put while a test compares them
            "identity": {"product_code": "RIG-9", "model": "Rig Mk II"},
            "points": POINTS,
        }
    },
    "devices": [
        {"id": "rig-1", "template": "rig", "server": "tcp-a", "device_id": 1},
        {"id": "rig-2", "template": "rig", "server": "tcp-a", "device_id": 2},
        {"id": "rig-3", "template": "rig", "server": "rtu-b", "device_id": 1},
        {
            "id": "rig-4",
            "template": "rig",
            "server": "rtu-b",
            "device_id": 9,
            "identification": "refuse",
        },
    ],
}


class MemorySink:
    """Keeps every record; lets a test wait for a condition on what arrived."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self._arrived = asyncio.Event()

    async def put(self, record: Record) -> None:
        self.records.append(record)
        self._arrived.set()

    async def put_many(self, records: Sequence[Record]) -> None:
        self.records.extend(records)
        self._arrived.set()

    def events(self, kind: DeviceEventKind, device: str | None = None) -> list[DeviceEvent]:
        return [
            r
            for r in self.records
            if isinstance(r, DeviceEvent)
            and r.kind is kind
            and (device is None or r.device == device)
        ]

    def samples(self, device: str | None = None, point: str | None = None) -> list[Sample]:
        return [
            r
            for r in self.records
            if isinstance(r, Sample)
            and (device is None or r.device == device)
            and (point is None or r.point == point)
        ]

    async def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = asyncio.get_running_loop().time() + WAIT
        while not condition():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"timed out after {WAIT} s waiting for {what}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout=min(remaining, 0.2))


@pytest.fixture
async def fleet() -> AsyncIterator[tuple[ModbusFleetSimulator, Manifest]]:
    simulator = FleetSimulator(parse_fleet(copy.deepcopy(FLEET), "<test fleet>"))
    manifest = await simulator.start()
    try:
        yield cast(ModbusFleetSimulator, simulator.simulators["modbus"]), manifest
    finally:
        await simulator.stop()


def configs(manifest: Manifest, poll_interval: float = 0.1) -> list[ModbusDevice]:
    return [
        d.model_copy(update={"poll_interval": poll_interval})
        for d in modbus_devices(manifest.devices)
    ]


@contextlib.asynccontextmanager
async def running(adapter: ModbusAdapter) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(adapter.run())
    try:
        yield task
    finally:
        await adapter.stop()
        await asyncio.wait_for(task, timeout=WAIT)


def every_point_sampled(sink: MemorySink, manifest: Manifest) -> Callable[[], bool]:
    wanted = {(d.id, p.key) for d in manifest.devices for p in d.points}
    return lambda: wanted <= {(s.device, s.point) for s in sink.samples()}


async def test_registers_the_manifest_devices_and_emits_the_served_values(
    fleet: tuple[ModbusFleetSimulator, Manifest],
) -> None:
    simulator, manifest = fleet
    sink = MemorySink()
    adapter = ModbusAdapter(configs(manifest), sink)
    async with running(adapter):
        await sink.wait_for(every_point_sampled(sink, manifest), "a sample of every point")

    registered = {e.device: e.info for e in sink.events(DeviceEventKind.REGISTERED)}
    assert sorted(registered) == sorted(d.id for d in manifest.devices)
    assert len(sink.events(DeviceEventKind.REGISTERED)) == len(manifest.devices)
    for device in manifest.devices:
        info = registered[device.id]
        assert info is not None
        assert info.protocol == "modbus"
        assert info.device_type == device.type == "test_rig"
        assert info.industry == device.industry
        if device.id == "rig-4":  # answers 43/14 with exception 1: registered, no identity
            assert (dict(info.identity), info.simulated) == ({}, False)
        else:
            assert info.simulated is True
            assert {k: info.identity[k] for k in ("vendor", "product_code", "model")} == {
                k: device.identity[k] for k in ("vendor", "product_code", "model")
            }
            assert info.identity["product_code"] == "RIG-9"
        assert [(p.key, p.address, p.data_type, p.unit, p.writable) for p in info.points] == [
            (p.key, p.address, p.data_type, p.unit, p.writable) for p in device.points
        ]
        assert len(sink.events(DeviceEventKind.ONLINE, device.id)) == 1
        unit = simulator.unit(device.id)
        for point in device.points:
            first = sink.samples(device.id, point.key)[0]
            assert first.quality is Quality.GOOD, (device.id, point.key)
            expected = unit.value(point.key)
            if isinstance(expected, float):
                assert first.value == pytest.approx(expected, rel=1e-6), (device.id, point.key)
            else:
                assert first.value == expected, (device.id, point.key)
    assert sink.samples("rig-3", "h_string")[0].value == "RIG-01"
    assert sink.samples("rig-1", "h_int64")[0].value == -5_000_000_000_000
    assert all(s.quality is Quality.GOOD for s in sink.samples())


async def test_rtu_framing_over_tcp(fleet: tuple[ModbusFleetSimulator, Manifest]) -> None:
    _, manifest = fleet
    rtu = [d for d in configs(manifest) if d.endpoint.startswith("rtu+tcp://")]
    assert [d.id for d in rtu] == ["rig-3", "rig-4"]
    sink = MemorySink()
    async with running(ModbusAdapter(rtu, sink)):
        await sink.wait_for(lambda: len(sink.samples("rig-4", "h_uint64")) >= 2, "two polls")
    assert sink.samples("rig-4", "h_uint64")[0].value == 12_345_678_901_234
    assert sink.samples("rig-4", "coil_run")[0].value is True
    assert sink.events(DeviceEventKind.REGISTERED, "rig-4")[0].info is not None


async def test_serial_rtu_client_through_a_pyserial_socket_url(
    fleet: tuple[ModbusFleetSimulator, Manifest],
) -> None:
    _, manifest = fleet
    device = next(d for d in configs(manifest) if d.id == "rig-3")
    port = device.endpoint.rsplit(":", 1)[1]
    serial = device.model_copy(update={"endpoint": f"rtu://socket://127.0.0.1:{port}"})
    sink = MemorySink()
    async with running(ModbusAdapter([serial], sink)):
        await sink.wait_for(lambda: bool(sink.samples("rig-3", "h_float64")), "a serial sample")
    assert sink.samples("rig-3", "h_float64")[0].value == pytest.approx(3.141592653589793)


async def test_an_unmapped_register_gives_bad_samples_and_the_other_points_stay_good(
    fleet: tuple[ModbusFleetSimulator, Manifest],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, manifest = fleet
    devices = configs(manifest)
    rig1 = devices[0]
    extra = [
        ModbusPoint(key="ghost_near", address=26, data_type="uint16"),  # inside a merged read
        ModbusPoint(key="ghost_far", table="input", address=500, data_type="float32"),
    ]
    devices[0] = rig1.model_copy(update={"points": [*rig1.points, *extra]})
    sink = MemorySink()
    caplog.set_level(logging.WARNING, logger="tally.adapters.modbus")
    async with running(ModbusAdapter(devices, sink)):
        await sink.wait_for(
            lambda: len(sink.samples("rig-1", "ghost_near")) >= 3, "three polls of rig-1"
        )
        await sink.wait_for(every_point_sampled(sink, manifest), "samples of every other point")
    for key in ("ghost_near", "ghost_far"):
        assert {s.quality for s in sink.samples("rig-1", key)} == {Quality.BAD}
        assert {s.value for s in sink.samples("rig-1", key)} == {None}
    good = [s for s in sink.samples() if s.point not in {"ghost_near", "ghost_far"}]
    assert good
    assert all(s.quality is Quality.GOOD for s in good)
    warnings = [r.getMessage() for r in caplog.records if "ghost_near" in r.getMessage()]
    assert len(warnings) == 1, "a bad point is logged once, not on every poll"
    assert "illegal data address" in warnings[0]
    assert not sink.events(DeviceEventKind.OFFLINE)


async def test_a_unit_that_does_not_answer_does_not_stop_the_others(
    fleet: tuple[ModbusFleetSimulator, Manifest],
) -> None:
    _, manifest = fleet
    devices = configs(manifest)
    missing = devices[0].model_copy(update={"id": "rig-missing", "device_id": 42})
    sink = MemorySink()
    async with running(ModbusAdapter([*devices, missing], sink)):
        await sink.wait_for(
            lambda: all(len(sink.samples(d.id, "h_uint16")) >= 3 for d in devices),
            "three polls of every served device",
        )
    assert not sink.samples("rig-missing")
    assert not sink.events(DeviceEventKind.REGISTERED, "rig-missing")
    assert len(sink.events(DeviceEventKind.REGISTERED)) == len(devices)


async def test_a_stopped_server_goes_offline_and_comes_back_online(
    fleet: tuple[ModbusFleetSimulator, Manifest],
    caplog: pytest.LogCaptureFixture,
) -> None:
    simulator, manifest = fleet
    sink = MemorySink()
    adapter = ModbusAdapter(configs(manifest), sink, reconnect_initial=0.05, reconnect_max=0.2)
    server = simulator.server_of("rig-1")
    on_server = {"rig-1", "rig-2"}
    caplog.set_level(logging.INFO, logger="tally.adapters.modbus")
    async with running(adapter):
        await sink.wait_for(every_point_sampled(sink, manifest), "every point once")
        await server.stop()
        await sink.wait_for(
            lambda: {e.device for e in sink.events(DeviceEventKind.OFFLINE)} == on_server,
            "OFFLINE of the stopped server's devices",
        )
        await asyncio.sleep(0.5)  # several reconnect attempts fail meanwhile
        before = len(sink.samples("rig-1"))
        await server.start()
        await sink.wait_for(
            lambda: all(len(sink.events(DeviceEventKind.ONLINE, d)) == 2 for d in on_server),
            "ONLINE again after the restart",
        )
        await sink.wait_for(lambda: len(sink.samples("rig-1")) > before, "samples again")
        await sink.wait_for(
            lambda: len(sink.samples("rig-3", "h_uint16")) >= 3, "the other server still polled"
        )
    for device in on_server:
        kinds = [e.kind for e in sink.records if isinstance(e, DeviceEvent) and e.device == device]
        assert kinds == [
            DeviceEventKind.REGISTERED,
            DeviceEventKind.ONLINE,
            DeviceEventKind.OFFLINE,
            DeviceEventKind.ONLINE,
        ]
        assert len(sink.events(DeviceEventKind.REGISTERED, device)) == 1
    assert not sink.events(DeviceEventKind.OFFLINE, "rig-3")
    gone = [r for r in caplog.records if "rig-1 is unavailable" in r.getMessage()]
    back = [r for r in caplog.records if "rig-1 is available again" in r.getMessage()]
    assert len(gone) == 1
    assert len(back) == 1


async def test_writes_to_holding_registers_and_coils_read_back(
    fleet: tuple[ModbusFleetSimulator, Manifest],
) -> None:
    simulator, manifest = fleet
    adapter = ModbusAdapter(configs(manifest, poll_interval=5), MemorySink())
    async with adapter:
        await adapter.write("rig-1", "h_float32", 42.25)
        assert (await adapter.read("rig-1", "h_float32")).value == 42.25
        await adapter.write("rig-1", "h_uint16", 65535)
        assert (await adapter.read("rig-1", "h_uint16")).value == 65535
        await adapter.write("rig-3", "coil_run", False)  # over RTU framing
        sample = await adapter.read("rig-3", "coil_run")
        assert sample.value is False
        assert sample.quality is Quality.GOOD
    assert simulator.unit("rig-1").value("h_float32") == 42.25
    assert simulator.unit("rig-3").value("coil_run") is False
    assert simulator.unit("rig-2").value("h_uint16") == 1234  # another unit is untouched


async def test_refused_writes_send_nothing(fleet: tuple[ModbusFleetSimulator, Manifest]) -> None:
    simulator, manifest = fleet
    adapter = ModbusAdapter(configs(manifest, poll_interval=5), MemorySink())
    unit = simulator.unit("rig-1")
    with pytest.raises(DeviceUnavailableError, match="not running"):
        await adapter.read("rig-1", "h_uint16")
    async with adapter:
        await adapter.read("rig-1", "h_uint16")  # connected
        sent, writes = adapter.requests, unit.writes
        with pytest.raises(PointNotWritableError, match=r"'rig-1' point 'h_int16'.*not writable"):
            await adapter.write("rig-1", "h_int16", 5)
        with pytest.raises(PointNotWritableError):
            await adapter.write("rig-1", "di_alarm", True)
        with pytest.raises(ValueNotAllowedError, match=r"outside 0\.\.65535"):
            await adapter.write("rig-1", "h_uint16", 70000)
        with pytest.raises(UnknownPointError, match="no point 'nope'"):
            await adapter.write("rig-1", "nope", 1)
        with pytest.raises(UnknownDeviceError, match="no enabled modbus device 'rig-99'"):
            await adapter.write("rig-99", "h_uint16", 1)
        assert adapter.requests == sent
        assert unit.writes == writes
    assert unit.value("h_int16") == -1234


async def test_lifecycle_nothing_before_start_nothing_left_after_stop(
    fleet: tuple[ModbusFleetSimulator, Manifest],
) -> None:
    simulator, manifest = fleet
    sink = MemorySink()
    adapter = ModbusAdapter(configs(manifest), sink)
    await asyncio.sleep(0.3)
    assert adapter.requests == 0
    assert not sink.records
    assert all(unit.reads == 0 for unit in simulator.units.values())
    task = asyncio.create_task(adapter.run())
    await sink.wait_for(every_point_sampled(sink, manifest), "every point once")
    await adapter.stop()
    await asyncio.wait_for(task, timeout=WAIT)  # run() returns on stop
    assert task.exception() is None
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("modbus ")]
    assert all(not s.client.connected for s in adapter.sessions)
    reads = sum(unit.reads for unit in simulator.units.values())
    await asyncio.sleep(0.3)
    assert sum(unit.reads for unit in simulator.units.values()) == reads
    # and it can run again
    async with adapter:
        await sink.wait_for(
            lambda: sum(u.reads for u in simulator.units.values()) > reads, "polls after restart"
        )
