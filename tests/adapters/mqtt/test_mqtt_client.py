"""The bulk receive path of the paho client: PUBLISH packets parsed in one pass.

The client reads from one end of a socket pair (a unit test may fake the network);
the integration tests run the same code against Mosquitto.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from adapters.mqtt.client import BrokerSettings, Received, _BufferedClient


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def publish(
    topic: bytes,
    payload: bytes,
    *,
    qos: int = 0,
    mid: int = 0,
    retain: bool = False,
    properties: bytes | None = None,
) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic
    if qos:
        body += mid.to_bytes(2, "big")
    if properties is not None:
        body += varint(len(properties)) + properties
    body += payload
    return bytes([0x30 | qos << 1 | int(retain)]) + varint(len(body)) + body


class Wire:
    """A client on one end of a socket pair; the test writes the broker's bytes."""

    def __init__(self, version: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311) -> None:
        self.client = _BufferedClient(
            callback_api_version=CallbackAPIVersion.VERSION2, protocol=version
        )
        self.bulk: list[list[Received]] = []
        self.single: list[paho.MQTTMessage] = []
        self.client.on_publishes = self.bulk.append
        self.client.on_message = lambda client, userdata, message: self.single.append(message)
        self.ours, self.broker = socket.socketpair()
        self.ours.setblocking(False)
        self.client._sock = self.ours
        # As under loop_start(): packets queued on the network thread wait for its next turn.
        self.wake = socket.socketpair()
        self.client._sockpairR, self.client._sockpairW = self.wake

    def send(self, data: bytes) -> MQTTErrorCode:
        self.broker.sendall(data)
        return self.client.loop_read()

    @property
    def received(self) -> list[Received]:
        return [m for batch in self.bulk for m in batch]

    def queued(self) -> bytes:
        """Every packet the client queued for the broker, as bytes."""
        return b"".join(bytes(p["packet"]) for p in self.client._out_packet)

    def close(self) -> None:
        self.client._sock = None
        self.client._sockpairR = self.client._sockpairW = None
        for sock in (self.ours, self.broker, *self.wake):
            sock.close()


@pytest.fixture
def wire() -> Iterator[Wire]:
    w = Wire()
    yield w
    w.close()


def test_every_publish_of_one_read_is_handed_over_at_once_and_acked_in_one_write(
    wire: Wire,
) -> None:
    data = (
        publish(b"plant/a/t", b'{"v": 1}', qos=1, mid=7)
        + publish(b"plant/b/t", b"zero", qos=0, retain=True)
        + publish(b"plant/c/t", b"x" * 300, qos=1, mid=0x1234)  # a 2-byte remaining length
    )
    assert wire.send(data) == MQTTErrorCode.MQTT_ERR_SUCCESS
    assert len(wire.bulk) == 1
    got = [(m.topic, m.payload, m.qos, m.retain) for m in wire.received]
    assert got == [
        ("plant/a/t", b'{"v": 1}', 1, False),
        ("plant/b/t", b"zero", 0, True),
        ("plant/c/t", b"x" * 300, 1, False),
    ]
    assert len({m.received for m in wire.received}) == 1  # stamped once per read
    assert wire.queued() == b"\x40\x02\x00\x07" + b"\x40\x02\x12\x34"
    assert len(wire.client._out_packet) == 1


def test_a_publish_split_across_reads_is_delivered_once_complete(wire: Wire) -> None:
    packet = publish(b"plant/a/t", b"y" * 1000, qos=1, mid=9)
    for cut in (1, 2, 500):
        wire.bulk.clear()
        wire.client._out_packet.clear()
        wire.send(packet[:cut])
        assert wire.received == []
        wire.send(packet[cut:])
        assert [m.payload for m in wire.received] == [b"y" * 1000]
        assert wire.queued() == b"\x40\x02\x00\x09"


def test_packets_for_paho_itself_keep_their_place_in_the_stream(wire: Wire) -> None:
    pingresp = b"\xd0\x00"
    data = (
        publish(b"t/1", b"a", qos=1, mid=1)
        + pingresp
        + publish(b"t/2", b"b", qos=2, mid=2)  # QoS 2: paho's own flow (PUBREC now)
        + publish(b"t/3", b"c", qos=1, mid=3)
    )
    wire.send(data)
    assert [[m.topic for m in batch] for batch in wire.bulk] == [["t/1"], ["t/3"]]
    assert wire.queued() == b"\x40\x02\x00\x01" + b"\x50\x02\x00\x02" + b"\x40\x02\x00\x03"
    wire.send(b"\x62\x02\x00\x02")  # PUBREL: paho delivers the QoS 2 message, once
    assert [m.topic for m in wire.single] == ["t/2"]


def test_a_topic_that_is_not_utf8_is_delivered_without_a_topic(wire: Wire) -> None:
    wire.send(publish(b"plant/\xff/t", b"p", qos=1, mid=5))
    assert [(m.topic, m.payload) for m in wire.received] == [(None, b"p")]
    assert wire.queued() == b"\x40\x02\x00\x05"


def test_an_empty_topic_is_left_to_paho_which_refuses_the_packet(wire: Wire) -> None:
    rc = wire.send(publish(b"t/ok", b"a") + publish(b"", b"b"))
    assert [m.topic for m in wire.received] == ["t/ok"]
    assert wire.single == []
    assert rc != MQTTErrorCode.MQTT_ERR_SUCCESS  # paho treats it as a protocol error


def test_mqtt5_properties_are_skipped() -> None:
    wire = Wire(MQTTProtocolVersion.MQTTv5)
    try:
        wire.send(
            publish(b"t/5", b"with", qos=1, mid=11, properties=b"\x01\x01")  # payload format
            + publish(b"t/5", b"without", qos=0, properties=b"")
        )
        assert [m.payload for m in wire.received] == [b"with", b"without"]
        assert wire.queued() == b"\x40\x02\x00\x0b"
    finally:
        wire.close()


def test_a_closed_connection_is_reported_as_lost(wire: Wire) -> None:
    wire.broker.close()
    assert wire.client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS


def test_broker_settings_take_tls_from_the_scheme_or_the_option() -> None:
    assert BrokerSettings.from_url("mqtts://broker", tls=True).tls
    assert BrokerSettings.from_url("mqtts://broker").port == 8883
    plain_port = BrokerSettings.from_url("mqtt://broker:1884", tls=True)
    assert plain_port.tls and plain_port.port == 1884
    assert not BrokerSettings.from_url("mqtt://broker").tls
