"""Control writes over MQTT: what is in flight, and the messages that confirm it.

MQTT has no request/response of its own, so a write is a command plus a message
that confirms it:

- JSON devices: a command `{"request_id", "point", "value"}` on the configured command
  topic, answered by an ack on the ack topic carrying the same request id, whether the
  write was applied and the value the device now holds.
- Sparkplug B devices: a DCMD, confirmed by the device's next DDATA that carries the
  metric. Sparkplug has no negative ack: a device that refuses simply keeps reporting
  its old value.

`read` has nothing to ask either: it returns the last value received live.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adapters.base import AdapterObserver, Sample, Value, utcnow
from adapters.control import (
    ControlNotAllowed,
    ControlRejected,
    ControlTargetUnknown,
    ControlTimeout,
    ControlUnavailable,
)
from adapters.mqtt.client import MqttClient
from adapters.mqtt.config import JsonCommands, MqttConnection
from adapters.mqtt.devices import DeviceBook, KnownDevice, check_id_part
from adapters.mqtt.json_mapping import TopicTemplate, parse_json_object
from adapters.mqtt.jsonpath import JsonPath
from adapters.mqtt.sparkplug import codec
from adapters.mqtt.sparkplug.session import SparkplugSessions

log = logging.getLogger("adapters.mqtt.control")

SCALARS = (bool, int, float, str, type(None))


def same_value(requested: Value, confirmed: Value) -> bool:
    """Tell whether a confirmed value is the requested one (floats to float32 precision)."""
    if isinstance(requested, bool) or isinstance(confirmed, bool):
        return type(requested) is type(confirmed) and requested == confirmed
    if isinstance(requested, int | float) and isinstance(confirmed, int | float):
        return math.isclose(requested, confirmed, rel_tol=1e-6, abs_tol=1e-9)
    return requested == confirmed


def check_json_value(data_type: str, value: Value, where: str) -> Value:
    """Check a value to write against a JSON point's data type; raise ControlNotAllowed."""
    if data_type == "float64":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and not math.isfinite(float(value)):  # type: ignore[arg-type]
            raise ControlNotAllowed(f"{where}: {value!r} is not a finite number")
    elif data_type == "int64":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif data_type == "bool":
        ok = isinstance(value, bool)
    elif data_type == "string":
        ok = isinstance(value, str)
    else:
        raise ControlNotAllowed(f"{where}: points of type {data_type} cannot be written")
    if not ok:
        raise ControlNotAllowed(f"{where}: expected a {data_type} value, got {value!r}")
    return value


@dataclass(eq=False)
class PendingWrite:
    """One write that was sent and waits for its confirmation."""

    device: str
    point: str
    requested: Value
    future: asyncio.Future[Value]
    request_id: str | None = None
    seen: list[Value] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Ack:
    """What an ack message says, read through the configured JSON paths."""

    request_id: str | None
    ok: bool
    value: Value
    error: str | None
    problem: str | None = None


class AckReader:
    """Reads acks through the configured JSON paths."""

    def __init__(self, config: JsonCommands) -> None:
        self._request_id = JsonPath(config.request_id)
        self._value = JsonPath(config.value)
        self._ok = JsonPath(config.ok)
        self._error = JsonPath(config.error)

    def read(self, document: dict[str, Any]) -> Ack:
        """Return the ack a decoded document carries; `problem` says what was malformed."""
        found, request_id = self._request_id.find(document)
        rid = request_id if found and isinstance(request_id, str) else None
        found, ok = self._ok.find(document)
        problem = None
        if found and not isinstance(ok, bool):
            problem, ok = f"{self._ok.path} is {ok!r}, expected true or false", False
        found_value, value = self._value.find(document)
        if found_value and not isinstance(value, SCALARS):
            problem = f"{self._value.path} is not a single value"
            value = None
        found, error = self._error.find(document)
        reason = str(error)[:500] if found and error is not None else None
        return Ack(rid, ok is not False, value if found_value else None, reason, problem)


