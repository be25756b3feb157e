"""Fleet-spec models of simulated MQTT devices (JSON and Sparkplug B) and their broker."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from simulators.fleet import FleetDevice
from simulators.mqtt.devices import PointKind, WriteBehaviour
from simulators.signals import Signal

ID_PART = r"^[A-Za-z0-9_.:@-]{1,120}$"
RESERVED_PREFIXES = ("Properties/", "Node Control/", "Device Control/", "bdSeq")


class MqttFleetPoint(BaseModel):
    """One point of a simulated MQTT device: a JSON member or a Sparkplug B metric."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(min_length=1, max_length=200, pattern=r"^[^#+]+$")
    data_type: PointKind = Field(
        "float64", description="float64, int64, bool, string; int32 only for Sparkplug B."
    )
    unit: str | None = None
    writable: bool = False
    on_write: WriteBehaviour = Field(
        "accept",
        description="accept: apply and confirm; refuse: negative ack (JSON) or keep the old "
        "value (Sparkplug B); misreport: confirm a value other than the one written.",
    )
    signal: Signal = Signal()

    @field_validator("key")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value.startswith(RESERVED_PREFIXES):
            raise ValueError(f"point key {value!r} uses a reserved Sparkplug B prefix")
        return value

    @model_validator(mode="after")
    def _write_behaviour(self) -> MqttFleetPoint:
        if self.on_write != "accept" and not self.writable:
            raise ValueError(f"point {self.key}: on_write {self.on_write} needs writable: true")
        return self


class MqttFleetDevice(FleetDevice):
    """A simulated MQTT device: JSON on its own connection, or behind a Sparkplug edge node."""

    protocol: Literal["mqtt"]
    encoding: Literal["json", "sparkplug"] = "json"
    group: str = Field("tally-sim", pattern=ID_PART, description="Sparkplug B group id.")
    edge_node: str = Field("edge-1", pattern=ID_PART, description="Sparkplug B edge node id.")
    points: list[MqttFleetPoint] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> MqttFleetDevice:
        if not re.match(ID_PART, self.id):
            raise ValueError(
                f"id {self.id!r}: an MQTT device id is also a topic level or Sparkplug id "
                "(1-120 of A-Z a-z 0-9 _ . : @ -, no '/')"
            )
        keys = [p.key for p in self.points]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"point keys must be unique within a device: {', '.join(dupes)}")
        if self.encoding == "json":
            missing = [f for f in ("type", "industry") if getattr(self, f) is None]
            if missing:
                raise ValueError(
                    f"a JSON device needs {' and '.join(missing)}: they are levels of its topics"
                )
            int32 = [p.key for p in self.points if p.data_type == "int32"]
            if int32:
                raise ValueError(
                    f"points {', '.join(int32)}: JSON numbers carry no width; use int64"
                )
        if self.type is not None and "/" in self.type:
            raise ValueError(f"type {self.type!r} must not contain '/'")
        return self


class MqttSettings(BaseModel):
    """`protocols.mqtt` of a fleet spec: which broker, and how the collector is configured."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    broker: str | None = Field(
        None,
        pattern=r"^mqtt://[^/:]+(:\d{1,5})?$",
        description="mqtt://host:port of a running broker; null: start a throwaway Mosquitto.",
    )
    connection: str = Field(
        "mqtt-sim", pattern=ID_PART, description="Id of the collector's broker connection."
    )
    topic_root: str = Field(
        "plant", pattern=r"^[A-Za-z0-9_.:@-]+$", description="First topic level of JSON devices."
    )
    command_timeout: float = Field(
        5.0, gt=0, le=600, description="control.timeout of the generated collector connection."
    )
