"""Sparkplug B host state: births, sequence numbers, aliases and deaths per edge node.

`SparkplugSessions.handle` is pure bookkeeping: it takes one decoded message and
says what it means (births, samples, deaths, refusals, whether to ask the edge node
for a rebirth). It never guesses: a sequence gap or data before a birth is refused
and answered with a rebirth request.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from adapters.base import Quality, Value
from adapters.mqtt.json_mapping import MappingError
from adapters.mqtt.rejections import Reason
from adapters.mqtt.sparkplug import sparkplug_b_pb2 as pb
from adapters.mqtt.sparkplug.codec import (
    BDSEQ_METRIC,
    MessageType,
    SparkplugTopic,
    from_ms,
    metric_quality,
    metric_value,
    metric_writable,
)

Entity = tuple[str, str, str | None]  # (group, edge node, device or None for the node)


@dataclass(frozen=True, slots=True)
class MetricDef:
    """A metric as its birth declared it."""

    name: str
    alias: int | None
    datatype: int
    writable: bool = False


class MetricSample(NamedTuple):
    """One value of one metric of one edge node or device."""

    entity: Entity
    metric: MetricDef
    value: Value
    ts: datetime
    quality: Quality
    live: bool


_new_sample = tuple.__new__  # MetricSample without its Python-level __new__ (hot path)


@dataclass(frozen=True, slots=True)
class Birth:
    """An edge node or device announced itself with these metrics."""

    entity: Entity
    metrics: tuple[MetricDef, ...]


@dataclass(slots=True)
class Outcome:
    """What one Sparkplug message means."""

    births: list[Birth] = field(default_factory=list)
    samples: list[MetricSample] = field(default_factory=list)
    deaths: list[Entity] = field(default_factory=list)
    problems: list[MappingError] = field(default_factory=list)
    rebirth: tuple[str, str] | None = None


@dataclass(slots=True)
class _Metrics:
    by_alias: dict[int, MetricDef] = field(default_factory=dict)
    by_name: dict[str, MetricDef] = field(default_factory=dict)


@dataclass(slots=True)
class _Device:
    metrics: _Metrics
    online: bool = True


@dataclass(slots=True)
class _Node:
    metrics: _Metrics
    seq: int
    bd_seq: int | None
    online: bool = True
    awaiting_rebirth: bool = False
    devices: dict[str, _Device] = field(default_factory=dict)


class SparkplugSessions:
    """Birth/death/sequence/alias state of every edge node seen by one host connection."""

    def __init__(self, rebirth_interval: float, max_nodes: int) -> None:
        self.rebirth_interval = rebirth_interval
        self.max_nodes = max_nodes
        self.nodes: dict[tuple[str, str], _Node] = {}
        self._asked: OrderedDict[tuple[str, str], float] = OrderedDict()

    def device_online(self, group: str, edge: str, device: str | None) -> bool:
        """Tell whether the node (and device, if given) is born and not dead."""
        node = self.nodes.get((group, edge))
        if node is None or not node.online:
            return False
        if device is None:
            return True
        dev = node.devices.get(device)
        return dev is not None and dev.online

    def metric(self, entity: Entity, name: str) -> MetricDef | None:
        """Return a metric of a born, online edge node or device (None otherwise)."""
        group, edge, device = entity
        node = self.nodes.get((group, edge))
        if node is None or not node.online or node.awaiting_rebirth:
            return None
        if device is None:
            return node.metrics.by_name.get(name)
        dev = node.devices.get(device)
        return dev.metrics.by_name.get(name) if dev is not None and dev.online else None

    def handle(
        self, topic: SparkplugTopic, payload: pb.Payload, received: datetime, now: float
    ) -> Outcome:
        """Apply one message; `now` is a monotonic clock reading for rebirth pacing."""
        out = Outcome()
        key = (topic.group, topic.edge_node)
        kind = topic.message_type
        if kind in (MessageType.NCMD, MessageType.DCMD):
            return out
        if kind is MessageType.NBIRTH:
            self._node_birth(key, payload, received, now, out)
            return out
        if kind is MessageType.NDEATH:
            self._node_death(key, payload, out)
            return out
        node = self.nodes.get(key)
        if node is None or not node.online:
            out.problems.append(
                MappingError(
                    Reason.BEFORE_BIRTH, f"{kind.value} from edge node {key[1]} before its NBIRTH"
                )
            )
            self._ask_rebirth(key, now, out)
            return out
        if node.awaiting_rebirth:
            out.problems.append(
                MappingError(
                    Reason.AWAITING_REBIRTH,
                    f"{kind.value} from edge node {key[1]} while its rebirth is awaited",
                )
            )
            self._ask_rebirth(key, now, out)
            return out
        expected = (node.seq + 1) % 256
        if not payload.HasField("seq") or payload.seq != expected:
            got = payload.seq if payload.HasField("seq") else "none"
            out.problems.append(
                MappingError(
                    Reason.SEQUENCE_GAP,
                    f"{kind.value} from edge node {key[1]}: seq {got}, expected {expected}",
                )
            )
            node.awaiting_rebirth = True
            self._ask_rebirth(key, now, out)
            return out
        node.seq = expected
        if kind is MessageType.NDATA:
            self._data((*key, None), node.metrics, payload, received, out)
        elif kind is MessageType.DBIRTH:
            assert topic.device is not None
            metrics = self._birth_metrics(payload, out)
            node.devices[topic.device] = _Device(metrics)
            entity = (*key, topic.device)
            out.births.append(Birth(entity, tuple(metrics.by_name.values())))
            self._data(entity, metrics, payload, received, out, birth=True)
        elif kind is MessageType.DDATA:
            assert topic.device is not None
            device = node.devices.get(topic.device)
            if device is None or not device.online:
                out.problems.append(
                    MappingError(
                        Reason.BEFORE_BIRTH,
                        f"DDATA from device {topic.device} of edge node {key[1]} before its DBIRTH",
                    )
                )
                self._ask_rebirth(key, now, out)
            else:
                self._data((*key, topic.device), device.metrics, payload, received, out)
        elif kind is MessageType.DDEATH:
            assert topic.device is not None
            device = node.devices.get(topic.device)
            if device is not None and device.online:
                device.online = False
                out.deaths.append((*key, topic.device))
        if any(p.reason in {Reason.UNKNOWN_ALIAS, Reason.UNKNOWN_METRIC} for p in out.problems):
            self._ask_rebirth(key, now, out)
        return out

    def _node_birth(
        self,
        key: tuple[str, str],
        payload: pb.Payload,
        received: datetime,
        now: float,
        out: Outcome,
    ) -> None:
        if not payload.HasField("seq") or payload.seq > 255:
            out.problems.append(
                MappingError(Reason.BAD_BIRTH, f"NBIRTH of edge node {key[1]} has no valid seq")
            )
            self._ask_rebirth(key, now, out)
            return
        if key not in self.nodes and len(self.nodes) >= self.max_nodes:
            out.problems.append(
                MappingError(
                    Reason.DEVICE_LIMIT,
                    f"edge node {key[1]} refused: {self.max_nodes} edge nodes already known",
                )
            )
            return
        metrics = self._birth_metrics(payload, out)
        bd_seq = _bd_seq(payload)
        self.nodes[key] = _Node(metrics=metrics, seq=payload.seq, bd_seq=bd_seq)
        self._asked.pop(key, None)
        entity: Entity = (*key, None)
        out.births.append(Birth(entity, tuple(metrics.by_name.values())))
        self._data(entity, metrics, payload, received, out, birth=True)

    def _node_death(self, key: tuple[str, str], payload: pb.Payload, out: Outcome) -> None:
        node = self.nodes.get(key)
        if node is None or not node.online:
            return
        bd_seq = _bd_seq(payload)
        if bd_seq is not None and node.bd_seq is not None and bd_seq != node.bd_seq:
            return  # the will of an earlier session, delivered after the new birth
        node.online = False
        out.deaths.append((*key, None))
        for name, device in node.devices.items():
            if device.online:
                device.online = False
                out.deaths.append((*key, name))

    def _birth_metrics(self, payload: pb.Payload, out: Outcome) -> _Metrics:
        metrics = _Metrics()
        for metric in payload.metrics:
            if not metric.name or not metric.HasField("datatype"):
                out.problems.append(
                    MappingError(Reason.BAD_BIRTH, "birth metric without name or datatype")
                )
                continue
            alias = metric.alias if metric.HasField("alias") else None
            if metric.name in metrics.by_name or (alias is not None and alias in metrics.by_alias):
                out.problems.append(
                    MappingError(
                        Reason.BAD_BIRTH, f"birth metric {metric.name}: name or alias repeated"
                    )
                )
                continue
            definition = MetricDef(metric.name, alias, metric.datatype, metric_writable(metric))
            metrics.by_name[metric.name] = definition
            if alias is not None:
                metrics.by_alias[alias] = definition
        return metrics

    def _data(  # noqa: PLR0917
        self,
        entity: Entity,
        metrics: _Metrics,
        payload: pb.Payload,
        received: datetime,
        out: Outcome,
        birth: bool = False,
    ) -> None:
        # The hot path of Sparkplug B: per metric, a lookup, a typed value and a tuple.
        try:
            default_ts = from_ms(payload.timestamp) if payload.HasField("timestamp") else received
        except (OverflowError, OSError, ValueError):
            out.problems.append(
                MappingError(
                    Reason.BAD_TIMESTAMP, f"{_who(entity)}: payload timestamp out of range"
                )
            )
            return
        by_alias, by_name = metrics.by_alias, metrics.by_name
        append = out.samples.append
        last_ms, last_ts = -1, default_ts
        for metric in payload.metrics:
            name = metric.name
            if not name and metric.HasField("alias"):
                definition = by_alias.get(metric.alias)
                if definition is None:
                    out.problems.append(
                        MappingError(
                            Reason.UNKNOWN_ALIAS,
                            f"{_who(entity)}: alias {metric.alias} was never born",
                        )
                    )
                    continue
            else:
                found = by_name.get(name)
                if found is None and birth:
                    continue  # refused by _birth_metrics, already reported
                if found is None:
                    out.problems.append(
                        MappingError(
                            Reason.UNKNOWN_METRIC, f"{_who(entity)}: metric {name!r} was never born"
                        )
                    )
                    continue
                definition = found
            datatype = definition.datatype
            if metric.HasField("datatype") and metric.datatype != datatype:
                out.problems.append(
                    MappingError(
                        Reason.WRONG_TYPE,
                        f"{_who(entity)} metric {definition.name}: datatype {metric.datatype}, "
                        f"born as {datatype}",
                    )
                )
                continue
            try:
                value = metric_value(metric, datatype, definition.name)
                if metric.HasField("timestamp"):
                    stamp = metric.timestamp
                    if stamp != last_ms:
                        last_ts, last_ms = from_ms(stamp), stamp
                    ts = last_ts
                else:
                    ts = default_ts
            except MappingError as exc:
                out.problems.append(MappingError(exc.reason, f"{_who(entity)} metric {exc.detail}"))
                continue
            except (OverflowError, OSError, ValueError):
                out.problems.append(
                    MappingError(
                        Reason.BAD_TIMESTAMP,
                        f"{_who(entity)} metric {definition.name}: timestamp out of range",
                    )
                )
                continue
            append(
                _new_sample(
                    MetricSample,
                    (
                        entity,
                        definition,
                        value,
                        ts,
                        metric_quality(metric),
                        not metric.is_historical,
                    ),
                )
            )

    def _ask_rebirth(self, key: tuple[str, str], now: float, out: Outcome) -> None:
        last = self._asked.get(key)
        if last is not None and now - last < self.rebirth_interval:
            return
        self._asked[key] = now
        self._asked.move_to_end(key)
        while len(self._asked) > 4 * self.max_nodes:
            self._asked.popitem(last=False)
        out.rebirth = key


def _who(entity: Entity) -> str:
    return f"device {entity[2]}" if entity[2] is not None else f"edge node {entity[1]}"


def _bd_seq(payload: pb.Payload) -> int | None:
    for metric in payload.metrics:
        if metric.name == BDSEQ_METRIC:
            field_name = metric.WhichOneof("value")
            if field_name == "long_value":
                return metric.long_value
            if field_name == "int_value":
                return metric.int_value
    return None