class PendingWrites:
    """Writes in flight on one connection: at most one per point, found by request id."""

    def __init__(self) -> None:
        self._by_point: dict[tuple[str, str], PendingWrite] = {}
        self._by_request: dict[str, PendingWrite] = {}

    def __bool__(self) -> bool:
        return bool(self._by_point)

    def open(self, device: str, point: str, requested: Value, *, json: bool) -> PendingWrite:
        """Reserve the point for one write; refuse when a write to it is still in flight."""
        if (device, point) in self._by_point:
            raise ControlNotAllowed(
                f"device {device} point {point}: a write is still waiting for its "
                "confirmation; try again when it has finished"
            )
        future: asyncio.Future[Value] = asyncio.get_running_loop().create_future()
        pending = PendingWrite(device, point, requested, future)
        if json:
            pending.request_id = uuid.uuid4().hex
            self._by_request[pending.request_id] = pending
        self._by_point[(device, point)] = pending
        return pending

    def close(self, pending: PendingWrite) -> None:
        """Forget a write (confirmed, refused or timed out)."""
        self._by_point.pop((pending.device, pending.point), None)
        if pending.request_id is not None:
            self._by_request.pop(pending.request_id, None)

    def acked(self, device: str, ack: Ack) -> bool:
        """Settle the write an ack answers; False when it answers none of ours."""
        pending = self._by_request.get(ack.request_id or "")
        if pending is None or pending.device != device or pending.future.done():
            return False
        if ack.problem is not None:
            pending.future.set_exception(
                ControlRejected(
                    f"device {device} point {pending.point}: malformed ack: {ack.problem}"
                )
            )
        elif not ack.ok:
            pending.future.set_exception(
                ControlRejected(
                    f"device {device} point {pending.point}: the device refused the write of "
                    f"{pending.requested!r}: {ack.error or 'no reason given'}"
                )
            )
        else:
            pending.future.set_result(ack.value)
        return True

    def observed(self, device: str, point: str, value: Value) -> None:
        """Note a live value of a point; it confirms a DCMD once it equals the request."""
        pending = self._by_point.get((device, point))
        if pending is None or pending.request_id is not None or pending.future.done():
            return
        pending.seen.append(value)
        if same_value(pending.requested, value):
            pending.future.set_result(value)


Command = tuple[str, Callable[[PendingWrite], bytes], int, Value]
"""Topic, payload (given the pending write, for its request id), QoS, value sent."""


