"""A simulated Sparkplug B edge node with its devices: births, data, deaths, commands.

DBIRTH marks writable metrics with the boolean property `writable`. A DCMD is applied as
the point's `on_write` says and answered by a DDATA carrying the device's value after the
command: the new value, the old one (refused: Sparkplug has no negative ack) or another
one (misreported).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

from adapters.base import Value, utcnow
from adapters.mqtt.client import BrokerSettings, MqttClient, Received, Will
from adapters.mqtt.json_mapping import MappingError
from adapters.mqtt.sparkplug.codec import (
    BDSEQ_METRIC,
    REBIRTH_METRIC,
    DataType,
    MessageType,
    SparkplugTopic,
    build_payload,
    decode_payload,
    encode_payload,
    metric_value,
    parse_topic,
    set_writable,
)
from simulators.mqtt.devices import RECONNECT_MAX, DeviceSpec, DeviceValues, PointKind

log = logging.getLogger(__name__)

SPARKPLUG_TYPE: dict[PointKind, DataType] = {
    "float64": DataType.DOUBLE,
    "int32": DataType.INT32,
    "int64": DataType.INT64,
    "bool": DataType.BOOLEAN,
    "string": DataType.STRING,
}
PROPERTY_METRICS = {
    "name": "Properties/Name",
    "type": "Properties/Type",
    "industry": "Properties/Industry",
    "region": "Properties/Region",
    "park": "Properties/Park",
    "enterprise": "Properties/Enterprise",
}

Metric = tuple[str | None, int | None, DataType, Value]


class SparkplugEdgeNode:
    """One edge node publishing NBIRTH/DBIRTH/DDATA and answering rebirth and write commands."""

    def __init__(self, broker_url: str, group: str, edge_node: str, devices: list[DeviceSpec]):
        self.group = group
        self.edge_node = edge_node
        self.devices = {d.id: DeviceValues(d) for d in devices}
        self.interval = min((d.interval for d in devices), default=1.0)
        self.bd_seq = 0
        self.seq = 0
        self.births = 0
        self.writes: list[tuple[str, str, Value]] = []
        self.dead: set[str] = set()
        self._aliases: dict[tuple[str, str], int] = {}
        self._start = time.monotonic()
        self._commands: deque[Received] = deque()
        self._wake = asyncio.Event()
        self._need_birth = False
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[None] | None = None
        self._client = MqttClient(
            BrokerSettings.from_url(
                broker_url, client_id=f"sim-{group}-{edge_node}", reconnect_max_delay=RECONNECT_MAX
            ),
            self._on_message,
            on_connect=self._on_connect,
            will=Will(self._topic(MessageType.NDEATH), self._death_payload(), qos=1),
        )
        self._client.add_subscription(str(self._topic(MessageType.NCMD)), 1)
        self._client.add_subscription(f"spBv1.0/{group}/DCMD/{edge_node}/+", 1)
        alias = 1
        for device_id, values in self.devices.items():
            for point in values.spec.points:
                self._aliases[(device_id, point.key)] = alias
                alias += 1

    def _topic(self, kind: MessageType, device: str | None = None) -> str:
        return str(SparkplugTopic(self.group, kind, self.edge_node, device))

    def _death_payload(self) -> bytes:
        payload = build_payload(
            [(BDSEQ_METRIC, None, DataType.UINT64, self.bd_seq)], timestamp=utcnow(), seq=None
        )
        return encode_payload(payload)

    async def start(self, within: float = 10.0) -> None:
        """Connect, subscribe to commands and publish the births."""
        self._client.start()
        if not await asyncio.to_thread(self._client.wait_subscribed, within):
            raise TimeoutError(f"edge node {self.edge_node}: broker not reached in {within} s")
        self._task = asyncio.create_task(self._run(), name=f"sim-edge-{self.edge_node}")

    async def stop(self) -> None:
        """Publish NDEATH and disconnect."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client.connected:
            await asyncio.to_thread(
                self._client.publish_and_wait,
                self._topic(MessageType.NDEATH),
                self._death_payload(),
                1,
            )
        await asyncio.to_thread(self._client.stop)

    def skip_sequence(self, count: int = 1) -> None:
        """Lose `count` messages on purpose: the next one shows a sequence gap."""
        self.seq = (self.seq + count) % 256

    def publish_births(self) -> None:
        """Publish NBIRTH and one DBIRTH per device (sequence restarts at 0)."""
        self.seq = 0
        node_metrics: list[Metric] = [
            (BDSEQ_METRIC, None, DataType.UINT64, self.bd_seq),
            (REBIRTH_METRIC, None, DataType.BOOLEAN, False),
        ]
        self._publish(MessageType.NBIRTH, None, node_metrics, seq=0)
        for device_id in self.devices:
            if device_id not in self.dead:
                self._device_birth(device_id)
        self.births += 1

    def _device_birth(self, device_id: str) -> None:
        t = time.monotonic() - self._start
        spec = self.devices[device_id].spec
        metrics: list[Metric] = [
            (PROPERTY_METRICS[field], None, DataType.STRING, text)
            for field, text in spec.classification().items()
        ]
        metrics.append(("Properties/Simulated", None, DataType.BOOLEAN, True))
        for point in spec.points:
            metrics.append(
                (
                    point.key,
                    self._aliases[(device_id, point.key)],
                    SPARKPLUG_TYPE[point.data_type],
                    self.devices[device_id].value(point, t),
                )
            )
        writable = {p.key for p in spec.points if p.writable}
        self._publish(
            MessageType.DBIRTH, device_id, metrics, seq=self._next_seq(), writable=writable
        )

    def publish_data(self, device_ids: list[str] | None = None) -> None:
        """Publish DDATA with every point of the given devices (all by default)."""
        t = time.monotonic() - self._start
        for device_id in device_ids or list(self.devices):
            if device_id in self.dead:
                continue
            values = self.devices[device_id]
            metrics: list[Metric] = [
                (
                    None,
                    self._aliases[(device_id, p.key)],
                    SPARKPLUG_TYPE[p.data_type],
                    values.value(p, t),
                )
                for p in values.spec.points
            ]
            self._publish(MessageType.DDATA, device_id, metrics, seq=self._next_seq())

    def publish_device_death(self, device_id: str) -> None:
        """Publish DDEATH for one device; it stays silent (also in rebirths) until revived."""
        self.dead.add(device_id)
        self._publish(MessageType.DDEATH, device_id, [], seq=self._next_seq())

    def revive(self, device_id: str) -> None:
        """Bring a dead device back: publish its DBIRTH, then its data as usual."""
        self.dead.discard(device_id)
        self._device_birth(device_id)

    def _next_seq(self) -> int:
        self.seq = (self.seq + 1) % 256
        return self.seq

    def _publish(
        self,
        kind: MessageType,
        device: str | None,
        metrics: list[Metric],
        *,
        seq: int,
        writable: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        payload = build_payload(metrics, timestamp=utcnow(), seq=seq)
        for metric in payload.metrics:
            if metric.name in writable:
                set_writable(metric)
        self._client.publish(self._topic(kind, device), encode_payload(payload), qos=0)

    async def _run(self) -> None:
        self.publish_births()
        next_data = time.monotonic() + self.interval
        while True:
            timeout = max(0.0, next_data - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            if self._need_birth:
                self._need_birth = False
                self.publish_births()
            while self._commands:
                self._command(self._commands.popleft())
            if time.monotonic() >= next_data:
                self.publish_data()
                next_data = time.monotonic() + self.interval

    def _on_connect(self, session_present: bool) -> None:
        if self._task is not None:  # a reconnect: say who we are again
            self._loop.call_soon_threadsafe(self._rebirth_soon)

    def _rebirth_soon(self) -> None:
        self._need_birth = True
        self._wake.set()

    def _on_message(self, message: Received) -> None:
        self._loop.call_soon_threadsafe(self._enqueue, message)

    def _enqueue(self, message: Received) -> None:
        self._commands.append(message)
        self._wake.set()

    def _command(self, message: Received) -> None:
        try:
            topic = parse_topic(message.topic or "")
            payload = decode_payload(message.payload)
        except MappingError as exc:
            log.warning("edge node %s: ignoring command: %s", self.edge_node, exc.detail)
            return
        if topic.message_type is MessageType.NCMD:
            if any(m.name == REBIRTH_METRIC and m.boolean_value for m in payload.metrics):
                self.publish_births()
            return
        if topic.message_type is not MessageType.DCMD or topic.device not in self.devices:
            return
        values = self.devices[topic.device]
        by_alias = {a: k for (d, k), a in self._aliases.items() if d == topic.device}
        answered = False
        for metric in payload.metrics:
            key = metric.name or by_alias.get(metric.alias, "")
            point = values.point(key)
            if point is None:
                log.warning("edge node %s: DCMD for unknown metric %r", self.edge_node, key)
                continue
            try:
                value = metric_value(metric, SPARKPLUG_TYPE[point.data_type], key)
            except MappingError as exc:
                log.warning("edge node %s: refused write: %s", self.edge_node, exc.detail)
                continue
            outcome = values.write(key, value)
            answered = True
            if outcome.error is not None:
                log.info(
                    "edge node %s: refused write: %s", self.edge_node, outcome.error,
                    extra={"device": topic.device, "point": key},
                )  # fmt: skip
                continue
            self.writes.append((topic.device, key, value))
        if answered:
            self.publish_data([topic.device])
