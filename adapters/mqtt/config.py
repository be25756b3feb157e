"""Configuration model of one MQTT broker connection and what it maps to devices.

An MQTT entry in `devices:` is a broker connection, not one device: its topic
mappings and Sparkplug settings discover the devices behind the broker. Its `id`
prefixes the keys of those devices, and its classification fields (type, industry,
region, park, enterprise) are the defaults of every device it discovers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from adapters.common import DeviceDeclaration
from adapters.mqtt.jsonpath import JsonPath
from adapters.mqtt.tls_files import tls_files_problem

SEGMENT = re.compile(r"^\{([a-z_][a-z0-9_]*)\}$")
KNOWN_SEGMENTS = frozenset({"device", "type", "industry", "region", "park", "enterprise"})
QoS = Literal[0, 1, 2]
ID_PART = r"^[A-Za-z0-9_.:@-]+$"


def astuple(address: SparkplugAddress | None) -> tuple[str | None, ...]:
    """Return (group, edge node, device) of a Sparkplug address (empty for None)."""
    return () if address is None else (address.group, address.edge_node, address.device)


class Strict(BaseModel):
    """Base of the MQTT configuration models: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_template(template: str, *, need_device: bool = True) -> str:
    """Validate a topic template such as `plant/{industry}/{type}/{device}/telemetry`."""
    levels = template.split("/")
    names: list[str] = []
    for level in levels:
        if "+" in level or "#" in level:
            raise ValueError(f"topic template {template!r}: use {{name}} segments, not + or #")
        if "{" in level or "}" in level:
            match = SEGMENT.match(level)
            if match is None:
                raise ValueError(
                    f"topic template {template!r}: a named segment must fill a whole "
                    f"level, like {{device}}; got {level!r}"
                )
            names.append(match.group(1))
        elif not level:
            raise ValueError(f"topic template {template!r}: empty topic level")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"topic template {template!r}: segment(s) named twice: {dupes}")
    if need_device and "device" not in names:
        raise ValueError(f"topic template {template!r}: needs a {{device}} segment")
    return template


def check_path(path: str) -> str:
    """Validate a JSON path such as `$.values.temp` or `$.rows[0]['flow rate']`."""
    JsonPath(path)
    return path


class TlsConfig(Strict):
    """TLS towards the broker: CA to trust and, optionally, a client certificate."""

    ca_file: Path | None = Field(None, description="PEM CA bundle; null uses the system CAs.")
    cert_file: Path | None = Field(None, description="PEM client certificate.")
    key_file: Path | None = Field(
        None, description="PEM private key of the client certificate (unencrypted)."
    )
    insecure: bool = Field(False, description="Skip the broker host name check (testing only).")

    @model_validator(mode="after")
    def _loadable(self) -> TlsConfig:
        problem = tls_files_problem(self.ca_file, self.cert_file, self.key_file)
        if problem is not None:
            raise ValueError(problem)
        return self


class JsonPoint(Strict):
    """One point taken from a field of a JSON payload."""

    key: str = Field(min_length=1, max_length=200)
    path: str = Field(min_length=1, description="JSON path of the field, e.g. $.values.temp.")
    data_type: Literal["number", "integer", "boolean", "string"] = "number"
    unit: str | None = None
    description: str | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return check_path(value)


class TimestampField(Strict):
    """Where a payload carries its sample time, and in which format."""

    path: str = Field(min_length=1, description="JSON path, e.g. $.ts.")
    format: Literal["auto", "epoch_ms", "epoch_s", "rfc3339"] = Field(
        "auto",
        description="auto: numbers above 1e11 are epoch milliseconds, smaller ones seconds; "
        "strings are RFC 3339 with an offset.",
    )

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return check_path(value)


class JsonTopic(Strict):
    """A topic template whose JSON messages become samples of the device it names."""

    topic: str = Field(description="Template with named segments, e.g. plant/{type}/{device}/data.")
    qos: QoS = 1
    points: list[JsonPoint] = Field(default_factory=list)
    point_object: str | None = Field(
        None,
        description="JSON path of an object whose scalar members each become a point "
        "(registered as they appear, within limits).",
    )
    timestamp: TimestampField | None = Field(None, description="Null: the receipt time.")

    @field_validator("topic")
    @classmethod
    def _template(cls, value: str) -> str:
        return check_template(value)

    @field_validator("point_object")
    @classmethod
    def _object_path(cls, value: str | None) -> str | None:
        return None if value is None else check_path(value)

    @model_validator(mode="after")
    def _has_points(self) -> JsonTopic:
        if not self.points and self.point_object is None:
            raise ValueError(f"topic {self.topic!r}: give 'points', 'point_object' or both")
        keys = [p.key for p in self.points]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"topic {self.topic!r}: point keys named twice: {dupes}")
        return self


