"""The OPC UA plug-in of the fleet: serving fleet devices and configuring the collector."""

from pathlib import Path
from typing import Any

import pytest

from adapters.base import DeviceEventKind
from adapters.opcua.adapter import OpcUaAdapter
from adapters.opcua.config import OpcUaSource
from collector.config import parse_config
from simulators.fleet import device_configs, parse_fleet
from simulators.runner import FleetSimulator
from tests.adapters.opcua.opcuatest import RecordingSink, eventually

pytestmark = pytest.mark.integration

KILN: dict[str, Any] = {
    "id": "kiln-1",
    "template": "site",
    "type": "kiln",
    "industry": "C3011",
    "points": [
        {"key": "Temperature", "unit": "°C", "signal": {"kind": "sine", "base": 900}},
        {"key": "Target", "writable": True, "signal": {"kind": "constant", "value": 950}},
    ],
}
SPEC: dict[str, Any] = {
    "version": 1,
    "name": "opcua-test",
    "seed": 3,
    "protocols": {"opcua": {"servers": [{"name": "plant", "users": {"op": "pw"}}]}},
    "templates": {"site": {"protocol": "opcua", "server": "plant", "region": "360100"}},
    "devices": [
        KILN,
        {
            "id": "fan-1",
            "template": "site",
            "type": "fan",
            "industry": "C3011",
            "points": [{"key": "Running", "data_type": "bool", "signal": {"kind": "square"}}],
        },
    ],
}


def test_bad_opcua_devices_are_refused_with_their_path() -> None:
    kiln = {**KILN, "points": [{"key": "a", "data_type": "complex"}]}
    bad = {**SPEC, "devices": [kiln]}
    with pytest.raises(Exception, match=r"devices\[0\] \(kiln-1\)\.points\[0\]\.data_type"):
        parse_fleet(bad, "<test>")


async def test_fleet_devices_are_served_and_collected_under_their_fleet_ids(tmp_path: Path) -> None:
    fleet = parse_fleet(SPEC, "<test>")
    async with FleetSimulator(fleet) as manifest:
        assert [d.id for d in manifest.devices] == ["kiln-1", "fan-1"]
        kiln = manifest.device("kiln-1")
        assert kiln.identity["vendor"].endswith("(simulated)")
        assert [(p.key, p.writable, p.data_type) for p in kiln.points] == [
            ("Temperature", False, "float64"),
            ("Target", True, "float64"),
        ]
        configs = device_configs(manifest)
        [entry] = configs
        assert isinstance(entry, OpcUaSource)
        assert entry.control.writable == ["kiln-1/Target"]  # the fleet's writable points only
        # the generated entry is a valid `devices:` item of the collector configuration
        dumped = entry.model_dump(mode="json")
        dumped["auth"]["password"] = "pw"  # SecretStr dumps masked
        raw = {"version": 1, "devices": [dumped]}
        parse_config(raw, "<generated>", environ={})
        sink = RecordingSink()
        fast = entry.model_copy(
            update={"reconnect": entry.reconnect.model_copy(update={"initial_delay": 0.2})}
        )
        async with OpcUaAdapter(fast, sink, data_dir=tmp_path) as adapter:
            assert await adapter.wait_ready(20), adapter.last_error
            registered = {e.device: e.info for e in sink.events(DeviceEventKind.REGISTERED)}
            assert sorted(registered) == ["fan-1", "kiln-1"]
            kiln_info = registered["kiln-1"]
            assert kiln_info is not None
            assert (kiln_info.industry, kiln_info.region, kiln_info.device_type) == (
                "C3011",
                "360100",
                "kiln",
            )
            await eventually(
                lambda: {s.device for s in sink.samples()} == {"fan-1", "kiln-1"},
                10,
                "samples of both",
            )
