"""The Modbus configuration model: the sample file, endpoints, and adapter construction."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from adapters.modbus.adapter import ModbusAdapter
from adapters.modbus.config import ModbusDevice
from adapters.modbus.endpoint import Endpoint, Framing
from adapters.registry import ADAPTERS, AdapterConfigError, build_adapters
from collector.config import ConfigError, parse_config

SAMPLE = Path(__file__).resolve().parents[3] / "adapters" / "modbus" / "sample.yaml"


class NullSink:
    async def put(self, record: object) -> None:
        raise AssertionError("nothing may be emitted before start")

    async def put_many(self, records: object) -> None:
        raise AssertionError("nothing may be emitted before start")


def test_the_sample_loads_through_the_model_and_the_tally_config() -> None:
    raw = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    devices = [ModbusDevice.model_validate(d) for d in raw["devices"]]
    assert [d.id for d in devices] == ["boiler-1", "line-gateway-unit-7"]
    config = parse_config({"version": 1, **raw}, str(SAMPLE), environ={})
    assert len(config.devices) == 2
    adapters = build_adapters(config.devices, NullSink())
    assert len(adapters) == 1
    assert isinstance(adapters[0], ModbusAdapter)
    assert [d.id for d in adapters[0].devices] == ["boiler-1", "line-gateway-unit-7"]


def test_unknown_protocol_lists_the_valid_ones() -> None:
    class Other:
        protocol = "bacnet"

    with pytest.raises(AdapterConfigError, match=r"devices\[0\].protocol: no adapter for 'bacnet'"):
        build_adapters([Other()], NullSink())
    assert "modbus" in ADAPTERS


def test_bad_keys_fail_with_their_path() -> None:
    raw = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    raw["devices"][0]["points"][0]["table"] = "registers"
    raw["devices"][1]["endpoint"] = "udp://x"
    with pytest.raises(ConfigError) as error:
        parse_config({"version": 1, **raw}, "tally.yaml", environ={})
    text = str(error.value)
    assert "devices[0].points[0].table" in text
    assert "devices[1]" in text and "udp://x" in text


@pytest.mark.parametrize(
    ("url", "framing", "where"),
    [
        ("tcp://10.0.0.5", Framing.TCP, ("10.0.0.5", 502)),
        ("rtu+tcp://gw.local:4001", Framing.RTU_OVER_TCP, ("gw.local", 4001)),
        ("rtu:///dev/ttyUSB0?baudrate=9600&parity=e", Framing.RTU, ("/dev/ttyUSB0", 9600)),
        ("rtu://socket://127.0.0.1:5020", Framing.RTU, ("socket://127.0.0.1:5020", 19200)),
    ],
)
def test_endpoints(url: str, framing: Framing, where: tuple[str, int]) -> None:
    endpoint = Endpoint.parse(url)
    assert endpoint.framing is framing
    if framing is Framing.RTU:
        assert (endpoint.serial_port, endpoint.baudrate) == where
    else:
        assert (endpoint.host, endpoint.port) == where


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("udp://x:1", "expected tcp://"),
        ("tcp://:502", "missing host"),
        ("tcp://h:99999", "port must be a number"),
        ("tcp://h:502/path", "only host and port"),
        ("rtu://", "missing serial device"),
        ("rtu:///dev/x?speed=1", "unknown serial option"),
        ("rtu:///dev/x?parity=Q", "parity must be N, E or O"),
        ("rtu:///dev/x?baudrate=fast", "must be integers"),
    ],
)
def test_bad_endpoints(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Endpoint.parse(url)


def test_adapter_refuses_two_devices_on_one_unit() -> None:
    device = ModbusDevice.model_validate(
        {
            "id": "a",
            "protocol": "modbus",
            "endpoint": "tcp://h:1",
            "points": [{"key": "p", "address": 0}],
        }
    )
    twin = device.model_copy(update={"id": "b"})
    with pytest.raises(ValueError, match=r"unit id\(s\) \[1\] are used by more than one device"):
        ModbusAdapter([device, twin], NullSink())
    with pytest.raises(ValueError, match="configured twice"):
        ModbusAdapter([device, device], NullSink())
    disabled = twin.model_copy(update={"enabled": False})
    assert [d.id for d in ModbusAdapter([device, disabled], NullSink()).devices] == ["a"]