class IdentificationTopic(Strict):
    """A (usually retained) message that registers a device before its first sample."""

    topic: str = Field(description="Template with a {device} segment.")
    qos: QoS = 1
    name: str = "$.name"
    type: str = "$.type"
    industry: str = "$.industry"
    region: str = "$.region"
    park: str = "$.park"
    enterprise: str = "$.enterprise"
    simulated: str = "$.simulated"
    writable: str = Field(
        "$.writable",
        description="JSON path of a list of point keys the device reports writable (Tally "
        "writes them only when control.allow_reported_writable also allows it).",
    )

    @field_validator("topic")
    @classmethod
    def _template(cls, value: str) -> str:
        return check_template(value)

    @field_validator(
        "name", "type", "industry", "region", "park", "enterprise", "simulated", "writable"
    )
    @classmethod
    def _paths(cls, value: str) -> str:
        return check_path(value)


class SparkplugConfig(Strict):
    """Sparkplug B host behaviour: which groups to follow and how to ask for rebirths."""

    groups: list[str] = Field(
        default_factory=lambda: ["+"], min_length=1, description="Group ids; + follows all."
    )
    qos: Literal[0, 1] = 1
    host_id: str | None = Field(
        None, description="Publish the retained spBv1.0/STATE/<host_id> birth and will."
    )
    rebirth_interval: float = Field(
        5.0, gt=0, le=3600, description="Seconds between two rebirth requests to one node."
    )
    register_edge_nodes: bool = Field(
        False, description="Also register edge nodes with their own metrics as devices."
    )

    @field_validator("groups")
    @classmethod
    def _group_ids(cls, groups: list[str]) -> list[str]:
        for group in groups:
            if group != "+" and (not group or any(c in group for c in "/+#")):
                raise ValueError(f"group id {group!r}: must be + or a name without / + #")
        return groups


class Limits(Strict):
    """Bounds that keep a flood of random topics from creating unbounded state."""

    max_devices: int = Field(1_000, ge=1, le=1_000_000)
    max_points_per_device: int = Field(500, ge=1, le=100_000)
    max_payload_bytes: int = Field(256 * 1024, ge=64, le=256 * 1024 * 1024)


class HandoffConfig(Strict):
    """The bounded handoff from the MQTT network thread to the collector."""

    capacity: int = Field(10_000, ge=1, le=10_000_000, description="Messages in flight.")
    on_full: Literal["block", "drop_newest"] = Field(
        "block",
        description="block: the network thread waits (TCP backpressure to the broker) up to "
        "block_timeout, then drops; drop_newest: drop at once. Drops count as handoff_full.",
    )
    block_timeout: float = Field(10.0, gt=0, le=600)


class SparkplugAddress(Strict):
    """Where a Sparkplug B device (or, without `device`, an edge node) lives."""

    group: str = Field(min_length=1, max_length=120, pattern=ID_PART)
    edge_node: str = Field(min_length=1, max_length=120, pattern=ID_PART)
    device: str | None = Field(None, min_length=1, max_length=120, pattern=ID_PART)


class DeclaredPoint(Strict):
    """What the operator declares about one point of a declared device."""

    key: str = Field(min_length=1, max_length=200)
    unit: str | None = None
    description: str | None = None
    writable: bool = Field(False, description="Tally may write this point (control).")


class MqttDevice(DeviceDeclaration):
    """A device declared behind a connection: its `id` is its key, its fields win.

    Give `topic_device` (the `{device}` segment of its JSON topics) or `sparkplug`
    (its group, edge node and device id). Devices that are not declared are still
    discovered, under derived keys.
    """

    topic_device: str | None = Field(
        None, min_length=1, max_length=120, pattern=ID_PART, description="JSON {device} segment."
    )
    sparkplug: SparkplugAddress | None = None
    points: list[DeclaredPoint] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_address(self) -> MqttDevice:
        if (self.topic_device is None) == (self.sparkplug is None):
            raise ValueError(f"device {self.id!r}: give exactly one of topic_device, sparkplug")
        keys = [p.key for p in self.points]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"device {self.id!r}: point keys declared twice: {dupes}")
        return self


