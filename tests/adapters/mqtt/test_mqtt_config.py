"""MQTT connection configuration: the sample loads, bad keys fail with their path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from adapters.mqtt.adapter import MqttAdapter
from adapters.mqtt.config import MqttConnection
from collector.config import ConfigError, load_config, parse_config

SAMPLE = Path(__file__).parents[3] / "adapters" / "mqtt" / "sample.yaml"


def test_sample_yaml_loads_through_the_model() -> None:
    config = load_config(SAMPLE, environ={})
    (device,) = config.devices
    assert isinstance(device, MqttConnection)
    assert (device.host, device.port, device.uses_tls) == ("127.0.0.1", 1883, False)
    assert device.effective_client_id == "tally-plant-broker"
    assert device.sparkplug is not None and device.sparkplug.groups == ["+"]


def test_subscriptions_follow_the_templates() -> None:
    config = load_config(SAMPLE, environ={})
    device = config.devices[0]
    assert isinstance(device, MqttConnection)

    class NoSink:
        async def put(self, record: object) -> None:
            raise AssertionError("nothing is put before start")

        async def put_many(self, records: object) -> None:
            raise AssertionError("nothing is put before start")

    assert MqttAdapter(device, NoSink()).subscriptions() == [
        ("plant/+/+/+/identity", 1),
        ("plant/+/+/+/telemetry", 1),
        ("spBv1.0/+/#", 1),
    ]


def test_password_comes_from_the_environment() -> None:
    config = load_config(SAMPLE, environ={"TALLY_DEVICES__0__USERNAME": "tally",
                                          "TALLY_DEVICES__0__PASSWORD": "s3cret"})  # fmt: skip
    device = config.devices[0]
    assert isinstance(device, MqttConnection)
    assert device.password is not None and device.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(device)


BASE: dict[str, Any] = {"id": "b", "protocol": "mqtt", "url": "mqtt://127.0.0.1:1883"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, "needs 'topics', 'sparkplug' or both"),
        ({"url": "http://x", "sparkplug": {}}, "devices[0].url"),
        ({"topics": [{"topic": "plant/{type}/x", "point_object": "$"}]}, "{device} segment"),
        ({"topics": [{"topic": "plant/+/{device}", "point_object": "$"}]}, "not + or #"),
        ({"topics": [{"topic": "p/{device}x", "point_object": "$"}]}, "whole level"),
        ({"topics": [{"topic": "p/{device}"}]}, "give 'points', 'point_object'"),
        (
            {"topics": [{"topic": "p/{device}", "points": [{"key": "a", "path": "$..a"}]}]},
            "JSON path",
        ),
        ({"topics": [{"topic": "p/{device}", "point_object": "$", "qos": 3}]}, "qos"),
        ({"sparkplug": {"groups": ["a/b"]}}, "group id"),
        ({"sparkplug": {}, "tls": {"cert_file": "c.pem"}}, "go together"),
        ({"sparkplug": {}, "password": "x"}, "without username"),
        ({"sparkplug": {}, "bogus": 1}, "devices[0].bogus"),
        (
            {
                "sparkplug": {},
                "devices": [
                    {"id": "a", "topic_device": "a", "sparkplug": {"group": "g", "edge_node": "e"}}
                ],
            },
            "give exactly one of topic_device, sparkplug",
        ),
        (
            {
                "sparkplug": {},
                "devices": [{"id": "a", "topic_device": "a"}, {"id": "a", "topic_device": "b"}],
            },
            "ids used twice: a",
        ),
        (
            {
                "sparkplug": {},
                "devices": [{"id": "a", "topic_device": "x"}, {"id": "b", "topic_device": "x"}],
            },
            "addresses used twice: topic_device x",
        ),
        (
            {
                "topics": [{"topic": "p/{device}", "point_object": "$"}],
                "devices": [{"id": "a", "sparkplug": {"group": "g", "edge_node": "e"}}],
            },
            "'sparkplug' is not set",
        ),
        (
            {"sparkplug": {}, "devices": [{"id": "a", "topic_device": "a/b"}]},
            "devices[0].devices[0].topic_device",
        ),
        (
            {
                "sparkplug": {},
                "control": {
                    "json_commands": {"command_topic": "p/set", "ack_topic": "p/{device}/ack"}
                },
            },
            "needs a {device} segment",
        ),
        ({"sparkplug": {}, "control": {"timeout": 0}}, "devices[0].control.timeout"),
    ],
)
def test_bad_configurations_name_the_problem(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config({"version": 1, "devices": [{**BASE, **overrides}]}, "t.yaml", {})


def test_mqtts_defaults_to_port_8883() -> None:
    device = MqttConnection.model_validate({**BASE, "url": "mqtts://broker", "sparkplug": {}})
    assert device.uses_tls and device.port == 8883
