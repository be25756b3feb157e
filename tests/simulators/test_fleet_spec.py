"""The fleet spec loader, the demo fleet, the manifest and its collector configuration."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from adapters.modbus.config import ModbusDevice
from collector.config import parse_config
from simulators.fleet import (
    FleetError,
    Manifest,
    ManifestDevice,
    ManifestPoint,
    build_manifest,
    device_configs,
    load_fleet,
    parse_fleet,
    plugin_for,
    read_manifest,
    write_manifest,
)
from simulators.modbus.models import ModbusFleetDevice
from simulators.runner import DEMO_FLEET
from simulators.signals import Signal, signal_value

PROCESS_INDUSTRIES = ("C25", "C26", "C27", "C28", "C30", "C31", "C32", "D44")

SPEC: dict[str, Any] = {
    "version": 1,
    "name": "t",
    "templates": {
        "site": {"protocol": "modbus", "industry": "C26", "region": "360100"},
        "pump": {
            "type": "pump",
            "points": [{"key": "speed", "address": 0, "signal": {"value": 3}}],
        },
    },
    "devices": [
        {"id": "p1", "template": ["site", "pump"], "device_id": 1},
        {"id": "p2", "template": "pump", "protocol": "modbus", "device_id": 2, "type": "big"},
    ],
}


def spec(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(SPEC)
    out.update(changes)
    return out


def test_templates_merge_in_order_and_the_device_wins() -> None:
    fleet = parse_fleet(spec(), "<t>")
    p1, p2 = fleet.devices
    assert isinstance(p1, ModbusFleetDevice)
    assert (p1.industry, p1.type, p1.points[0].key) == ("C26", "pump", "speed")
    assert (p2.industry, p2.type) == (None, "big")
    assert fleet.protocols() == ["modbus"]


@pytest.mark.parametrize(
    ("devices", "message"),
    [
        (
            [{"id": "x", "protocol": "bacnet"}],
            r"devices\[0\].protocol: unknown protocol .bacnet.; valid: modbus, opcua, mqtt",
        ),
        ([{"id": "x", "template": "nope"}], r"devices\[0\].template: unknown template 'nope'"),
        ([{"id": "x", "points": []}], r"devices\[0\].protocol: required"),
        (
            [{"id": "x", "template": "pump", "protocol": "modbus", "industry": "26"}],
            r"devices\[0\] \(x\).industry: Value error, expected a GB/T 4754-2017 code",
        ),
        (
            [{"id": "x", "template": "pump", "protocol": "modbus", "device_id": 300}],
            r"devices\[0\] \(x\).device_id: Input should be less than or equal to 247",
        ),
        (
            [
                {"id": "x", "template": "pump", "protocol": "modbus"},
                {"id": "x", "template": "pump", "protocol": "modbus", "device_id": 2},
            ],
            "id 'x' is used twice",
        ),
        (
            [
                {
                    "id": "x",
                    "protocol": "modbus",
                    "points": [
                        {"key": "a", "address": 0, "data_type": "float32"},
                        {"key": "b", "address": 1},
                    ],
                }
            ],
            "points 'a' and 'b' both use holding address 1",
        ),
    ],
)
def test_bad_specs_name_the_bad_key(devices: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(FleetError, match=message):
        parse_fleet(spec(devices=devices), "<t>")


def test_bad_header_and_protocol_settings() -> None:
    with pytest.raises(FleetError, match="unknown key"):
        parse_fleet(spec(extra=1), "<t>")
    with pytest.raises(FleetError, match="version must be 1"):
        parse_fleet(spec(version=2), "<t>")
    with pytest.raises(FleetError, match=r"protocols.modbus.servers\[0\].framing"):
        parse_fleet(
            spec(protocols={"modbus": {"servers": [{"name": "a", "framing": "udp"}]}}), "<t>"
        )


def test_a_missing_plugin_is_reported_only_when_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("simulators.fleet.PROTOCOLS", ("modbus", "nosuch"))
    with pytest.raises(FleetError, match=r"protocol 'nosuch' has no simulator yet"):
        plugin_for("nosuch")
    assert parse_fleet(spec(), "<t>").devices  # a Modbus-only fleet is unaffected


def test_the_demo_fleet() -> None:
    fleet = load_fleet(DEMO_FLEET)
    assert 35 <= len(fleet.devices) <= 45
    industries = {d.industry for d in fleet.devices}
    assert len({i[:3] for i in industries if i}) == 3
    assert any(i and i.startswith(PROCESS_INDUSTRIES) for i in industries)
    assert len({d.type for d in fleet.devices}) >= 8
    assert all(d.protocol == "modbus" and d.region for d in fleet.devices)
    assert any(
        d.points and any(p.writable for p in d.points)
        for d in fleet.devices
        if isinstance(d, ModbusFleetDevice)
    )


def test_manifest_round_trip_and_collector_configuration(tmp_path: Path) -> None:
    fleet = parse_fleet(spec(), "<t>")
    device = ManifestDevice(
        id="p1",
        protocol="modbus",
        endpoint="rtu+tcp://127.0.0.1:1502",
        type="pump",
        industry="C26",
        update_interval=2.5,
        identity={"vendor": "Tally Simulator (simulated)"},
        settings={"device_id": 4, "timeout": 0.5, "max_gap": 3},
        points=[
            ManifestPoint(
                key="speed",
                data_type="float32",
                unit="rpm",
                writable=True,
                address="holding:10",
                settings={
                    "table": "holding",
                    "address": 10,
                    "data_type": "float32",
                    "word_order": "little",
                },
            )
        ],
    )
    manifest = build_manifest(fleet, [device])
    path = tmp_path / "out" / "manifest.json"
    write_manifest(manifest, path)
    again = read_manifest(path)
    assert again == manifest
    (config,) = device_configs(again)
    assert isinstance(config, ModbusDevice)
    assert (config.endpoint, config.device_id, config.poll_interval, config.timeout) == (
        "rtu+tcp://127.0.0.1:1502",
        4,
        2.5,
        0.5,
    )
    point = config.points[0]
    assert (point.key, point.address, point.word_order, point.writable, point.unit) == (
        "speed",
        10,
        "little",
        True,
        "rpm",
    )
    tally = parse_config(
        {"version": 1, "devices": [c.model_dump(mode="json") for c in device_configs(again)]},
        "<manifest>",
        environ={},
    )
    assert tally.devices[0].id == "p1"


def test_unreadable_manifest(tmp_path: Path) -> None:
    with pytest.raises(FleetError, match="cannot read manifest"):
        read_manifest(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1, "fleet": "x"}', encoding="utf-8")
    with pytest.raises(FleetError, match="invalid manifest"):
        read_manifest(bad)
    assert isinstance(Manifest.model_json_schema(), dict)


@pytest.mark.parametrize(
    ("signal", "kind", "t", "expected"),
    [
        (Signal(value=5), "number", 100.0, 5.0),
        (Signal(kind="sine", base=10, amplitude=2, period=4), "number", 1.0, 12.0),
        (Signal(kind="sawtooth", base=0, amplitude=10, period=10), "number", 2.5, 2.5),
        (Signal(kind="counter", base=100, step=2, period=1), "number", 3.5, 106.0),
        (Signal(kind="square", period=10), "bool", 1.0, True),
        (Signal(kind="square", period=10), "bool", 6.0, False),
        (Signal(value="abc"), "string", 0.0, "abc"),
    ],
)
def test_signals(signal: Signal, kind: Any, t: float, expected: object) -> None:
    assert signal_value(signal, t, kind) == pytest.approx(expected)


def test_noise_is_seeded_and_bounded() -> None:
    noise = Signal(kind="noise", base=50, amplitude=1, period=1)
    values = [signal_value(noise, float(t), "number", seed=7) for t in range(50)]
    assert values == [signal_value(noise, float(t), "number", seed=7) for t in range(50)]
    assert all(49 <= float(v or 0) <= 51 for v in values)
    assert len(set(values)) > 10
