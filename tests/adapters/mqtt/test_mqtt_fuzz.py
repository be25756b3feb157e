"""10,000 hostile MQTT messages mixed into a valid stream, through the collector into PostgreSQL.

Every hostile message is built to be refused exactly once, so the sum of the adapter's
rejection counters must equal the number sent; every valid sample must be stored once.
The RNG is seeded, so a failure replays identically.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Value
from adapters.mqtt.adapter import MqttAdapters
from adapters.mqtt.client import BrokerSettings, MqttClient
from adapters.mqtt.config import MqttConnection
from adapters.mqtt.sparkplug.codec import DataType, build_payload, encode_payload
from tests.adapters.mqtt.mqttstack import collector, query, unique, until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SEED = 20241123
BAD_MESSAGES = 10_000
GOOD_JSON = 1_200
GOOD_SPARKPLUG = 400
JSON_DEVICES = 4
MAX_PAYLOAD = 64 * 1024
START = datetime(2024, 11, 23, 8, 0, tzinfo=UTC)

Message = tuple[str, bytes]
Expected = Counter[tuple[str, str, datetime, Value]]


class Stream:
    """Builds the valid stream and the hostile messages, tracking what each should do."""

    def __init__(self, rng: random.Random, root: str, group: str) -> None:
        self.rng = rng
        self.root = root
        self.group = group
        self.expected: Expected = Counter()
        self.tick = 0
        self.good_seq = 0  # of the good edge node
        self.evil_seq = 0  # of the edge node that plays sequence games (awaiting after a gap)
        self.alias_seq = 0  # of the edge node that receives unknown aliases

    def _ts(self) -> datetime:
        self.tick += 1
        return START + timedelta(milliseconds=self.tick)

    def _json_body(self, ts: datetime, values: dict[str, Any]) -> bytes:
        return json.dumps({"ts": round(ts.timestamp() * 1000), "values": values}).encode()

    def _sp(self, kind: str, node: str, device: str | None = None) -> str:
        tail = f"/{device}" if device else ""
        return f"spBv1.0/{self.group}/{kind}/{node}{tail}"

    # --- valid -----------------------------------------------------------------------

    def good_json(self, index: int | None = None) -> Message:
        device = f"good-{self.rng.randrange(JSON_DEVICES) if index is None else index}"
        ts = self._ts()
        a = round(self.rng.uniform(-100, 100), 3) + 0.5
        b = self.rng.randint(-1000, 1000)
        c = self.rng.random() < 0.5
        for point, value in (("a", a), ("b", b), ("c", c)):
            self.expected[(f"fuzz/{device}", point, ts, value)] += 1
        return f"{self.root}/{device}/t", self._json_body(ts, {"a": a, "b": b, "c": c})

    def good_births(self) -> list[Message]:
        ts = self._ts()
        node = build_payload(
            [("bdSeq", None, DataType.UINT64, 0), ("Node Control/Rebirth", None, DataType.BOOLEAN,
             False)], timestamp=ts, seq=0,
        )  # fmt: skip
        values: list[tuple[str, int, DataType, Value]] = [
            ("x", 1, DataType.DOUBLE, 1.5),
            ("y", 2, DataType.INT64, -3),
            ("z", 3, DataType.BOOLEAN, True),
        ]
        device = build_payload(
            [("Properties/Type", None, DataType.STRING, "kiln"), *values], timestamp=ts, seq=1
        )
        self.good_seq = 1
        for name, _, _, value in values:
            self.expected[(f"fuzz/{self.group}/good-node/spd-0", name, ts, value)] += 1
        return [
            (self._sp("NBIRTH", "good-node"), encode_payload(node)),
            (self._sp("DBIRTH", "good-node", "spd-0"), encode_payload(device)),
        ]

    def evil_birth(self, node: str) -> Message:
        """NBIRTH of an edge node that will misbehave (the birth itself is valid)."""
        birth = build_payload(
            [("bdSeq", None, DataType.UINT64, 0), ("m", 1, DataType.DOUBLE, 0.0)],
            timestamp=self._ts(), seq=0,
        )  # fmt: skip
        if node == "evil-seq":
            self.evil_seq = 0
        else:
            self.alias_seq = 0
        return self._sp("NBIRTH", node), encode_payload(birth)

    def _good_seq(self) -> int:
        self.good_seq = (self.good_seq + 1) % 256
        return self.good_seq

    def good_sparkplug(self) -> Message:
        ts = self._ts()
        x, y, z = round(self.rng.uniform(0, 1000), 3), self.rng.randint(-(2**40), 2**40), True
        payload = build_payload(
            [(None, 1, DataType.DOUBLE, x), (None, 2, DataType.INT64, y),
             (None, 3, DataType.BOOLEAN, z)], timestamp=ts, seq=self._good_seq(),
        )  # fmt: skip
        for name, value in (("x", x), ("y", y), ("z", z)):
            self.expected[(f"fuzz/{self.group}/good-node/spd-0", name, ts, value)] += 1
        return self._sp("DDATA", "good-node", "spd-0"), encode_payload(payload)

    # --- hostile: each is refused exactly once ----------------------------------------

    def random_bytes(self) -> Message:
        data = self.rng.randbytes(self.rng.randint(1, 300))
        if self.rng.random() < 0.5:
            return f"{self.root}/good-{self.rng.randrange(JSON_DEVICES)}/t", data
        return self._sp("NDATA", f"ghost-{self.rng.randrange(40)}"), data

    def truncated_protobuf(self) -> Message:
        payload = build_payload(
            [(f"m{i}", i, DataType.DOUBLE, float(i)) for i in range(8)],
            timestamp=self._ts(), seq=1,
        )  # fmt: skip
        data = encode_payload(payload)
        cut = data[: self.rng.randint(1, len(data) - 1)]
        kind = self.rng.choice(["NDATA", "DDATA"])
        device = "d" if kind == "DDATA" else None
        return self._sp(kind, f"ghost-{self.rng.randrange(40)}", device), cut

    def huge(self) -> Message:
        size = self.rng.randint(MAX_PAYLOAD + 1, 300_000)
        body = b'{"ts": 1, "values": {"a": "' + b"x" * size + b'"}}'
        return f"{self.root}/good-{self.rng.randrange(JSON_DEVICES)}/t", body

    def wrong_types(self) -> Message:
        topic = f"{self.root}/good-{self.rng.randrange(JSON_DEVICES)}/t"
        ts = round(self._ts().timestamp() * 1000)
        bodies: list[Any] = [
            {"ts": ts, "values": {"a": [1, 2, 3]}},
            {"ts": ts, "values": {"b": {"nested": 1}}},
            {"ts": ts, "values": "not an object"},
            {"ts": ts, "values": 42},
            {"ts": "yesterday", "values": {"a": 1.0}},
            {"ts": True, "values": {"a": 1.0}},
            {"ts": 1e30, "values": {"a": 1.0}},
            {"values": {"a": 1.0}},
            [1, 2, 3],
            "just a string",
            None,
        ]
        body = self.rng.choice(bodies)
        if self.rng.random() < 0.2:  # Sparkplug: right seq, a metric of the wrong type
            payload = build_payload(
                [(None, 1, DataType.STRING, "not a double")], timestamp=self._ts(),
                seq=self._good_seq(),
            )  # fmt: skip
            return self._sp("DDATA", "good-node", "spd-0"), encode_payload(payload)
        return topic, json.dumps(body).encode()

    def deep_json(self) -> Message:
        topic = f"{self.root}/good-{self.rng.randrange(JSON_DEVICES)}/t"
        if self.rng.random() < 0.5:
            depth = self.rng.randint(5_000, 20_000)  # beyond the parser's recursion limit
            return topic, b"[" * depth + b"]" * depth
        depth = self.rng.randint(20, 400)  # parses, but a point cannot be an object
        inner = "1"
        for _ in range(depth):
            inner = '{"k": ' + inner + "}"
        return topic, f'{{"ts": 1700000000000, "values": {{"a": {inner}}}}}'.encode()

    def unicode_garbage(self) -> Message:
        chars = "".join(chr(self.rng.choice([0x4E2D, 0x1F4A5, 0x202E, 0xFEFF, 0x3000, 0xE9]))
                        for _ in range(self.rng.randint(1, 30)))  # fmt: skip
        choice = self.rng.randrange(3)
        if choice == 0:  # a device segment that cannot be a device id
            ts = round(self._ts().timestamp() * 1000)
            body = json.dumps({"ts": ts, "values": {"a": 1.0}}).encode()
            return f"{self.root}/{chars}/t", body
        topic = f"{self.root}/good-{self.rng.randrange(JSON_DEVICES)}/t"
        if choice == 1:  # valid UTF-8, not JSON
            return topic, chars.encode()
        return topic, b"\xff\xfe" + chars.encode("utf-16-le") + b"\xed\xa0\x80"  # not UTF-8

    def device_flood(self) -> Message:
        device = f"flood-{self.rng.randrange(10**9)}"
        ts = round(self._ts().timestamp() * 1000)
        return f"{self.root}/{device}/t", json.dumps({"ts": ts, "values": {"a": 1.0}}).encode()

    def point_flood(self) -> Message:
        topic = f"{self.root}/good-{self.rng.randrange(JSON_DEVICES)}/t"
        ts = round(self._ts().timestamp() * 1000)
        point = f"extra-{self.rng.randrange(10**9)}"
        return topic, json.dumps({"ts": ts, "values": {point: 1.0}}).encode()

    def unknown_alias(self) -> Message:
        self.alias_seq = (self.alias_seq + 1) % 256
        payload = build_payload(
            [(None, self.rng.randint(2, 10**6), DataType.DOUBLE, 1.0)],
            timestamp=self._ts(), seq=self.alias_seq,
        )  # fmt: skip
        return self._sp("NDATA", "evil-alias"), encode_payload(payload)

    def seq_game(self) -> Message:
        wrong = (self.evil_seq + 1 + self.rng.randint(1, 254)) % 256
        seq = self.rng.choice([wrong, None, 256 + wrong])
        payload = build_payload([(None, 1, DataType.DOUBLE, 2.0)], timestamp=self._ts(), seq=None)
        if seq is not None:
            payload.seq = seq
        return self._sp("NDATA", "evil-seq"), encode_payload(payload)

    def bad_topic(self) -> Message:
        return self.rng.choice(
            [
                (self._sp("BOGUS", "node"), b"\x08\x01"),
                (f"spBv1.0/{self.group}/NDATA/a/b", b"\x08\x01"),
                (f"spBv1.0/{self.group}/DDATA/only-node", b"\x08\x01"),
                (f"{self.root}//t", b'{"ts": 1, "values": {"a": 1}}'),
            ]
        )


HOSTILE: dict[str, tuple[int, Callable[[Stream], Message]]] = {
    "random bytes": (1_500, Stream.random_bytes),
    "truncated protobuf": (1_200, Stream.truncated_protobuf),
    "huge payloads": (100, Stream.huge),
    "wrong types": (1_300, Stream.wrong_types),
    "deep JSON nesting": (300, Stream.deep_json),
    "unicode garbage": (1_000, Stream.unicode_garbage),
    "device flood": (1_600, Stream.device_flood),
    "point flood": (800, Stream.point_flood),
    "unknown aliases": (900, Stream.unknown_alias),
    "sequence games": (1_000, Stream.seq_game),
    "bad topics": (300, Stream.bad_topic),
}


def connection(url: str, root: str, group: str) -> MqttConnection:
    return MqttConnection.model_validate(
        {
            "id": "fuzz",
            "protocol": "mqtt",
            "url": url,
            "topics": [
                {
                    "topic": root + "/{device}/t",
                    "timestamp": {"path": "$.ts", "format": "epoch_ms"},
                    "point_object": "$.values",
                }
            ],
            "sparkplug": {"groups": [group], "rebirth_interval": 1.0},
            # Exactly the valid devices and points fit: floods beyond them are refused.
            "limits": {
                "max_devices": JSON_DEVICES + 1,
                "max_points_per_device": 3,
                "max_payload_bytes": MAX_PAYLOAD,
            },
        }
    )


def stored(dsn: str) -> Expected:
    rows = query(
        dsn,
        "SELECT d.key, p.key, s.ts, s.value, p.data_type FROM sample s "
        "JOIN point p ON p.id = s.point_id JOIN device d ON d.id = p.device_id",
    )
    out: Expected = Counter()
    for device, point, ts, value, data_type in rows:
        typed: Value = value
        if data_type == "bool":
            typed = bool(value)
        elif data_type.startswith("int"):
            typed = int(value)
        out[(device, point, ts, typed)] += 1
    return out


async def test_hostile_messages_are_counted_and_valid_ones_stored_exactly_once(
    database_url: str, mqtt_url: str, tmp_path: Path
) -> None:
    assert sum(n for n, _ in HOSTILE.values()) == BAD_MESSAGES
    rng = random.Random(SEED)
    stream = Stream(rng, unique("fz"), unique("fzsp"))
    config = connection(mqtt_url, stream.root, stream.group)
    publisher = MqttClient(BrokerSettings.from_url(mqtt_url, client_id=unique("fuzzer-")), print)
    publisher.start()
    assert await asyncio.to_thread(publisher.wait_connected, 10)
    try:
        async with collector(database_url, [config], tmp_path) as service:
            (adapters,) = service.adapters
            assert isinstance(adapters, MqttAdapters)
            (adapter,) = adapters.adapters
            assert await adapters.wait_ready(10)

            # Valid devices first, so that they hold every device and point slot.
            setup = [stream.good_json(i) for i in range(JSON_DEVICES)]
            setup += stream.good_births()
            setup += [stream.evil_birth("evil-seq"), stream.evil_birth("evil-alias")]
            for topic, payload in setup:
                publisher.publish(topic, payload, 1)
            book, _ = await until(
                lambda: asyncio.sleep(0, adapter.book.devices), lambda d: len(d) == 5, 10
            )
            assert len(book) == JSON_DEVICES + 1 and not adapter.rejections

            plan = [name for name, (count, _) in HOSTILE.items() for _ in range(count)]
            plan += ["good json"] * GOOD_JSON + ["good sparkplug"] * GOOD_SPARKPLUG
            rng.shuffle(plan)
            makers: dict[str, Callable[[Stream], Message]] = {
                name: make for name, (_, make) in HOSTILE.items()
            }
            makers["good json"] = Stream.good_json
            makers["good sparkplug"] = Stream.good_sparkplug
            for index, name in enumerate(plan):
                topic, payload = makers[name](stream)
                publisher.publish(topic, payload, 1)
                if name == "sequence games" and rng.random() < 0.1:
                    # The edge node is born again (valid, refused nothing) and games on.
                    publisher.publish(*stream.evil_birth("evil-seq"), 1)
                if index % 500 == 0:
                    await asyncio.sleep(0)

            def refusals() -> int:
                return sum(adapter.rejections.values())

            refused, _ = await until(
                lambda: asyncio.sleep(0, refusals()), lambda n: n >= BAD_MESSAGES, 40
            )
            assert await service.pipeline.wait_idle(20)
            rows, _ = await until(
                lambda: asyncio.to_thread(stored, database_url),
                lambda s: sum(s.values()) >= sum(stream.expected.values()),
                10,
            )
            counts = adapter.rejections
            assert adapter.stats.connected  # still running: nothing crashed the connection
        assert refused == BAD_MESSAGES, f"{refused} refusals for {BAD_MESSAGES}: {counts}"
        assert sum(counts.values()) == BAD_MESSAGES
        assert "handoff_full" not in counts
        assert len(counts) >= 12, counts  # the hostile kinds land under many reasons
        duplicates = +(rows - Counter(set(rows)))
        assert not duplicates, f"stored more than once: {list(duplicates)[:5]}"
        assert rows == stream.expected, (
            f"missing: {list((stream.expected - rows).items())[:5]}; "
            f"unexpected: {list((rows - stream.expected).items())[:5]}"
        )
    finally:
        publisher.stop()
