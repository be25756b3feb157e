"""The adapter against the bundled simulator over loopback: discovery, data, writes, vanishing."""

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from adapters.base import DeviceEventKind, Quality, utcnow
from adapters.opcua.adapter import OpcUaAdapter
from adapters.opcua.client import ConnectError, OpcUaClient
from adapters.opcua.config import DataMode
from adapters.opcua.errors import PointNotWritable, UnknownDevice, UnknownPoint, WriteError
from adapters.opcua.pki import TrustStore, ensure_client_certificate
from collector.embedded.ports import free_port
from simulators.fleet import SIMULATED_VENDOR
from simulators.opcua.defaults import default_devices
from simulators.opcua.models import OpcUaFleetDevice
from simulators.opcua.server import OpcUaSimulatorServer
from tests.adapters.opcua.opcuatest import RecordingObserver, RecordingSink, eventually, source

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

SPECS = {d.id: d for d in default_devices()}


def key(sim: OpcUaSimulatorServer, device_id: str) -> str:
    return f"{sim.application_uri}/Objects/DeviceSet/{device_id}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sim() -> AsyncIterator[OpcUaSimulatorServer]:
    server = OpcUaSimulatorServer(default_devices(), port=free_port())
    await server.start()
    yield server
    await server.stop()


async def _started(adapter: OpcUaAdapter) -> OpcUaAdapter:
    await adapter.start()
    assert await adapter.wait_ready(20), adapter.last_error
    return adapter


async def test_discovery_registers_exactly_the_served_devices_and_points(
    sim: OpcUaSimulatorServer, tmp_path: Path
) -> None:
    sink = RecordingSink()
    async with OpcUaAdapter(source(sim.endpoint), sink, data_dir=tmp_path) as adapter:
        await _started(adapter)
        registered = {e.device: e.info for e in sink.events(DeviceEventKind.REGISTERED)}
        assert sorted(registered) == sorted(key(sim, d) for d in SPECS)
        for device_id, spec in SPECS.items():
            info = registered[key(sim, device_id)]
            assert info is not None
            assert info.protocol == "opcua"
            assert info.endpoint == sim.endpoint
            assert info.simulated
            assert info.device_type == spec.type
            assert info.name == spec.name
            assert info.identity["manufacturer"] == SIMULATED_VENDOR
            assert info.identity["serial"] == f"SIM-{device_id}"
            assert info.identity["application_uri"] == sim.application_uri
            served = sorted((p.key, p.data_type, p.writable, p.unit) for p in spec.points)
            found = sorted((p.key, p.data_type, p.writable, p.unit) for p in info.points)
            assert found == served
        online = {e.device for e in sink.events(DeviceEventKind.ONLINE)}
        assert online == set(registered)
        assert set(adapter.devices) == set(registered)
    offline = {e.device for e in sink.events(DeviceEventKind.OFFLINE)}
    assert offline == set(registered)


async def test_subscription_samples_carry_values_quality_and_source_time(
    sim: OpcUaSimulatorServer, tmp_path: Path
) -> None:
    sink = RecordingSink()
    started = utcnow()
    async with OpcUaAdapter(source(sim.endpoint), sink, data_dir=tmp_path) as adapter:
        await _started(adapter)
        assert adapter.data_mode is DataMode.SUBSCRIBE
        expected = {(key(sim, d), p.key) for d, s in SPECS.items() for p in s.points}
        await eventually(
            lambda: expected <= {(s.device, s.point) for s in sink.samples()},
            10,
            "a sample of every point",
        )
        press = key(sim, "press-01")
        await eventually(
            lambda: len({s.value for s in sink.samples() if s.point == "StrokeCount"}) >= 3,
            10,
            "the stroke counter to advance",
        )
    samples = sink.samples()
    assert all(s.quality is Quality.GOOD and s.live for s in samples)
    strokes = [s.value for s in samples if (s.device, s.point) == (press, "StrokeCount")]
    counts = [v for v in strokes if isinstance(v, int)]
    assert counts == strokes
    assert counts == sorted(counts)
    temperatures = [s.value for s in samples if s.point == "Temperature"]
    assert all(isinstance(t, float) and 165 <= t <= 195 for t in temperatures)
    [mode] = [s for s in samples if (s.device, s.point) == (key(sim, "pump-01"), "Mode")]
    assert mode.value == "auto"
    # The value was set when the server built its address space: the sample carries
    # that source timestamp, not the time it was received.
    assert mode.ts < started
    assert [s.value for s in samples if s.point == "SpeedLimit"] == [30]


