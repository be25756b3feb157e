"""The MQTT adapter: one broker connection, JSON topics and Sparkplug B, into the sink."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from adapters.base import (
    NULL_OBSERVER,
    AdapterObserver,
    DeviceEvent,
    DeviceEventKind,
    PointInfo,
    Quality,
    Record,
    Sample,
    Sink,
    Value,
    new_sample,
    new_samples,
    utcnow,
)
from adapters.control import ControlTargetUnknown
from adapters.mqtt.client import BrokerSettings, MqttClient, Received, Will
from adapters.mqtt.config import MqttConnection
from adapters.mqtt.control import MqttControl
from adapters.mqtt.devices import DeviceBook, KnownDevice, check_id_part, invalid_codes
from adapters.mqtt.handoff import Handoff
from adapters.mqtt.json_mapping import (
    JsonTopicMapper,
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
LATENCY_SAMPLE_EVERY = 100  # observe the handling time of one message in this many
YIELD_EVERY = 200  # messages handled before letting the event loop run other tasks
STATE_PREFIX = f"{codec.NAMESPACE}/STATE/"
SPARKPLUG_PREFIX = f"{codec.NAMESPACE}/"


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
    last_error: str | None = None  # why the last connection attempt failed, while it does


class _Identification:
    def __init__(self, template: TopicTemplate, paths: dict[str, JsonPath]) -> None:
        self.template = template
        self.paths = paths


class _Route:
    """What a topic is for, worked out once per topic (the hot path looks it up)."""

    __slots__ = ("bound", "device", "error", "kind", "target", "topic")

    def __init__(
        self,
        kind: str,
        target: Any = None,
        bound: dict[str, str] | None = None,
        error: MappingError | None = None,
    ) -> None:
        self.kind = kind  # json, identification, ack, sparkplug, state, none
        self.target = target  # the JsonTopicMapper, _Identification or SparkplugTopic
        self.bound = bound or {}
        self.error = error
        self.device: KnownDevice | None = None  # json: the device, once admitted


class MqttAdapter:
    """Subscribes to one broker and turns JSON and Sparkplug B messages into records."""

    protocol = "mqtt"

    def __init__(
        self,
        config: MqttConnection,
        sink: Sink,
        *,
        clock: Callable[[], float] = time.monotonic,
        observer: AdapterObserver = NULL_OBSERVER,
    ) -> None:
        self.config = config
        self.sink = sink
        self._clock = clock
        self._observer = observer
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
                    "writable": JsonPath(i.writable),
                },
            )
            for i in config.identification
        ]
        sp = config.sparkplug
        self._sessions = (
            SparkplugSessions(sp.rebirth_interval, config.limits.max_devices) if sp else None
        )
        self.control = MqttControl(config, self.book, self._sessions, self._get_client, observer)
        self._routes: dict[str, _Route] = {}
        self._route_limit = 4 * config.limits.max_devices + 1024
        self._max_payload = config.limits.max_payload_bytes
        self._entity_keys: dict[Entity, str] = {}
        self._messages = 0
        self._samples = 0
        self._rebirths = 0
        self._handoff: Handoff[Received] | None = None
        self._out: list[Record] = []  # records made and not yet handed to the sink
        self._client: MqttClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()

    def _get_client(self) -> MqttClient | None:
        return self._client

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
            last_error=client.last_error if client else None,
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
        commands = self.config.control.json_commands
        if commands is not None:
            f = TopicTemplate(commands.ack_topic).subscription
            subs[f] = max(commands.qos, subs.get(f, 0))
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
            on_messages=self._handoff.offer_many,
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
            on_connect_failed=self._on_connect_failed,
            will=self._state_message(online=False),
        )
        for topic_filter, qos in self.subscriptions():
            self._client.add_subscription(topic_filter, qos)
        self._client.start()
        self._stopped.clear()
        self._task = asyncio.create_task(self._consume(), name=f"mqtt-{self.config.id}")

    async def wait_ready(self, within: float = 10.0) -> bool:
        """Wait up to `within` seconds until connected and every subscription is acknowledged.

        When the adapter was not started yet (e.g. its run() task has not begun), wait for
        that too.
        """
        deadline = time.monotonic() + within
        while self._client is None:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        remaining = max(0.0, deadline - time.monotonic())
        return await asyncio.to_thread(self._client.wait_subscribed, remaining)

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

    # Control (the contract of adapters/control.py) ------------------------------------

    def controls(self, device: str) -> bool:
        """Report whether `device` was found (or is declared) behind this connection."""
        return self.control.controls(device)

    async def read(self, device: str, point: str) -> Sample:
        """Return the last value received live for the point.

        MQTT has no request/response read: devices publish when they choose, so this is
        the newest live sample the connection received, not a fresh request. Raises
        ControlUnavailable when none was received or the device is not reachable now.
        """
        return await self.control.read(device, point)

    async def write(self, device: str, point: str, value: Value) -> Value:
        """Send a write and return the value the device confirmed.

        JSON devices: a command on `control.json_commands.command_topic`, confirmed by the
        ack with the same request id (a negative ack raises ControlRejected). Sparkplug B
        devices: a DCMD, confirmed by the next DDATA carrying the requested value; when
        only other values come back before `control.timeout`, the last of them is
        returned (the device did not take the value). Nothing is sent for unknown or
        non-writable points, wrong value types, or an unreachable device
        (ControlTargetUnknown, ControlNotAllowed, ControlUnavailable). ControlTimeout:
        no confirmation in time.
        """
        return await self.control.write(device, point, value)

    # Processing -----------------------------------------------------------------------

    async def _consume(self) -> None:
        handoff = self._handoff
        assert handoff is not None
        observe = self._observer.request_observed
        countdown = LATENCY_SAMPLE_EVERY
        handle = self._handle
        while messages := await handoff.get_all():
            # Records go to the sink in bulk, every YIELD_EVERY messages and at the end;
            # a message counts as done (its handoff slot freed) once its records are in.
            for start in range(0, len(messages), YIELD_EVERY):
                chunk = messages[start : start + YIELD_EVERY]
                try:
                    for message in chunk:
                        countdown -= 1
                        if not countdown:
                            countdown = LATENCY_SAMPLE_EVERY
                            started = time.perf_counter()
                            self._handle_logged(message)
                            observe(self.protocol, "message", time.perf_counter() - started)
                            continue
                        try:
                            handle(message)
                        except Exception:
                            self._log_failure(message)
                    try:
                        await self._flush()
                    except Exception:  # e.g. PipelineClosed: the sink counted what it refused
                        log.exception(
                            "mqtt connection %s: the sink refused the records of %d messages",
                            self.config.id,
                            len(chunk),
                        )
                finally:
                    handoff.done(len(chunk))
                if len(messages) > YIELD_EVERY:
                    await asyncio.sleep(0)  # a long batch must not starve the loop's other tasks

    def _handle_logged(self, message: Received) -> None:
        try:
            self._handle(message)
        except Exception:
            self._log_failure(message)

    def _log_failure(self, message: Received) -> None:
        log.exception("mqtt connection %s: failed on topic %r", self.config.id, message.topic)

    def _route(self, topic: str) -> _Route:
        if self._sessions is not None and topic.startswith(SPARKPLUG_PREFIX):
            if topic.startswith(STATE_PREFIX):
                return _Route("state")  # host application state, ours or another host's
            try:
                parsed = codec.parse_topic(topic)
                for part, what in (
                    (parsed.group, "group id"),
                    (parsed.edge_node, "edge node id"),
                    (parsed.device, "device id"),
                ):
                    if part is not None:
                        check_id_part(part, f"Sparkplug {what}")
            except MappingError as exc:
                return _Route("none", error=exc)
            return _Route("sparkplug", parsed)
        if self.control.ack_template is not None:
            bound = self.control.ack_template.match(topic)
            if bound is not None:
                return _Route("ack", bound=bound)
        for ident in self._ident:
            bound = ident.template.match(topic)
            if bound is not None:
                return _Route("identification", ident, bound)
        for mapper in self._json:
            bound = mapper.template.match(topic)
            if bound is not None:
                return _Route("json", mapper, bound)
        return _Route("none", error=MappingError(Reason.BAD_TOPIC, "no topic mapping matches"))

    async def process(self, message: Received) -> None:
        """Turn one received message into records; refusals are counted, never raised."""
        try:
            self._handle(message)
        finally:
            await self._flush()

    async def _flush(self) -> None:
        """Hand every record made so far to the sink in one call (waits while it is full)."""
        out = self._out
        if out:
            self._out = []
            await self.sink.put_many(out)

    def _handle(self, message: Received) -> None:
        """Turn one message into records in `_out`; refusals are counted, never raised."""
        self._messages += 1
        topic = message.topic
        try:
            if topic is None:
                raise MappingError(Reason.BAD_TOPIC, "topic is not valid UTF-8")
            limit = self._max_payload
            if len(message.payload) > limit:
                raise MappingError(
                    Reason.OVERSIZED_PAYLOAD,
                    f"{len(message.payload)} bytes, limits.max_payload_bytes={limit}",
                )
            route = self._routes.get(topic)
            if route is None:
                route = self._route(topic)
                if len(self._routes) >= self._route_limit:
                    self._routes.clear()  # a flood of topics: start over rather than grow
                self._routes[topic] = route
            kind = route.kind
            if kind == "json":
                self._telemetry(route, topic, message)
            elif kind == "sparkplug":
                self._sparkplug(route.target, topic, message)
            elif kind == "identification":
                self._identify(route.target, route.bound, topic, message)
            elif kind == "ack":
                self.control.on_ack(route.bound, topic, message.payload)
            elif route.error is not None:
                raise route.error
        except MappingError as exc:
            self.rejections_log.reject(exc.reason, topic, exc.detail)

    def _report(self, problems: Iterable[MappingError], topic: str) -> None:
        for problem in problems:
            self.rejections_log.reject(problem.reason, topic, problem.detail)

    def _bound_device(
        self, bound: dict[str, str], topic: str
    ) -> tuple[str, dict[str, str], dict[str, str | None]]:
        device = check_id_part(bound["device"], "device segment")
        key = self.book.json_key(device)
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

    def _identify(
        self, ident: _Identification, bound: dict[str, str], topic: str, message: Received
    ) -> None:
        if not message.payload:
            return  # an empty message clears a retained identification: nothing to learn
        document = parse_json_object(message.payload)
        key, identity, classification = self._bound_device(bound, topic)
        simulated: bool | None = None
        writable: list[str] | None = None
        for field, path in ident.paths.items():
            found, raw = path.find(document)
            if not found or raw is None:
                continue
            if field == "writable":
                if isinstance(raw, list) and all(isinstance(k, str) for k in raw):
                    writable = raw
                else:
                    self._report(
                        [MappingError(Reason.WRONG_TYPE, f"{path.path}: expected point keys")],
                        topic,
                    )
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
        device.segments = bound
        if writable is not None and self.book.report_writable(device, writable):
            changed = True
        if changed:
            self._register(device)

    def _telemetry(self, route: _Route, topic: str, message: Received) -> None:
        # The hot path: after a topic's first message, its device comes from the route.
        mapper: JsonTopicMapper = route.target
        document = parse_json_object(message.payload)
        device = route.device
        if device is not None and self.book.devices.get(device.info.key) is not device:
            device = route.device = None  # forgotten since: admit it again
        if device is not None:
            known = mapper.map_known(document, message.received, device.points)
            if known is not None:  # the steady state: every point known, every value fine
                # The samples of the message, as the general path below makes them.
                known_ts, known_points, known_values = known
                key = device.info.key
                live = not message.retain or mapper.timestamped
                if live and not device.online:
                    device.online = True
                    self._out.append(DeviceEvent(DeviceEventKind.ONLINE, key, message.received))
                made = new_samples(key, known_points, known_ts, known_values, Quality.GOOD, live)
                if live:
                    device.keep_latest(known_points, made)
                self._out += made
                self._samples += len(made)
                return
        if device is None:
            key, identity, classification = self._bound_device(route.bound, topic)
        else:
            key = device.info.key
        mapped = mapper.map(document, message.received, None if device is None else device.points)
        values = mapped.values
        if not values:
            if mapped.problems:  # each refused field is counted once, not the message again
                self._report(mapped.problems, topic)
                return
            raise MappingError(Reason.MISSING_FIELD, "the message carries no usable point")
        if mapped.problems:
            self._report(mapped.problems, topic)
        changed = False
        if device is None:
            device, changed = self.book.admit(key, identity, classification)
            device.segments = route.bound
            route.device = device
        points = device.points
        accepted: Collection[str] = points
        if changed or mapped.unknown:
            accepted, refused, grown = self.book.add_points(
                device, (mapper.point_info(v) for v in values)
            )
            self._report(refused, topic)
            if changed or grown:
                self._register(device)
        live = not message.retain or mapper.timestamped
        if live and not device.online:  # a JSON device is online from its first live message
            device.online = True
            self._out.append(DeviceEvent(DeviceEventKind.ONLINE, key, message.received))
        ts = mapped.ts
        if accepted is points and not mapped.unknown:  # the steady state: every point known
            made = [
                new_sample(key, point, ts, value, quality, live) for point, value, quality in values
            ]
            if live:
                device.keep_latest([v[0] for v in values], made)
            self._out += made
            self._samples += len(made)
            return
        emit, keep = self._out.append, device.keep_sample
        stored = 0
        for point, value, quality in values:
            if point in accepted:
                sample = new_sample(key, point, ts, value, quality, live)
                if live:
                    keep(point, sample)
                stored += 1
                emit(sample)
        self._samples += stored

    def _sparkplug(self, parsed: codec.SparkplugTopic, topic: str, message: Received) -> None:
        assert self._sessions is not None
        payload = codec.decode_payload(message.payload)
        outcome = self._sessions.handle(parsed, payload, message.received, self._clock())
        if outcome.problems:
            self._report(outcome.problems, topic)
        if outcome.rebirth is not None:
            self._ask_rebirth(*outcome.rebirth)
        for birth in outcome.births:
            self._birth(birth, outcome.samples, topic)
        if outcome.samples:
            self._metric_samples(outcome.samples, topic)
        for entity in outcome.deaths:
            key = self._entity_key(entity)
            dead = self.book.get(key)
            if dead is not None:
                dead.online = False
                self._out.append(DeviceEvent(DeviceEventKind.OFFLINE, key, message.received))

    def _entity_key(self, entity: Entity) -> str:
        key = self._entity_keys.get(entity)
        if key is None:
            if len(self._entity_keys) >= self._route_limit:
                self._entity_keys.clear()
            key = self._entity_keys[entity] = self.book.sparkplug_key(*entity)
        return key

    def _birth(self, birth: Birth, samples: list[MetricSample], topic: str) -> None:
        group, edge, device_id = birth.entity
        if device_id is None and not (
            self.config.sparkplug and self.config.sparkplug.register_edge_nodes
        ):
            return
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
            return
        device.entity = birth.entity
        self.book.report_writable(device, (m.name for m in birth.metrics if m.writable))
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
        self._register(device)
        device.online = True
        self._out.append(DeviceEvent(DeviceEventKind.ONLINE, key, utcnow()))

    def _metric_samples(self, samples: list[MetricSample], topic: str) -> None:
        emit, writes = self._out.append, self.control.writes
        watching = bool(writes)  # a write waits for its confirming DDATA
        entity: Entity | None = None
        key = ""
        device: KnownDevice | None = None
        stored = 0
        for sample in samples:
            name = sample.metric.name
            if name.startswith(CONTROL_PREFIXES):
                continue
            if sample.entity != entity:
                entity = sample.entity
                key = self._entity_key(entity)
                device = self.book.get(key)
            if device is None:
                if entity[2] is not None:
                    self._report(
                        [MappingError(Reason.DEVICE_LIMIT, f"device {key} was refused at birth")],
                        topic,
                    )
                continue
            if name not in device.points:
                self._report(
                    [
                        MappingError(
                            Reason.POINT_LIMIT, f"device {key}: metric {name} was refused at birth"
                        )
                    ],
                    topic,
                )
                continue
            record = new_sample(key, name, sample.ts, sample.value, sample.quality, sample.live)
            if sample.live:
                device.keep_sample(name, record)
                if watching:
                    writes.observed(key, name, sample.value)
            stored += 1
            emit(record)
        self._samples += stored

    def _ask_rebirth(self, group: str, edge: str) -> None:
        if self._client is None:
            return
        topic = str(codec.SparkplugTopic(group, codec.MessageType.NCMD, edge))
        self._client.publish(topic, codec.rebirth_request(utcnow()), qos=0)
        self._rebirths += 1
        log.info(
            "mqtt connection %s: asked edge node %s/%s to rebirth", self.config.id, group, edge,
            extra={"device": self._entity_key((group, edge, None))},
        )  # fmt: skip

    def _register(self, device: KnownDevice) -> None:
        info = self.book.registration(device)
        self._out.append(DeviceEvent(DeviceEventKind.REGISTERED, info.key, utcnow(), info=info))

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
        # Runs on paho's thread; publishing and the observer are thread-safe.
        self._observer.connection_changed(self.protocol, self.config.url, True)
        log.info(
            "mqtt connection %s: connected to %s (session present: %s)",
            self.config.id,
            self.config.url,
            session_present,
        )
        state = self._state_message(online=True)
        if state is not None and self._client is not None:
            self._client.publish(state.topic, state.payload, state.qos, state.retain)

    def _on_connect_failed(self, reason: str) -> None:
        # Runs on paho's thread; MqttClient logs the reason (once while it repeats).
        self._observer.connection_changed(self.protocol, self.config.url, False)

    def _on_disconnect(self, reason: str) -> None:
        self._observer.connection_changed(self.protocol, self.config.url, False)
        if self._stopped.is_set():
            log.info("mqtt connection %s: disconnected from %s", self.config.id, self.config.url)
            return
        log.warning(
            "mqtt connection %s: lost %s (%s); reconnecting with backoff",
            self.config.id,
            self.config.url,
            reason,
            extra={"endpoint": self.config.url},
        )


class MqttAdapters:
    """Every configured MQTT connection, run together (the registry's adapter for `mqtt`)."""

    protocol = "mqtt"

    def __init__(
        self,
        connections: Sequence[MqttConnection],
        sink: Sink,
        *,
        observer: AdapterObserver = NULL_OBSERVER,
    ) -> None:
        self.adapters = [MqttAdapter(c, sink, observer=observer) for c in connections if c.enabled]

    async def wait_ready(self, within: float = 10.0) -> bool:
        """Wait up to `within` seconds until every connection is subscribed."""
        ready = await asyncio.gather(*(a.wait_ready(within) for a in self.adapters))
        return all(ready)

    def controls(self, device: str) -> bool:
        """Report whether any connection serves `device`."""
        return any(a.controls(device) for a in self.adapters)

    def _adapter(self, device: str) -> MqttAdapter:
        for adapter in self.adapters:
            if adapter.controls(device):
                return adapter
        ids = ", ".join(a.config.id for a in self.adapters) or "none"
        raise ControlTargetUnknown(f"no mqtt connection ({ids}) serves device {device}")

    async def read(self, device: str, point: str) -> Sample:
        """Return the last value received live for the point (see MqttAdapter.read)."""
        return await self._adapter(device).read(device, point)

    async def write(self, device: str, point: str, value: Value) -> Value:
        """Write and return the value the device confirmed (see MqttAdapter.write)."""
        return await self._adapter(device).write(device, point, value)

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
