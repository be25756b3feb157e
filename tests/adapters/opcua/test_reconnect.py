"""Staying connected: server restarts with new NodeIds, silent subscriptions."""

from collections import Counter
from pathlib import Path

import pytest

from adapters.base import DeviceEventKind
from adapters.opcua.adapter import OpcUaAdapter
from collector.embedded.ports import free_port
from simulators.opcua.defaults import default_devices
from simulators.opcua.server import OpcUaSimulatorServer
from tests.adapters.opcua.opcuatest import RecordingSink, eventually, source

pytestmark = pytest.mark.integration

SPECS = {d.id: d for d in default_devices()}


def _every_point(sim: OpcUaSimulatorServer) -> set[tuple[str, str]]:
    prefix = f"{sim.application_uri}/Objects/DeviceSet/"
    return {(prefix + d, p.key) for d, spec in SPECS.items() for p in spec.points}


async def test_server_restart_with_new_node_ids_is_survived(tmp_path: Path) -> None:
    sim = OpcUaSimulatorServer(default_devices(), port=free_port())
    await sim.start()
    sink = RecordingSink()
    # discovery.interval 0: browsing happens only when (re)connecting.
    config = source(sim.endpoint, discovery={"interval": 0})
    try:
        async with OpcUaAdapter(config, sink, data_dir=tmp_path) as adapter:
            assert await adapter.wait_ready(20), adapter.last_error
            await eventually(
                lambda: _every_point(sim) <= {(s.device, s.point) for s in sink.samples()},
                10,
                "a sample of every point before the restart",
            )
            before = {(d, p.key): sim.node_id(d, p.key) for d, s in SPECS.items() for p in s.points}
            await sim.stop()
            await eventually(lambda: not adapter.connected, 10, "the loss to be noticed")
            sim.nodeid_offset = 7
            await sim.start()
            after = {(d, p.key): sim.node_id(d, p.key) for d, s in SPECS.items() for p in s.points}
            assert all(before[k] != after[k] for k in before), "every NodeId changed"
            mark = len(sink.records)
            await eventually(
                lambda: _every_point(sim) <= {(s.device, s.point) for s in sink.samples(mark)},
                20,
                "samples of every point again after the restart, without restarting the adapter",
            )
            assert adapter.sessions == 2
            await eventually(
                lambda: len({s.value for s in sink.samples(mark) if s.point == "StrokeCount"}) >= 2,
                10,
                "live changes after the restart",
            )
        assert not sink.events(DeviceEventKind.VANISHED)
        assert len(sink.events(DeviceEventKind.REGISTERED)) == len(SPECS)  # same identities
        devices = {device for device, _ in _every_point(sim)}
        # offline at the restart and at the end, online at both connects
        for kind in (DeviceEventKind.OFFLINE, DeviceEventKind.ONLINE):
            assert Counter(e.device for e in sink.events(kind)) == dict.fromkeys(devices, 2)
    finally:
        await sim.stop()


async def test_silent_subscription_is_rebuilt_without_reconnecting(tmp_path: Path) -> None:
    sim = OpcUaSimulatorServer(default_devices(), port=free_port())
    await sim.start()
    sink = RecordingSink()
    # Keep-alive due every 20 × 0.1 s; silent for 1.0 × that: rebuilt by the adapter (asyncua's
    # own stale-subscription watchdog would act later, at 1.5 ×).
    config = source(sim.endpoint, data={"keepalive_count": 20, "keepalive_margin": 1.0})
    try:
        async with OpcUaAdapter(config, sink, data_dir=tmp_path) as adapter:
            assert await adapter.wait_ready(20), adapter.last_error
            await eventually(lambda: bool(sink.samples()), 10, "first samples")
            assert await sim.silence_subscriptions() == 1
            mark = len(sink.records)
            await eventually(
                lambda: len({s.value for s in sink.samples(mark) if s.point == "Temperature"}) >= 3,
                15,
                "changing samples again after the subscription went silent",
            )
            assert adapter.sessions == 1
            assert adapter.rebuilds >= 1
    finally:
        await sim.stop()