class JsonCommands(Strict):
    """How Tally writes to JSON devices: a command topic, and the ack that confirms it.

    The command is `{"request_id": "...", "point": "<key>", "value": <value>}` on
    `command_topic`; the device answers on `ack_topic` with the same request id, whether
    it applied the write, and the value it now holds.
    """

    command_topic: str = Field(
        description="Template; its segments are filled from the device's telemetry topic."
    )
    ack_topic: str = Field(description="Template of the topic the device acknowledges on.")
    qos: QoS = 1
    request_id: str = Field("$.request_id", description="JSON path of the request id in an ack.")
    value: str = Field("$.value", description="JSON path of the confirmed value in an ack.")
    ok: str = Field("$.ok", description="JSON path of true/false; absent means accepted.")
    error: str = Field("$.error", description="JSON path of the reason of a negative ack.")

    @field_validator("command_topic", "ack_topic")
    @classmethod
    def _template(cls, value: str) -> str:
        return check_template(value)

    @field_validator("request_id", "value", "ok", "error")
    @classmethod
    def _paths(cls, value: str) -> str:
        return check_path(value)


class ControlConfig(Strict):
    """Control writes on this connection: JSON commands with acks, Sparkplug B DCMD."""

    timeout: float = Field(
        5.0, gt=0, le=600, description="Seconds to wait for the ack or the confirming DDATA."
    )
    json_commands: JsonCommands | None = Field(
        None, description="Null: JSON devices cannot be written."
    )
    allow_reported_writable: list[str] = Field(
        default_factory=list,
        description="Point key patterns (fnmatch, e.g. '*setpoint') that may be written when "
        "the device itself reports them writable; declared writable points need no pattern.",
    )


class MqttConnection(DeviceDeclaration):
    """One broker connection whose topics and Sparkplug births discover devices."""

    protocol: Literal["mqtt"]
    url: str = Field(description="mqtt://host:port or mqtts://host:port (TLS).")
    version: Literal["3.1.1", "5"] = "3.1.1"
    client_id: str | None = Field(None, max_length=256, description="Null: tally-<id>.")
    persistent_session: bool = Field(
        False, description="Keep the broker session (QoS 1/2 queue) across reconnects."
    )
    session_expiry: int = Field(3600, ge=0, description="MQTT 5 session expiry, seconds.")
    keepalive: int = Field(30, ge=5, le=65535)
    reconnect_min_delay: int = Field(1, ge=1, le=3600)
    reconnect_max_delay: int = Field(60, ge=1, le=3600)
    username: str | None = None
    password: SecretStr | None = None
    tls: TlsConfig | None = None
    topics: list[JsonTopic] = Field(default_factory=list)
    identification: list[IdentificationTopic] = Field(default_factory=list)
    sparkplug: SparkplugConfig | None = None
    limits: Limits = Limits()
    handoff: HandoffConfig = HandoffConfig()
    simulated: bool = Field(False, description="Mark every device of this connection simulated.")
    devices: list[MqttDevice] = Field(
        default_factory=list, description="Declared devices: configured ids, writable points."
    )
    control: ControlConfig = ControlConfig()

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^mqtts?://[^/:]+(:\d{1,5})?/?$", value):
            raise ValueError("expected mqtt://host:port or mqtts://host:port")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _consistent(self) -> MqttConnection:
        if not self.topics and self.sparkplug is None:
            raise ValueError("an MQTT connection needs 'topics', 'sparkplug' or both")
        if self.reconnect_max_delay < self.reconnect_min_delay:
            raise ValueError("reconnect_max_delay must not be below reconnect_min_delay")
        if self.password is not None and self.username is None:
            raise ValueError("password given without username")
        ids = [d.id for d in self.devices]
        addresses = [
            f"topic_device {d.topic_device}"
            if d.topic_device is not None
            else "sparkplug " + "/".join(p for p in astuple(d.sparkplug) if p is not None)
            for d in self.devices
        ]
        for what, seen in (("ids", ids), ("addresses", addresses)):
            dupes = sorted({str(x) for x in seen if seen.count(x) > 1})
            if dupes:
                raise ValueError(f"declared devices: {what} used twice: {', '.join(dupes)}")
        if any(d.sparkplug for d in self.devices) and self.sparkplug is None:
            raise ValueError("devices declare sparkplug addresses but 'sparkplug' is not set")
        return self

    @property
    def uses_tls(self) -> bool:
        """True for mqtts:// URLs or an explicit tls section."""
        return self.url.startswith("mqtts://") or self.tls is not None

    @property
    def host(self) -> str:
        """Broker host name from the URL."""
        return self.url.split("://", 1)[1].split(":", 1)[0]

    @property
    def port(self) -> int:
        """Broker port from the URL (1883, or 8883 with TLS, when absent)."""
        rest = self.url.split("://", 1)[1]
        if ":" in rest:
            return int(rest.split(":", 1)[1])
        return 8883 if self.uses_tls else 1883

    @property
    def effective_client_id(self) -> str:
        """Client id sent to the broker."""
        return self.client_id or f"tally-{self.id}"[:256]
