"""Configuration model of an OPC UA connection: endpoint, security, discovery and data.

An OPC UA entry in `devices:` describes a *connection* (one server endpoint), not one
device: the devices behind it are discovered by browsing, or listed under its own
`devices:`. It is therefore its own model (`OpcUaSource`), not a `DeviceDeclaration`;
its `id` names the connection, and its type/industry/region/park/enterprise are the
defaults given to every device found through it. Explicitly listed devices are
`DeviceDeclaration`s (their `id` becomes the device key).
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from adapters.common import DeviceDeclaration


class Strict(BaseModel):
    """Base of the OPC UA configuration models: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SecurityPolicy(enum.StrEnum):
    """Secure channel policies the adapter speaks."""

    NONE = "None"
    BASIC256SHA256 = "Basic256Sha256"


class SecurityMode(enum.StrEnum):
    """Message security mode of the secure channel."""

    NONE = "None"
    SIGN = "Sign"
    SIGN_AND_ENCRYPT = "SignAndEncrypt"


class Security(Strict):
    """Which endpoint of the server to use."""

    policy: SecurityPolicy = SecurityPolicy.NONE
    mode: SecurityMode = SecurityMode.NONE

    @model_validator(mode="after")
    def _consistent(self) -> Security:
        if (self.policy is SecurityPolicy.NONE) != (self.mode is SecurityMode.NONE):
            raise ValueError(
                "policy None goes with mode None, and Basic256Sha256 with Sign or SignAndEncrypt "
                f"(got policy {self.policy.value}, mode {self.mode.value})"
            )
        return self


class AuthKind(enum.StrEnum):
    """How the session authenticates its user."""

    ANONYMOUS = "anonymous"
    USERNAME = "username"
    CERTIFICATE = "certificate"


class Auth(Strict):
    """User identity presented when the session is activated."""

    kind: AuthKind = AuthKind.ANONYMOUS
    username: str | None = None
    password: SecretStr | None = None
    certificate: Path | None = Field(
        None, description="User certificate (DER or PEM); default: the client's own certificate."
    )
    private_key: Path | None = Field(None, description="Private key (PEM or DER) of `certificate`.")

    @model_validator(mode="after")
    def _complete(self) -> Auth:
        if self.kind is AuthKind.USERNAME and (not self.username or self.password is None):
            raise ValueError("auth kind 'username' needs both 'username' and 'password'")
        if self.kind is not AuthKind.USERNAME and (self.username or self.password):
            raise ValueError(
                f"'username'/'password' are only used with kind 'username', not {self.kind.value!r}"
            )
        if (self.certificate is None) != (self.private_key is None):
            raise ValueError("give both 'certificate' and 'private_key', or neither")
        if self.certificate is not None and self.kind is not AuthKind.CERTIFICATE:
            raise ValueError("'certificate'/'private_key' are only used with kind 'certificate'")
        return self


class TrustMode(enum.StrEnum):
    """How server certificates become trusted."""

    TOFU = "tofu"
    LIST = "list"


class Trust(Strict):
    """Server certificate trust: trust on first use and pin, or only a configured list."""

    mode: TrustMode = Field(
        TrustMode.TOFU,
        description="tofu: trust and pin the first certificate a server presents, refuse a "
        "different one later; list: trust only certificates placed in <pki_dir>/trusted.",
    )