class MqttControl:
    """Reads and writes points of the devices behind one broker connection."""

    protocol = "mqtt"

    def __init__(
        self,
        config: MqttConnection,
        book: DeviceBook,
        sessions: SparkplugSessions | None,
        client: Callable[[], MqttClient | None],
        observer: AdapterObserver,
    ) -> None:
        self.config = config
        self.book = book
        self.sessions = sessions
        self._client = client
        self._observer = observer
        self.writes = PendingWrites()
        commands = config.control.json_commands
        self.ack_template = TopicTemplate(commands.ack_topic) if commands else None
        self._command_template = TopicTemplate(commands.command_topic) if commands else None
        self._acks = AckReader(commands) if commands else None

    def controls(self, device: str) -> bool:
        """Report whether `device` was found (or is declared) behind this connection."""
        declared = self.book.declared.get(device)
        return device in self.book.devices or (declared is not None and declared.enabled)

    async def read(self, device: str, point: str) -> Sample:
        """Return the last value received live for the point (MQTT cannot ask for one)."""
        known = self._target(device, point)
        self._reachable(known, point)
        sample = known.latest(point)
        if sample is None:
            raise ControlUnavailable(
                f"device {device} point {point}: no live value received yet on mqtt "
                f"connection {self.config.id}; MQTT cannot ask a device for a value"
            )
        return sample

    async def write(self, device: str, point: str, value: Value) -> Value:
        """Send a write and return the value the device confirmed (see MqttAdapter.write)."""
        known = self._target(device, point)
        if not self.book.writable(known, point):
            raise ControlNotAllowed(
                f"device {device} point {point} is not writable: declare it with "
                "writable: true under the connection's devices, or let the device report it "
                "writable and allow it in control.allow_reported_writable"
            )
        self._reachable(known, point)
        started = time.perf_counter()
        if known.entity is not None:
            topic, payload, qos, sent = self._dcmd(known, point, value)
        else:
            topic, payload, qos, sent = self._json_command(known, point, value)
        pending = self.writes.open(device, point, sent, json=known.entity is None)
        try:
            client = self._client()
            assert client is not None  # checked by _reachable
            client.publish(topic, payload(pending), qos)
            log.info(
                "mqtt connection %s: wrote %r to device %s point %s on %s",
                self.config.id, sent, device, point, topic,
                extra={"device": device, "point": point},
            )  # fmt: skip
            return await self._confirmation(pending)
        finally:
            self.writes.close(pending)
            self._observer.request_observed(self.protocol, "write", time.perf_counter() - started)

    def on_ack(self, bound: dict[str, str], topic: str, payload: bytes) -> None:
        """Settle the write an ack message answers (raises MappingError when malformed)."""
        assert self._acks is not None
        document = parse_json_object(payload)
        device = check_id_part(bound["device"], "device segment")
        ack = self._acks.read(document)
        if not self.writes.acked(self.book.json_key(device), ack):
            log.debug(
                "mqtt connection %s: ack on %s answers no write of ours", self.config.id, topic
            )

    def _target(self, device: str, point: str) -> KnownDevice:
        known = self.book.get(device)
        if known is None:
            if self.controls(device):
                raise ControlUnavailable(
                    f"device {device} is declared on mqtt connection {self.config.id} but has "
                    "not been seen yet"
                )
            raise ControlTargetUnknown(f"no device {device} on mqtt connection {self.config.id}")
        if point not in known.points:
            raise ControlTargetUnknown(
                f"device {device} has no point {point} (known: "
                f"{', '.join(sorted(known.points)) or 'none yet'})"
            )
        return known

    def _reachable(self, known: KnownDevice, point: str) -> None:
        client = self._client()
        if client is None or not client.connected:
            raise ControlUnavailable(
                f"device {known.info.key}: mqtt connection {self.config.id} is not connected "
                f"to {self.config.url}"
            )
        if known.entity is not None:
            assert self.sessions is not None
            if self.sessions.metric(known.entity, point) is None:
                raise ControlUnavailable(
                    f"device {known.info.key} point {point}: the Sparkplug B device is not "
                    "online (no current birth)"
                )

    def _json_command(self, known: KnownDevice, point: str, value: Value) -> Command:
        commands = self.config.control.json_commands
        template = self._command_template
        key = known.info.key
        if commands is None or template is None:
            raise ControlNotAllowed(
                f"device {key}: mqtt connection {self.config.id} has no "
                "control.json_commands, so JSON devices cannot be written"
            )
        info = known.points[point]
        sent = check_json_value(info.data_type, value, f"device {key} point {point}")
        missing = [n for n, named in template.levels if named and n not in known.segments]
        if missing:
            raise ControlUnavailable(
                f"device {key}: command topic {template.template} needs "
                f"{', '.join(missing)}, which its messages have not carried"
            )
        topic = template.render(**known.segments)

        def payload(pending: PendingWrite) -> bytes:
            body = {"request_id": pending.request_id, "point": point, "value": sent}
            return json.dumps(body).encode()

        return topic, payload, commands.qos, sent

    def _dcmd(self, known: KnownDevice, point: str, value: Value) -> Command:
        assert known.entity is not None and self.sessions is not None
        group, edge, device_id = known.entity
        metric = self.sessions.metric(known.entity, point)
        assert metric is not None  # checked by _reachable
        where = f"device {known.info.key} point {point}"
        try:
            sent = codec.command_value(metric.datatype, value, where)
        except ValueError as exc:
            raise ControlNotAllowed(str(exc)) from None
        kind = codec.MessageType.NCMD if device_id is None else codec.MessageType.DCMD
        topic = str(codec.SparkplugTopic(group, kind, edge, device_id))
        name = None if metric.alias is not None else metric.name
        body = codec.build_payload(
            [(name, metric.alias, codec.DataType(metric.datatype), sent)],
            timestamp=utcnow(),
            seq=None,
        )
        data = codec.encode_payload(body)
        return topic, lambda _: data, 0, sent

    async def _confirmation(self, pending: PendingWrite) -> Value:
        timeout = self.config.control.timeout
        done, _ = await asyncio.wait({pending.future}, timeout=timeout)
        if done:
            return pending.future.result()
        if pending.seen:
            log.warning(
                "mqtt connection %s: device %s point %s reported %r, not the written %r, "
                "within %.1f s",
                self.config.id, pending.device, pending.point, pending.seen[-1],
                pending.requested, timeout,
                extra={"device": pending.device, "point": pending.point},
            )  # fmt: skip
            return pending.seen[-1]
        what = "ack" if pending.request_id is not None else "DDATA carrying the point"
        raise ControlTimeout(
            f"device {pending.device} point {pending.point}: no {what} within {timeout} s "
            f"after writing {pending.requested!r}; the effect is unknown"
        )
