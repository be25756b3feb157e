"""A simulated Sparkplug B edge node with its devices: births, data, deaths, commands."""

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
    parse_topic,
)
from simulators.mqtt.devices import DeviceSpec, DeviceValues, PointKind

log = logging.getLogger(__name__)

SPARKPLUG_TYPE: dict[PointKind, DataType] = {
    "float": DataType.DOUBLE,
    "int": DataType.INT32,
    "bool": DataType.BOOLEAN,
    "string": DataType.STRING,
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
        self._aliases: dict[tuple[str, str], int] = {}
        self._start = time.monotonic()
        self._commands: deque[Received] = deque()
        self._wake = asyncio.Event()
        self._need_birth = False
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[None] | None = None
        self._client = MqttClient(
            BrokerSettings.from_url(broker_url, client_id=f"sim-{group}-{edge_node}"),
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
        t = time.monotonic() - self._start
        for device_id, values in self.devices.items():
            spec = values.spec
            metrics: list[Metric] = [
                ("Properties/Type", None, DataType.STRING, spec.type),
                ("Properties/Industry", None, DataType.STRING, spec.industry),
                ("Properties/Region", None, DataType.STRING, spec.region),
                ("Properties/Simulated", None, DataType.BOOLEAN, True),
            ]
            for point in spec.points:
                metrics.append(
                    (
                        point.key,
                        self._aliases[(device_id, point.key)],
                        SPARKPLUG_TYPE[point.data_type],
                        values.value(point, t),
                    )
                )
            self._publish(MessageType.DBIRTH, device_id, metrics, seq=self._next_seq())
        self.births += 1

    def publish_data(self, device_ids: list[str] | None = None) -> None:
        """Publish DDATA with every point of the given devices (all by default)."""
        t = time.monotonic() - self._start
        for device_id in device_ids or list(self.devices):
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
        """Publish DDEATH for one device."""
        self._publish(MessageType.DDEATH, device_id, [], seq=self._next_seq())

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
    ) -> None:
        payload = build_payload(metrics, timestamp=utcnow(), seq=seq)
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
        written = False
        for metric in payload.metrics:
            key = metric.name or by_alias.get(metric.alias, "")
            field = metric.WhichOneof("value")
            value: Value = getattr(metric, field) if field else None
            point = values.point(key)
            if point is not None and point.data_type == "int" and isinstance(value, int):
                value = value - (1 << 32) if value >= 1 << 31 else value
            error = values.write(key, value)
            if error is not None:
                log.warning("edge node %s: refused write: %s", self.edge_node, error)
                continue
            self.writes.append((topic.device, key, value))
            written = True
        if written:
            self.publish_data([topic.device])
