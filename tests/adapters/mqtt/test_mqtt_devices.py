"""The device book: declared keys and fields, limits, and which points Tally may write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.base import DeviceInfo, PointInfo, Sample
from adapters.mqtt.config import MqttConnection
from adapters.mqtt.devices import DeviceBook, KnownDevice
from adapters.mqtt.json_mapping import MappingError
from adapters.mqtt.rejections import Reason


def book(**overrides: Any) -> DeviceBook:
    config: dict[str, Any] = {
        "id": "site",
        "protocol": "mqtt",
        "url": "mqtt://127.0.0.1:1883",
        "type": "default-type",
        "sparkplug": {},
        "devices": [
            {"id": "press-7", "topic_device": "p7", "type": "press", "points": [
                {"key": "setpoint", "unit": "bar", "writable": True},
                {"key": "speed", "unit": "rpm"},
            ]},
            {"id": "rx", "sparkplug": {"group": "g", "edge_node": "e", "device": "r1"}},
            {"id": "off", "topic_device": "off", "enabled": False},
        ],
        "control": {"allow_reported_writable": ["*_sp"]},
        **overrides,
    }  # fmt: skip
    return DeviceBook(MqttConnection.model_validate(config))


def test_declared_devices_keep_their_ids_others_get_derived_keys() -> None:
    b = book()
    assert b.json_key("p7") == "press-7"
    assert b.json_key("p8") == "site/p8"
    assert b.sparkplug_key("g", "e", "r1") == "rx"
    assert b.sparkplug_key("g", "e", "r2") == "site/g/e/r2"
    assert b.sparkplug_key("g", "e", None) == "site/g/e"


def test_declared_fields_win_and_declared_points_bring_their_units() -> None:
    b = book()
    device, changed = b.admit("press-7", {}, {"device_type": "from-topic", "region": "360100"})
    assert changed and device.info.device_type == "press" and device.info.region == "360100"
    other, _ = b.admit("site/p8", {}, {"device_type": "from-topic"})
    assert other.info.device_type == "from-topic"
    b.add_points(device, [PointInfo("setpoint", "a", "float64"), PointInfo("speed", "b", "int64")])
    points = {p.key: p for p in b.registration(device).points}
    assert (points["setpoint"].unit, points["setpoint"].writable) == ("bar", True)
    assert (points["speed"].unit, points["speed"].writable) == ("rpm", False)


def test_a_disabled_declared_device_is_refused() -> None:
    with pytest.raises(MappingError) as refused:
        book().admit("off", {}, {})
    assert refused.value.reason is Reason.DISABLED_DEVICE


def test_reported_writable_points_need_an_allowing_pattern() -> None:
    b = book()
    device, _ = b.admit("site/p8", {}, {})
    b.add_points(device, [PointInfo(k, k, "float64") for k in ("temp_sp", "speed", "temp")])
    assert b.report_writable(device, ["temp_sp", "speed"])
    assert not b.report_writable(device, ["speed", "temp_sp"])  # same set: no change
    assert [k for k in device.points if b.writable(device, k)] == ["temp_sp"]
    strict = book(control={})
    device, _ = strict.admit("site/p8", {}, {})
    strict.report_writable(device, ["temp_sp"])
    assert not strict.writable(device, "temp_sp")


def test_the_latest_value_of_each_point_never_goes_back_in_time() -> None:
    device = KnownDevice(DeviceInfo("d", "mqtt", "mqtt://127.0.0.1:1883"))
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def made(step: int, *points: str) -> list[Sample]:
        return [Sample("d", p, t0 + timedelta(seconds=step), float(step)) for p in points]

    assert device.latest("a") is None
    device.keep_latest(["a", "b"], made(1, "a", "b"))
    device.keep_latest(["a", "b"], made(2, "a", "b"))  # the same points: replaces whole
    assert [device.latest(p).value for p in "ab"] == [2.0, 2.0]  # type: ignore[union-attr]
    device.keep_latest(["a", "b"], made(3, "a", "b"))
    device.keep_latest(["b"], made(4, "b"))  # other points: "a" keeps message 3's value
    device.keep_sample("c", made(5, "c")[0])
    assert [device.latest(p).value for p in "abc"] == [3.0, 4.0, 5.0]  # type: ignore[union-attr]
    device.keep_latest(["a", "c"], made(6, "a", "c"))
    device.keep_sample("a", made(7, "a")[0])  # newer than the message held
    device.keep_latest(["b"], made(8, "b"))
    assert [device.latest(p).value for p in "abc"] == [7.0, 8.0, 6.0]  # type: ignore[union-attr]
    assert device.latest("z") is None