class Discovery(Strict):
    """How devices are found by browsing the server's address space."""

    enabled: bool = Field(True, description="False: only the explicitly listed devices.")
    root: str = Field(
        "Objects", description="Browse path where browsing starts, e.g. Objects/Plant/Line1."
    )
    max_depth: int = Field(8, ge=1, le=64, description="Levels below the root that are browsed.")
    max_nodes: int = Field(20_000, ge=1, le=1_000_000, description="Nodes browsed per pass.")
    interval: float = Field(
        300.0, ge=0, description="Seconds between re-browses; 0 re-browses only on reconnect."
    )
    identification: list[str] = Field(
        default_factory=lambda: ["Manufacturer", "Model", "SerialNumber"],
        min_length=1,
        description="Properties an Object must carry to be a device (OPC UA DI names).",
    )
    type_property: str = Field(
        "DeviceClass", min_length=1, description="Property whose value is the device type."
    )
    patterns: list[str] = Field(
        default_factory=list,
        description="Browse-path globs (e.g. 'Objects/Line*/Press-*'); a matching Object is a "
        "device even without identification properties.",
    )
    include_standard: bool = Field(
        False, description="Also browse namespace-0 nodes (the Server object and friends)."
    )

    @field_validator("root")
    @classmethod
    def _root_under_objects(cls, value: str) -> str:
        if value.split("/", maxsplit=1)[0] != "Objects":
            raise ValueError("the browse root must start with 'Objects', e.g. 'Objects/Plant'")
        return value.rstrip("/")


class DeadbandKind(enum.StrEnum):
    """Deadband of a data-change filter."""

    ABSOLUTE = "absolute"
    PERCENT = "percent"


class Deadband(Strict):
    """Only report numeric changes larger than this."""

    kind: DeadbandKind = DeadbandKind.ABSOLUTE
    value: float = Field(gt=0)


class DataMode(enum.StrEnum):
    """How values are acquired."""

    AUTO = "auto"
    SUBSCRIBE = "subscribe"
    POLL = "poll"


class Data(Strict):
    """Subscriptions (or polling) of the points of the discovered devices."""

    mode: DataMode = Field(
        DataMode.AUTO,
        description="auto: subscribe, poll where the server refuses subscriptions or items; "
        "subscribe: subscriptions only; poll: periodic reads only.",
    )
    publishing_interval: float = Field(1.0, gt=0, le=3600, description="Seconds.")
    sampling_interval: float = Field(1.0, ge=0, le=3600, description="Seconds; 0: fastest.")
    queue_size: int = Field(1, ge=1, le=10_000)
    deadband: Deadband | None = None
    keepalive_count: int = Field(
        10, ge=1, le=10_000, description="Publishing intervals without data before a keep-alive."
    )
    keepalive_margin: float = Field(
        2.0, ge=1.0, le=100, description="A subscription silent for margin × keep-alive is rebuilt."
    )
    poll_interval: float = Field(1.0, gt=0, le=86_400, description="Seconds between polls.")
    max_items_per_request: int = Field(500, ge=1, le=100_000)


class Reconnect(Strict):
    """Back-off between connection attempts."""

    initial_delay: float = Field(1.0, gt=0, le=600)
    max_delay: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="Longest wait between attempts: a returning server is collected from again "
        "within this (plus connect and browse time). An attempt at a server that is down costs "
        "one refused TCP connect.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Reconnect:
        if self.max_delay < self.initial_delay:
            raise ValueError("max_delay must not be smaller than initial_delay")
        return self


class MethodVerify(Strict):
    """How a method call is confirmed: after the call, reading `point` gives `equals`."""

    point: str = Field(min_length=1, description="Key of a point of the device.")
    equals: bool | int | float | str = Field(description="The value the point must then have.")


class Method(Strict):
    """A method the collector's control operations may call on one device (and how to verify)."""

    key: str = Field(
        min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$", description="Name in commands."
    )
    device: str = Field(
        min_length=1, description="Device key, or its last path segments (e.g. the device id)."
    )
    object: str = Field(
        "",
        description="Browse path of the Object owning the method: relative to the device's "
        "Object ('' is the device itself), or absolute when it starts with 'Objects'.",
    )
    method: str = Field(min_length=1, description="Browse name of the Method node.")
    arguments: list[bool | int | float | str] = Field(
        default_factory=list, description="Input arguments, in order."
    )
    verify: MethodVerify

    def serves(self, device: str) -> bool:
        """Tell whether this entry names the device with key `device`."""
        return device == self.device or device.endswith("/" + self.device.strip("/"))