async def test_write_reads_back_and_read_only_points_are_refused(
    sim: OpcUaSimulatorServer, tmp_path: Path
) -> None:
    sink = RecordingSink()
    boiler = key(sim, "boiler-01")
    allowed = source(sim.endpoint, control={"writable": ["*/Setpoint", "*/SpeedLimit"]})
    async with OpcUaAdapter(allowed, sink, data_dir=tmp_path) as adapter:
        await _started(adapter)
        try:
            await adapter.write(boiler, "Setpoint", 190.5)
            assert await sim.read_value("boiler-01", "Setpoint") == 190.5
            sample = await adapter.read(boiler, "Setpoint")
            assert (sample.value, sample.quality) == (190.5, Quality.GOOD)
            await eventually(
                lambda: any(s.point == "Setpoint" and s.value == 190.5 for s in sink.samples()),
                5,
                "the written value to be notified",
            )
            await adapter.write(key(sim, "press-01"), "SpeedLimit", 31)
            assert await sim.read_value("press-01", "SpeedLimit") == 31
        finally:
            await adapter.write(boiler, "Setpoint", 185)
            await adapter.write(key(sim, "press-01"), "SpeedLimit", 30)
        with pytest.raises(PointNotWritable, match="'Temperature' is read-only"):
            await adapter.write(boiler, "Temperature", 20.0)
        with pytest.raises(WriteError, match="expected a number"):
            await adapter.write(boiler, "Setpoint", "hot")
        with pytest.raises(UnknownPoint, match="no point 'Nope'"):
            await adapter.write(boiler, "Nope", 1)
        with pytest.raises(UnknownDevice, match="no device 'nope'"):
            await adapter.read("nope", "Setpoint")


async def test_explicitly_listed_device_keeps_its_id(
    sim: OpcUaSimulatorServer, tmp_path: Path
) -> None:
    sink = RecordingSink()
    config = source(
        sim.endpoint,
        discovery={"enabled": False},
        devices=[
            {"id": "the-press", "browse_path": "Objects/DeviceSet/press-01", "industry": "C3311"}
        ],
    )
    async with OpcUaAdapter(config, sink, data_dir=tmp_path) as adapter:
        await _started(adapter)
        [event] = sink.events(DeviceEventKind.REGISTERED)
        assert event.device == "the-press"
        assert event.info is not None and event.info.industry == "C3311"
        assert event.info.device_type == "press"
        await eventually(
            lambda: {s.point for s in sink.samples()} == {p.key for p in SPECS["press-01"].points},
            10,
            "samples of every point of the listed device",
        )
        assert {s.device for s in sink.samples()} == {"the-press"}


async def test_device_removed_on_rebrowse_is_marked_vanished(
    sim: OpcUaSimulatorServer, tmp_path: Path
) -> None:
    sink = RecordingSink()
    mixer = OpcUaFleetDevice.model_validate(
        {
            "protocol": "opcua",
            "id": "mixer-01",
            "type": "mixer",
            "points": [{"key": "Speed", "signal": {"kind": "sine", "base": 5, "period": 2}}],
        }
    )
    config = source(sim.endpoint, discovery={"interval": 0.3})
    async with OpcUaAdapter(config, sink, data_dir=tmp_path) as adapter:
        await _started(adapter)
        mixer_key = key(sim, "mixer-01")
        await sim.add_device(mixer)
        try:
            await eventually(
                lambda: any(s.device == mixer_key for s in sink.samples()),
                10,
                "the added device to be registered and sampled",
            )
            assert [e.device for e in sink.events(DeviceEventKind.REGISTERED)][-1] == mixer_key
        finally:
            await sim.remove_device("mixer-01")
        await eventually(
            lambda: bool(sink.events(DeviceEventKind.VANISHED)), 10, "a VANISHED event"
        )
        assert [e.device for e in sink.events(DeviceEventKind.VANISHED)] == [mixer_key]
        assert mixer_key not in adapter.devices
        assert len(adapter.devices) == len(SPECS)


