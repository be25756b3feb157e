"""Fleet-spec models of simulated OPC UA devices, points and servers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulators.fleet import FleetDevice
from simulators.signals import Signal

DEFAULT_SERVER = "main"
DEVICE_FOLDER = "DeviceSet"

DataType = Literal[
    "bool",
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "float32",
    "float64",
    "string",
]


class OpcUaFleetPoint(BaseModel):
    """A Variable of a simulated device; '/' in the key nests it in sub-objects."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(min_length=1, max_length=200, pattern=r"^[^/]+(/[^/]+)*$")
    data_type: DataType = "float64"
    unit: str | None = None
    writable: bool = False
    description: str | None = None
    signal: Signal = Signal()


class OpcUaFleetDevice(FleetDevice):
    """A simulated OPC UA device: an Object with DI identification under Objects/DeviceSet."""

    protocol: Literal["opcua"]
    server: str = Field(DEFAULT_SERVER, min_length=1, description="Name of the serving server.")
    browse_name: str | None = Field(None, description="Browse name of the Object; default: id.")
    points: list[OpcUaFleetPoint] = Field(min_length=1)

    @property
    def object_name(self) -> str:
        """The browse name of the device's Object."""
        return self.browse_name or self.id

    @model_validator(mode="after")
    def _unique_points(self) -> OpcUaFleetDevice:
        keys = [p.key for p in self.points]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"point keys must be unique within a device: {', '.join(dupes)}")
        if "/" in self.object_name:
            raise ValueError("browse_name (or id) of an OPC UA device must not contain '/'")
        return self


class OpcUaServerSpec(BaseModel):
    """One simulated OPC UA server: endpoint options, security and users."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    port: int = Field(0, ge=0, le=65535, description="0: any free port.")
    security: Literal["none", "secure", "both"] = Field(
        "none",
        description="none: policy None only; secure: Basic256Sha256 Sign and SignAndEncrypt; "
        "both: all three endpoints.",
    )
    users: dict[str, str] = Field(
        default_factory=dict, description="username: password; when set, anonymous is refused."
    )
    nodeid_offset: int = Field(
        0, ge=0, le=10_000, description="Shifts namespace index and numeric NodeIds."
    )
    subscriptions: bool = Field(True, description="False: refuse CreateSubscription.")


class OpcUaSettings(BaseModel):
    """`protocols.opcua` of a fleet spec."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    servers: list[OpcUaServerSpec] = Field(
        default_factory=list, description="Servers not listed here use the defaults."
    )
    publishing_interval: float = Field(
        1.0, gt=0, description="Subscription publishing interval in generated collector config."
    )

    def server(self, name: str) -> OpcUaServerSpec:
        """Return the settings of a server (defaults when not listed)."""
        for spec in self.servers:
            if spec.name == name:
                return spec
        return OpcUaServerSpec(name=name)