class Control(Strict):
    """Which points the collector's control operations may write (none by default)."""

    writable: list[str] = Field(
        default_factory=list,
        description="Globs of '<device key>/<point key>' that may be written when the server "
        "also grants write access, e.g. '*/Setpoint'; empty: no OPC UA writes at all.",
    )
    methods: list[Method] = Field(
        default_factory=list,
        description="Methods that may be called (with fixed arguments); empty: no calls at all.",
    )

    @model_validator(mode="after")
    def _unique_methods(self) -> Control:
        pairs = [(m.device, m.key) for m in self.methods]
        dupes = sorted({f"{d}: {k}" for d, k in pairs if pairs.count((d, k)) > 1})
        if dupes:
            raise ValueError(f"method keys must be unique per device: {', '.join(dupes)}")
        return self


class OpcUaDevice(DeviceDeclaration):
    """A device listed explicitly: its Object by NodeId or by browse path."""

    node_id: str | None = Field(None, description="e.g. 'ns=2;s=Press7' or 'ns=3;i=1005'.")
    browse_path: str | None = Field(None, description="e.g. 'Objects/Plant/Press7'.")

    @model_validator(mode="after")
    def _one_reference(self) -> OpcUaDevice:
        if (self.node_id is None) == (self.browse_path is None):
            raise ValueError(f"device {self.id!r}: give exactly one of 'node_id' or 'browse_path'")
        if self.browse_path is not None and self.browse_path.split("/")[0] != "Objects":
            raise ValueError(f"device {self.id!r}: browse_path must start with 'Objects'")
        return self


class OpcUaSource(Strict):
    """One OPC UA server connection and the devices found or listed behind it."""

    protocol: Literal["opcua"]
    id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:/@-]+$")
    name: str | None = None
    enabled: bool = True
    endpoint: str = Field(description="opc.tcp://host:port[/path]")
    timeout: float = Field(5.0, gt=0, le=300, description="Seconds per request.")
    application_uri: str = Field(
        "urn:tally:collector",
        min_length=1,
        description="Client ApplicationUri (in its certificate).",
    )
    pki_dir: Path = Field(
        Path("opcua-pki"),
        description="Client certificate (own/), trusted (trusted/) and refused (rejected/) "
        "server certificates; relative paths resolve under data_dir.",
    )
    security: Security = Security()
    auth: Auth = Auth()
    trust: Trust = Trust()
    discovery: Discovery = Discovery()
    data: Data = Data()
    reconnect: Reconnect = Reconnect()
    control: Control = Control()
    devices: list[OpcUaDevice] = Field(default_factory=list)
    type: str | None = Field(None, description="Device type for devices that state none.")
    industry: str | None = Field(None, description="GB/T 4754-2017 code for found devices.")
    region: str | None = Field(None, description="GB/T 2260 code for found devices.")
    park: str | None = None
    enterprise: str | None = None

    @field_validator("industry")
    @classmethod
    def _industry_code(cls, value: str | None) -> str | None:
        return DeviceDeclaration._industry_code(value)

    @field_validator("region")
    @classmethod
    def _region_code(cls, value: str | None) -> str | None:
        return DeviceDeclaration._region_code(value)

    @field_validator("endpoint")
    @classmethod
    def _opc_tcp(cls, value: str) -> str:
        if not value.startswith("opc.tcp://"):
            raise ValueError("endpoint must start with opc.tcp://")
        return value

    @model_validator(mode="after")
    def _something_to_collect(self) -> OpcUaSource:
        if not self.discovery.enabled and not self.devices:
            raise ValueError("discovery is disabled and no devices are listed: nothing to collect")
        ids = [d.id for d in self.devices]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"device ids must be unique within a connection: {', '.join(dupes)}")
        return self