async def test_polling_takes_over_where_the_server_refuses_subscriptions(tmp_path: Path) -> None:
    server = OpcUaSimulatorServer(default_devices(), port=free_port(), subscriptions=False)
    await server.start()
    try:
        sink = RecordingSink()
        observer = RecordingObserver()
        async with OpcUaAdapter(
            source(server.endpoint), sink, data_dir=tmp_path, observer=observer
        ) as adapter:
            await _started(adapter)
            expected = {(key(server, d), p.key) for d, s in SPECS.items() for p in s.points}
            await eventually(
                lambda: expected <= {(s.device, s.point) for s in sink.samples()},
                10,
                "a polled sample of every point",
            )
            await eventually(
                lambda: len({s.value for s in sink.samples() if s.point == "StrokeCount"}) >= 3,
                10,
                "the stroke counter to advance between polls",
            )
            assert adapter.data_mode is DataMode.POLL
        assert all(s.quality is Quality.GOOD for s in sink.samples())
        assert "poll" in observer.kinds()
        # one observation per poll cycle, not per point
        polls = sum(1 for _, kind, _ in observer.requests if kind == "poll")
        assert polls <= len(sink.samples()) / sum(len(s.points) for s in SPECS.values()) + 1
    finally:
        await server.stop()


async def test_missing_endpoint_is_explained(sim: OpcUaSimulatorServer, tmp_path: Path) -> None:
    config = source(sim.endpoint, security={"policy": "Basic256Sha256", "mode": "SignAndEncrypt"})
    client = OpcUaClient(
        config,
        ensure_client_certificate(tmp_path, config.application_uri),
        TrustStore(tmp_path, config.trust.mode),
    )
    with pytest.raises(ConnectError, match=r"offers no endpoint .* it offers: None/None_"):
        await client.connect()


async def test_deadband_filters_small_changes_of_numeric_points(
    sim: OpcUaSimulatorServer, tmp_path: Path
) -> None:
    sink = RecordingSink()
    config = source(sim.endpoint, data={"deadband": {"kind": "absolute", "value": 1000}})
    async with OpcUaAdapter(config, sink, data_dir=tmp_path) as adapter:
        await _started(adapter)
        await asyncio.sleep(2.0)  # the counter steps twice, Temperature moves every 0.5 s
    # changes smaller than the deadband are not reported: only the initial values arrive
    for point in ("Temperature", "StrokeCount"):
        assert len([s for s in sink.samples() if s.point == point]) == 1, point


