"""The MQTT adapter: one broker connection, JSON topics and Sparkplug B, into the sink."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from adapters.base import (
    DeviceEvent,
    DeviceEventKind,
    PointInfo,
    Sample,
    Sink,
    utcnow,
)
from adapters.mqtt.client import BrokerSettings, MqttClient, Received, Will
from adapters.mqtt.config import MqttConnection
from adapters.mqtt.devices import DeviceBook, KnownDevice, check_id_part, invalid_codes
from adapters.mqtt.handoff import Handoff
from adapters.mqtt.json_mapping import (
    JsonTopicMapper,
    MappedValue,
    MappingError,
    TopicTemplate,
    parse_json_object,
)
from adapters.mqtt.jsonpath import JsonPath
from adapters.mqtt.rejections import Reason, Rejections
from adapters.mqtt.sparkplug import codec
from adapters.mqtt.sparkplug.session import Birth, Entity, MetricSample, SparkplugSessions

log = logging.getLogger(__name__)

CONTROL_PREFIXES = ("Node Control/", "Device Control/", "Properties/", codec.BDSEQ_METRIC)
PROPERTY_FIELDS = {
    "Properties/Name": "name",
    "Properties/Type": "device_type",
    "Properties/Industry": "industry",
    "Properties/Region": "region",
    "Properties/Park": "park",
    "Properties/Enterprise": "enterprise",
}
SIMULATED_PROPERTY = "Properties/Simulated"


@dataclass(frozen=True, slots=True)
class MqttStats:
    """Counters of one adapter, for the collector to export."""

    messages: int
    samples: int
    rebirth_requests: int
    devices: int
    connects: int
    connected: bool
    rejections: Counter[str]


class _Identification:
    def __init__(self, template: TopicTemplate, paths: dict[str, JsonPath]) -> None:
        self.template = template
        self.paths = paths


class MqttAdapter:
    """Subscribes to one broker and turns JSON and Sparkplug B messages into records."""

    protocol = "mqtt"

    def __init__(
        self,
        config: MqttConnection,
        sink: Sink,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.sink = sink
        self._clock = clock
        self.book = DeviceBook(config)
        self.rejections_log = Rejections(f"mqtt connection {config.id}", clock=clock)
        self._json = [JsonTopicMapper(t) for t in config.topics]
        self._ident = [
            _Identification(
                TopicTemplate(i.topic),
                {
                    "name": JsonPath(i.name),
                    "device_type": JsonPath(i.type),
                    "industry": JsonPath(i.industry),
                    "region": JsonPath(i.region),
                    "park": JsonPath(i.park),
                    "enterprise": JsonPath(i.enterprise),
                    "simulated": JsonPath(i.simulated),
                },
            )
            for i in config.identification
        ]
        sp = config.sparkplug
        self._sessions = (
            SparkplugSessions(sp.rebirth_interval, config.limits.max_devices) if sp else None
        )
        self._messages = 0
        self._samples = 0
        self._rebirths = 0
        self._handoff: Handoff[Received] | None = None
        self._client: MqttClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()

    # Public surface -------------------------------------------------------------------

    @property
    def rejections(self) -> Counter[str]:
        """Refusals so far, per reason (handoff drops included as handoff_full)."""
        counts = Counter(self.rejections_log.counts)
        dropped = self._handoff.dropped if self._handoff is not None else 0
        if dropped:
            counts[Reason.HANDOFF_FULL.value] += dropped
        return counts

    @property
    def stats(self) -> MqttStats:
        """A snapshot of this adapter's counters."""
        client = self._client
        return MqttStats(
            messages=self._messages,
            samples=self._samples,
            rebirth_requests=self._rebirths,
            devices=len(self.book.devices),
            connects=client.connects if client else 0,
            connected=client.connected if client else False,
            rejections=self.rejections,
        )

    def subscriptions(self) -> list[tuple[str, int]]:
        """Return the topic filters (with QoS) this connection subscribes to."""
        subs: dict[str, int] = {}
        for topic in self.config.topics:
            f = TopicTemplate(topic.topic).subscription
            subs[f] = max(topic.qos, subs.get(f, 0))
        for ident in self.config.identification:
            f = TopicTemplate(ident.topic).subscription
            subs[f] = max(ident.qos, subs.get(f, 0))
        if self.config.sparkplug is not None:
            for group in self.config.sparkplug.groups:
                f = f"{codec.NAMESPACE}/{group}/#"
                subs[f] = max(self.config.sparkplug.qos, subs.get(f, 0))
        return sorted(subs.items())

    async def start(self) -> None:
        """Connect in the background and start handing messages to the sink."""
        if self._task is not None:
            raise RuntimeError(f"mqtt connection {self.config.id} is already started")
        loop = asyncio.get_running_loop()
        h = self.config.handoff
        self._handoff = Handoff(loop, h.capacity, h.on_full, h.block_timeout)
        self._client = MqttClient(
            self._settings(),
            self._handoff.offer,
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
            will=self._state_message(online=False),
        )
        for topic_filter, qos in self.subscriptions():
            self._client.add_subscription(topic_filter, qos)
        self._client.start()
        self._stopped.clear()
        self._task = asyncio.create_task(self._consume(), name=f"mqtt-{self.config.id}")

    async def wait_ready(self, within: float = 10.0) -> bool:
        """Wait up to `within` seconds until connected and every subscription is acknowledged."""
        if self._client is None:
            raise RuntimeError("start() the adapter first")
        return await asyncio.to_thread(self._client.wait_subscribed, within)

    async def stop(self, drain_within: float = 5.0) -> None:
        """Disconnect, then process what was already received (for up to drain_within s)."""
        self._stopped.set()
        client, task, handoff = self._client, self._task, self._handoff
        if client is None or task is None or handoff is None:
            return
        self._task = None  # a second stop() (e.g. from run()) has nothing left to do
        state = self._state_message(online=False)
        if state is not None and client.connected:
            await asyncio.to_thread(
                client.publish_and_wait, state.topic, state.payload, 1, True, 2.0
            )
        await asyncio.to_thread(client.stop)
        handoff.close()
        done, _ = await asyncio.wait({task}, timeout=drain_within)
        if not done:
            log.warning(
                "mqtt connection %s: %d received messages not processed at stop",
                self.config.id,
                handoff.pending(),
            )
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self) -> None:
        """Run until stop() is called (or the task is cancelled)."""
        if self._task is None:
            await self.start()
        try:
            await self._stopped.wait()
        finally:
            await self.stop()

    async def __aenter__(self) -> MqttAdapter:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        """Publish on this connection (e.g. a command)."""
        if self._client is None:
            raise RuntimeError("start() the adapter first")
        self._client.publish(topic, payload, qos, retain)

    # Processing -----------------------------------------------------------------------

    async def _consume(self) -> None:
        assert self._handoff is not None
        while (message := await self._handoff.get()) is not None:
            try:
                await self.process(message)
            except Exception:
                log.exception(
                    "mqtt connection %s: failed on topic %r", self.config.id, message.topic
                )
            finally:
                self._handoff.done()

    async def process(self, message: Received) -> None:
        """Turn one received message into records; refusals are counted, never raised."""
        self._messages += 1
        topic = message.topic
        try:
            if topic is None:
                raise MappingError(Reason.BAD_TOPIC, "topic is not valid UTF-8")
            limit = self.config.limits.max_payload_bytes
            if len(message.payload) > limit:
                raise MappingError(
                    Reason.OVERSIZED_PAYLOAD,
                    f"{len(message.payload)} bytes, limits.max_payload_bytes={limit}",
                )
            if self._sessions is not None and topic.startswith(codec.NAMESPACE + "/"):
                await self._sparkplug(topic, message)
                return
            for ident in self._ident:
                bound = ident.template.match(topic)
                if bound is not None:
                    await self._identify(ident, bound, topic, message)
                    return
            for mapper in self._json:
                bound = mapper.template.match(topic)
                if bound is not None:
                    await self._telemetry(mapper, bound, topic, message)
                    return
            raise MappingError(Reason.BAD_TOPIC, "no topic mapping matches")
        except MappingError as exc:
            self.rejections_log.reject(exc.reason, topic, exc.detail)

    def _report(self, problems: Iterable[MappingError], topic: str) -> None:
        for problem in problems:
            self.rejections_log.reject(problem.reason, topic, problem.detail)

    def _bound_device(
        self, bound: dict[str, str], topic: str
    ) -> tuple[str, dict[str, str], dict[str, str | None]]:
        device = check_id_part(bound["device"], "device segment")
        key = self.book.key(device)
        identity = {"broker": self.config.url, "topic": topic, "device": device}
        classification: dict[str, str | None] = {
            "device_type": bound.get("type"),
            "industry": bound.get("industry"),
            "region": bound.get("region"),
            "park": bound.get("park"),
            "enterprise": bound.get("enterprise"),
        }
        for field, problem in invalid_codes(classification).items():
            self._report([problem], topic)
            classification[field] = None
        return key, identity, classification

    async def _identify(
        self, ident: _Identification, bound: dict[str, str], topic: str, message: Received
    ) -> None:
        document = parse_json_object(message.payload)
        key, identity, classification = self._bound_device(bound, topic)
        simulated: bool | None = None
        for field, path in ident.paths.items():
            found, raw = path.find(document)
            if not found or raw is None:
                continue
            if field == "simulated":
                if isinstance(raw, bool):
                    simulated = raw
                else:
                    self._report(
                        [MappingError(Reason.WRONG_TYPE, f"{path.path}: expected true/false")],
                        topic,
                    )
                continue
            if not isinstance(raw, str) or not raw or len(raw) > 200:
                self._report(
                    [MappingError(Reason.WRONG_TYPE, f"{path.path}: expected a short string")],
                    topic,
                )
                continue
            problems = invalid_codes({field: raw})
            if problems:
                self._report(problems.values(), topic)
                continue
            classification[field] = raw
        device, changed = self.book.admit(key, identity, classification, simulated)
        if changed:
            await self._register(device)

    async def _telemetry(
        self, mapper: JsonTopicMapper, bound: dict[str, str], topic: str, message: Received
    ) -> None:
        document = parse_json_object(message.payload)
        key, identity, classification = self._bound_device(bound, topic)
        mapped = mapper.map(document, message.received)
        self._report(mapped.problems, topic)
        if not mapped.values:
            raise MappingError(Reason.MISSING_FIELD, "the message carries no usable point")
        device, changed = self.book.admit(key, identity, classification)
        accepted, refused, grown = self.book.add_points(
            device, (_point_info(v) for v in mapped.values)
        )
        self._report(refused, topic)
        if changed or grown:
            await self._register(device)
        live = not message.retain or mapper.config.timestamp is not None
        for value in mapped.values:
            if value.point in accepted:
                await self._put(
                    Sample(key, value.point, mapped.ts, value.value, value.quality, live=live)
                )

    async def _sparkplug(self, topic: str, message: Received) -> None:
        assert self._sessions is not None
        if topic.startswith(f"{codec.NAMESPACE}/STATE/"):
            return  # host application state, ours or another host's
        parsed = codec.parse_topic(topic)
        for part, what in (
            (parsed.group, "group id"),
            (parsed.edge_node, "edge node id"),
            (parsed.device, "device id"),
        ):
            if part is not None:
                check_id_part(part, f"Sparkplug {what}")
        payload = codec.decode_payload(message.payload)
        outcome = self._sessions.handle(parsed, payload, message.received, self._clock())
        self._report(outcome.problems, topic)
        if outcome.rebirth is not None:
            self._ask_rebirth(*outcome.rebirth)
        registered: set[str] = set()
        for birth in outcome.births:
            key = await self._birth(birth, outcome.samples, topic)
            if key is not None:
                registered.add(key)
        for sample in outcome.samples:
            await self._metric_sample(sample, topic)
        for entity in outcome.deaths:
            key = self._entity_key(entity)
            if self.book.get(key) is not None:
                await self._put(DeviceEvent(DeviceEventKind.OFFLINE, key, message.received))

    def _entity_key(self, entity: Entity) -> str:
        group, edge, device = entity
        return self.book.key(group, edge) if device is None else self.book.key(group, edge, device)

    async def _birth(self, birth: Birth, samples: list[MetricSample], topic: str) -> str | None:
        group, edge, device_id = birth.entity
        if device_id is None and not (
            self.config.sparkplug and self.config.sparkplug.register_edge_nodes
        ):
            return None
        key = self._entity_key(birth.entity)
        classification: dict[str, str | None] = {}
        simulated: bool | None = None
        for sample in samples:
            if sample.entity != birth.entity:
                continue
            name = sample.metric.name
            if name in PROPERTY_FIELDS and isinstance(sample.value, str):
                classification[PROPERTY_FIELDS[name]] = sample.value
            elif name == SIMULATED_PROPERTY and isinstance(sample.value, bool):
                simulated = sample.value
        for field, problem in invalid_codes(classification).items():
            self._report([problem], topic)
            classification[field] = None
        identity = {"broker": self.config.url, "group": group, "edge_node": edge}
        if device_id is not None:
            identity["device"] = device_id
        try:
            device, _ = self.book.admit(key, identity, classification, simulated)
        except MappingError as exc:
            self._report([exc], topic)
            return None
        points = [
            PointInfo(
                key=m.name,
                address=m.name if m.alias is None else f"{m.name} (alias {m.alias})",
                data_type=codec.POINT_TYPE[codec.DataType(m.datatype)],
            )
            for m in birth.metrics
            if not m.name.startswith(CONTROL_PREFIXES) and m.datatype in codec.SAMPLED_TYPES
        ]
        _, refused, _ = self.book.add_points(device, points)
        self._report(refused, topic)
        await self._register(device)
        await self._put(DeviceEvent(DeviceEventKind.ONLINE, key, utcnow()))
        return key

    async def _metric_sample(self, sample: MetricSample, topic: str) -> None:
        if sample.metric.name.startswith(CONTROL_PREFIXES):
            return
        key = self._entity_key(sample.entity)
        device = self.book.get(key)
        if device is None:
            if sample.entity[2] is not None:
                self._report(
                    [MappingError(Reason.DEVICE_LIMIT, f"device {key} was refused at birth")],
                    topic,
                )
            return
        if sample.metric.name not in device.points:
            self._report(
                [
                    MappingError(
                        Reason.POINT_LIMIT,
                        f"device {key}: metric {sample.metric.name} was refused at birth",
                    )
                ],
                topic,
            )
            return
        await self._put(
            Sample(key, sample.metric.name, sample.ts, sample.value, sample.quality, sample.live)
        )

    def _ask_rebirth(self, group: str, edge: str) -> None:
        if self._client is None:
            return
        topic = str(codec.SparkplugTopic(group, codec.MessageType.NCMD, edge))
        self._client.publish(topic, codec.rebirth_request(utcnow()), qos=0)
        self._rebirths += 1
        log.info(
            "mqtt connection %s: asked edge node %s/%s to rebirth", self.config.id, group, edge
        )

    async def _register(self, device: KnownDevice) -> None:
        info = device.registration()
        await self._put(DeviceEvent(DeviceEventKind.REGISTERED, info.key, utcnow(), info=info))

    async def _put(self, record: Sample | DeviceEvent) -> None:
        if isinstance(record, Sample):
            self._samples += 1
        await self.sink.put(record)

    # Connection -----------------------------------------------------------------------

    def _settings(self) -> BrokerSettings:
        c = self.config
        tls = c.tls
        return BrokerSettings(
            host=c.host,
            port=c.port,
            version=c.version,
            client_id=c.effective_client_id,
            persistent_session=c.persistent_session,
            session_expiry=c.session_expiry,
            keepalive=c.keepalive,
            reconnect_min_delay=c.reconnect_min_delay,
            reconnect_max_delay=c.reconnect_max_delay,
            username=c.username,
            password=c.password.get_secret_value() if c.password else None,
            tls=c.uses_tls,
            ca_file=str(tls.ca_file) if tls and tls.ca_file else None,
            cert_file=str(tls.cert_file) if tls and tls.cert_file else None,
            key_file=str(tls.key_file) if tls and tls.key_file else None,
            tls_insecure=bool(tls and tls.insecure),
        )

    def _state_message(self, online: bool) -> Will | None:
        sp = self.config.sparkplug
        if sp is None or sp.host_id is None:
            return None
        body: dict[str, Any] = {"online": online, "timestamp": codec.ms(utcnow())}
        return Will(
            f"{codec.NAMESPACE}/STATE/{sp.host_id}", json.dumps(body).encode(), qos=1, retain=True
        )

    def _on_connect(self, session_present: bool) -> None:
        # Runs on paho's thread; publishing is thread-safe.
        log.info(
            "mqtt connection %s: connected to %s (session present: %s)",
            self.config.id,
            self.config.url,
            session_present,
        )
        state = self._state_message(online=True)
        if state is not None and self._client is not None:
            self._client.publish(state.topic, state.payload, state.qos, state.retain)

    def _on_disconnect(self, reason: str) -> None:
        log.warning(
            "mqtt connection %s: lost %s (%s); reconnecting with backoff",
            self.config.id,
            self.config.url,
            reason,
        )


class MqttAdapters:
    """Every configured MQTT connection, run together (the registry's adapter for `mqtt`)."""

    protocol = "mqtt"

    def __init__(self, connections: Sequence[MqttConnection], sink: Sink) -> None:
        self.adapters = [MqttAdapter(c, sink) for c in connections if c.enabled]

    @property
    def rejections(self) -> Counter[str]:
        """Return the rejections of every connection, summed by reason."""
        total: Counter[str] = Counter()
        for adapter in self.adapters:
            total.update(adapter.rejections)
        return total

    async def run(self) -> None:
        """Run every connection until stop() is called."""
        await asyncio.gather(*(a.run() for a in self.adapters))

    async def stop(self) -> None:
        """Stop every connection, processing what each had already received."""
        await asyncio.gather(*(a.stop() for a in self.adapters))


def _point_info(value: MappedValue) -> PointInfo:
    return PointInfo(
        key=value.point,
        address=value.address,
        data_type=value.data_type,
        unit=value.unit,
        description=value.description,
    )