async def test_bad_status_gives_bad_samples_until_the_point_recovers(
    sim: OpcUaSimulatorServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = RecordingSink()
    press = key(sim, "press-01")
    caplog.set_level(logging.INFO, logger="adapters.opcua.adapter")
    async with OpcUaAdapter(source(sim.endpoint), sink, data_dir=tmp_path) as adapter:
        await _started(adapter)
        await eventually(
            lambda: any(s.point == "Force" for s in sink.samples()), 10, "a first Force sample"
        )
        mark = len(sink.records)
        await sim.set_status("press-01", "Force", "BadSensorFailure")
        try:
            await eventually(
                lambda: any(s.point == "Force" for s in sink.samples(mark)),
                10,
                "a Force sample once the sensor reports failure",
            )
            await asyncio.sleep(1.0)  # two update periods: no good value slips through
            bad = [s for s in sink.samples(mark) if s.point == "Force"]
            # a Bad value is null and notified once (OPC 10000-4, 7.7.1), whatever updates follow
            assert [(s.quality, s.value) for s in bad] == [(Quality.BAD, None)]
            recovered_from = len(sink.records)
        finally:
            await sim.set_status("press-01", "Force", "Good")
        await eventually(
            lambda: any(
                s.point == "Force" and s.quality is Quality.GOOD
                for s in sink.samples(recovered_from)
            ),
            10,
            "a good Force sample after the sensor recovered",
        )
        # the other points of the device stay good meanwhile
        others = [s for s in sink.samples(mark) if s.device == press and s.point != "Force"]
        assert others and all(s.quality is Quality.GOOD for s in others)
    turned = [r for r in caplog.records if "reports BadSensorFailure" in r.getMessage()]
    back = [r for r in caplog.records if "reports Good again" in r.getMessage()]
    assert len(turned) == 1 and len(back) == 1  # logged once each way, not per sample
    assert (getattr(turned[0], "device", None), getattr(turned[0], "point", None)) == (
        press,
        "Force",
    )


async def test_a_variable_that_disappears_is_dropped_from_its_device(
    sim: OpcUaSimulatorServer, tmp_path: Path
) -> None:
    dryer = OpcUaFleetDevice.model_validate(
        {
            "protocol": "opcua",
            "id": "dryer-01",
            "type": "dryer",
            "update_interval": 0.2,
            "points": [
                {"key": "Temperature", "signal": {"kind": "sine", "base": 60, "period": 3}},
                {"key": "Humidity", "signal": {"kind": "sine", "base": 30, "period": 3}},
            ],
        }
    )
    await sim.add_device(dryer)
    sink = RecordingSink()
    dryer_key = key(sim, "dryer-01")
    try:
        # the default discovery interval (300 s): only the vanished node brings browsing forward
        async with OpcUaAdapter(
            source(sim.endpoint, discovery={"interval": 300}), sink, data_dir=tmp_path
        ) as adapter:
            await _started(adapter)
            assert [p.key for p in adapter.devices[dryer_key].points] == ["Humidity", "Temperature"]
            await eventually(
                lambda: (
                    {s.point for s in sink.samples() if s.device == dryer_key}
                    == {"Humidity", "Temperature"}
                ),
                10,
                "samples of both dryer points",
            )
            mark = len(sink.records)
            await sim.remove_point("dryer-01", "Humidity")
            await eventually(
                lambda: any(
                    e.device == dryer_key for e in sink.events(DeviceEventKind.REGISTERED, mark)
                ),
                10,
                "the dryer registered again without the vanished variable",
            )
            [gone] = [
                s for s in sink.samples(mark) if s.point == "Humidity" and s.quality is Quality.BAD
            ]
            assert gone.value is None
            [event] = [
                e for e in sink.events(DeviceEventKind.REGISTERED, mark) if e.device == dryer_key
            ]
            assert event.info is not None
            assert [p.key for p in event.info.points] == ["Temperature"]
            again = len(sink.records)
            await eventually(
                lambda: (
                    len({s.value for s in sink.samples(again) if s.point == "Temperature"}) >= 2
                ),
                10,
                "the remaining variable sampled on",
            )
            assert not sink.events(DeviceEventKind.VANISHED)
            assert adapter.sessions == 1
    finally:
        await sim.remove_device("dryer-01")


async def test_observer_hears_connection_and_request_latencies(
    sim: OpcUaSimulatorServer, tmp_path: Path
) -> None:
    observer = RecordingObserver()
    boiler = key(sim, "boiler-01")
    config = source(sim.endpoint, control={"writable": ["*/Setpoint"]})
    async with OpcUaAdapter(
        config, RecordingSink(), data_dir=tmp_path, observer=observer
    ) as adapter:
        await _started(adapter)
        assert observer.connections == [("opcua", sim.endpoint, True)]
        await adapter.read(boiler, "Setpoint")
        await adapter.write(boiler, "Setpoint", 185)
    assert observer.connections == [("opcua", sim.endpoint, True), ("opcua", sim.endpoint, False)]
    assert observer.kinds() == {"browse", "read", "write"}  # subscribed: no poll, no per-sample
    assert all(protocol == "opcua" and 0 <= s < 10 for protocol, _, s in observer.requests)


async def test_observer_hears_an_unreachable_server_once(tmp_path: Path) -> None:
    observer = RecordingObserver()
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/"
    async with OpcUaAdapter(
        source(endpoint), RecordingSink(), data_dir=tmp_path, observer=observer
    ):
        await eventually(lambda: bool(observer.connections), 5, "the first failed attempt")
        await asyncio.sleep(0.6)  # a few more attempts with back-off
    assert observer.connections == [("opcua", endpoint, False)]
