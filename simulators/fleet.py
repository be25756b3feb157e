"""The fleet spec (simulated devices across protocols), its loader and the ground-truth manifest.

A fleet spec is one YAML file::

    version: 1
    name: demo
    seed: 7
    protocols:            # optional per-protocol settings, validated by that protocol's plug-in
      modbus: {servers: [{name: line-b, framing: rtu+tcp}]}
    templates:            # optional: shared fields, merged under a device that names them
      c26-site: {industry: C26, region: "360400", protocol: modbus, server: plant-a}
      pump: {type: pump, points: [...]}
    devices:              # `template` names one template or a list, merged in order
      - {id: pump-01, template: [c26-site, pump], device_id: 1}

Every device names its `protocol`, which selects a plug-in: the module
`simulators.<protocol>.plugin`, exposing `PLUGIN` (see `FleetPlugin`). The plug-in's
`device_model` validates the device (protocol fields and points) and its simulator serves
the devices and describes them in the manifest. Plug-ins are imported only when a fleet
uses their protocol, so a missing one affects only fleets that need it.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.common import DeviceDeclaration

SIMULATED_VENDOR = "Tally Simulator (simulated)"
"""Vendor name every simulated device reports; adapters detect the `(simulated)` mark."""

PROTOCOLS: tuple[str, ...] = ("modbus", "opcua", "mqtt")
"""Protocols a fleet may use; each is served by `simulators.<protocol>.plugin`."""

_HEADER_KEYS = {"version", "name", "description", "seed", "protocols", "templates", "devices"}


class FleetError(Exception):
    """A fleet spec or manifest that cannot be used; the message names the bad key."""


class FleetIdentity(BaseModel):
    """What a simulated device reports about itself (the vendor is always the simulator)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    product_code: str | None = Field(None, description="Default: SIM-<TYPE>.")
    model: str | None = Field(None, description="Default: the device type.")
    product_name: str | None = None
    revision: str = "1.0"


class FleetDevice(DeviceDeclaration):
    """Fields every simulated device has, whatever its protocol; plug-ins subclass it."""

    protocol: str
    update_interval: float = Field(1.0, gt=0, le=86_400, description="Seconds between updates.")
    identity: FleetIdentity = FleetIdentity()

    def reported_identity(self) -> dict[str, str]:
        """Identity the simulator reports: vendor, product code, model, product name, revision."""
        label = self.type or "device"
        return {
            "vendor": SIMULATED_VENDOR,
            "product_code": self.identity.product_code or f"SIM-{label.upper()}",
            "model": self.identity.model or label,
            "product_name": self.identity.product_name or (self.name or label),
            "revision": self.identity.revision,
        }


class ManifestPoint(BaseModel):
    """One served point: what tests and the collector expect to find."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    data_type: str
    unit: str | None = None
    writable: bool = False
    address: str = Field(description="Where the point lives, e.g. holding:40 or ns=2;s=Temp.")
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Protocol-specific fields needed to read the point."
    )


class ManifestDevice(BaseModel):
    """One served device with its endpoint, identity and points."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    protocol: str
    endpoint: str
    name: str | None = None
    type: str | None = None
    industry: str | None = None
    region: str | None = None
    park: str | None = None
    enterprise: str | None = None
    simulated: bool = True
    update_interval: float = 1.0
    identity: dict[str, str] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    points: list[ManifestPoint] = Field(default_factory=list)


class Manifest(BaseModel):
    """Ground truth of a running fleet: every served device and point, as JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    fleet: str
    simulated: Literal[True] = True
    generated_at: datetime
    devices: list[ManifestDevice]

    def device(self, device_id: str) -> ManifestDevice:
        """Return the device with this id, or raise KeyError."""
        for device in self.devices:
            if device.id == device_id:
                return device
        raise KeyError(f"manifest of fleet {self.fleet!r} has no device {device_id!r}")


@dataclass(frozen=True)
class Fleet:
    """A validated fleet spec: devices (plug-in models) and per-protocol settings."""

    name: str
    devices: tuple[FleetDevice, ...]
    settings: Mapping[str, BaseModel] = field(default_factory=dict)
    seed: int = 0
    description: str | None = None

    def protocols(self) -> list[str]:
        """Protocols used by the fleet's devices, in first-use order."""
        return list(dict.fromkeys(d.protocol for d in self.devices))

    def devices_of(self, protocol: str) -> list[FleetDevice]:
        """Return the devices served by one protocol's simulator."""
        return [d for d in self.devices if d.protocol == protocol]


class ProtocolSimulator(Protocol):
    """A running simulator of one protocol's devices."""

    async def start(self) -> list[ManifestDevice]:
        """Start serving; return the served devices as they belong in the manifest."""
        ...

    async def stop(self) -> None:
        """Stop serving and release every socket and task."""
        ...


class FleetPlugin(Protocol):
    """What `simulators.<protocol>.plugin.PLUGIN` provides."""

    @property
    def protocol(self) -> str:
        """The protocol name devices use in the fleet spec."""
        ...

    @property
    def device_model(self) -> type[FleetDevice]:
        """Model that validates one device of this protocol."""
        ...

    @property
    def settings_model(self) -> type[BaseModel]:
        """Model that validates `protocols.<protocol>` of the fleet spec."""
        ...

    def simulator(self, fleet: Fleet, host: str) -> ProtocolSimulator:
        """Build (not start) a simulator of the fleet's devices of this protocol."""
        ...

    def device_configs(self, devices: Sequence[ManifestDevice]) -> list[BaseModel]:
        """Turn served devices into the collector's `devices:` configuration entries."""
        ...


def plugin_for(protocol: str) -> FleetPlugin:
    """Import the simulator plug-in of a protocol; raise FleetError when there is none."""
    if protocol not in PROTOCOLS:
        raise FleetError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    module_name = f"simulators.{protocol}.plugin"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise FleetError(
                f"protocol {protocol!r} has no simulator yet ({module_name} not found)"
            ) from None
        raise
    plugin: FleetPlugin = module.PLUGIN
    return plugin


def _where(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


def _validation_lines(error: ValidationError, prefix: str) -> list[str]:
    lines = []
    for item in error.errors():
        got = item.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
        where = prefix + ("." if item["loc"] else "") + _where(item["loc"])
        lines.append(f"  {where}: {item['msg']}{shown}")
    return lines


def _expand(raw: Any, templates: Mapping[str, Any], index: int) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise FleetError(f"devices[{index}]: expected a mapping, got {type(raw).__name__}")
    device = dict(raw)
    names = device.pop("template", None)
    if names is None:
        return device
    merged: dict[str, Any] = {}
    for name in [names] if isinstance(names, str) else list(names):
        if name not in templates:
            known = ", ".join(sorted(templates)) or "none defined"
            raise FleetError(f"devices[{index}].template: unknown template {name!r} ({known})")
        template = templates[name]
        if not isinstance(template, Mapping):
            raise FleetError(f"templates.{name}: expected a mapping")
        merged.update(template)
    return {**merged, **device}


def parse_fleet(raw: Any, source: str) -> Fleet:
    """Validate a raw fleet spec into a Fleet; raise FleetError listing every bad key."""
    if not isinstance(raw, Mapping):
        raise FleetError(f"{source}: the top level must be a mapping")
    unknown = sorted(set(raw) - _HEADER_KEYS)
    if unknown:
        raise FleetError(f"{source}: unknown key(s) {', '.join(unknown)}")
    if raw.get("version") != 1:
        raise FleetError(f"{source}: version must be 1 (got {raw.get('version')!r})")
    name, seed = raw.get("name"), raw.get("seed", 0)
    if not isinstance(name, str) or not name:
        raise FleetError(f"{source}: name must be a non-empty string")
    if not isinstance(seed, int):
        raise FleetError(f"{source}: seed must be an integer (got {seed!r})")
    templates = raw.get("templates") or {}
    raw_devices = raw.get("devices")
    if not isinstance(templates, Mapping) or not isinstance(raw_devices, list) or not raw_devices:
        raise FleetError(f"{source}: templates must be a mapping and devices a non-empty list")
    problems: list[str] = []
    devices: list[FleetDevice] = []
    for index, item in enumerate(raw_devices):
        expanded = _expand(item, templates, index)
        protocol = expanded.get("protocol")
        if not isinstance(protocol, str):
            problems.append(f"  devices[{index}].protocol: required; one of {', '.join(PROTOCOLS)}")
            continue
        try:
            model = plugin_for(protocol).device_model
        except FleetError as exc:
            problems.append(f"  devices[{index}].protocol: {exc}")
            continue
        try:
            devices.append(model.model_validate(expanded))
        except ValidationError as exc:
            label = f"devices[{index}]" + (f" ({expanded['id']})" if "id" in expanded else "")
            problems.extend(_validation_lines(exc, label))
    seen: set[str] = set()
    for device in devices:
        if device.id in seen:
            problems.append(f"  devices: id {device.id!r} is used twice")
        seen.add(device.id)
    settings: dict[str, BaseModel] = {}
    raw_settings = raw.get("protocols") or {}
    if not isinstance(raw_settings, Mapping):
        raise FleetError(f"{source}: protocols must be a mapping of protocol name to settings")
    for protocol in dict.fromkeys([*raw_settings, *(d.protocol for d in devices)]):
        try:
            settings_model = plugin_for(str(protocol)).settings_model
            raw_protocol = raw_settings.get(protocol) or {}
            settings[str(protocol)] = settings_model.model_validate(raw_protocol)
        except ValidationError as exc:
            problems.extend(_validation_lines(exc, f"protocols.{protocol}"))
    if problems:
        raise FleetError(
            "\n".join([f"{source}: invalid fleet ({len(problems)} problem(s))", *problems])
        )
    return Fleet(
        name=name,
        devices=tuple(devices),
        settings=settings,
        seed=seed,
        description=raw.get("description"),
    )


def load_fleet(path: Path | str) -> Fleet:
    """Read and validate a fleet spec file."""
    file = Path(path)
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FleetError(f"{file}: cannot read fleet spec: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise FleetError(f"{file}: not valid YAML: {exc}") from None
    return parse_fleet(raw, str(file))


def build_manifest(fleet: Fleet, devices: Sequence[ManifestDevice]) -> Manifest:
    """Return the manifest of served devices, in fleet order."""
    order = {d.id: i for i, d in enumerate(fleet.devices)}
    ordered = sorted(devices, key=lambda d: order.get(d.id, len(order)))
    return Manifest(fleet=fleet.name, generated_at=datetime.now(UTC), devices=ordered)


def write_manifest(manifest: Manifest, path: Path | str) -> None:
    """Write the manifest as JSON, atomically (readers never see half a file)."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    tmp.write_text(
        json.dumps(manifest.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    tmp.replace(file)


def read_manifest(path: Path | str) -> Manifest:
    """Read a manifest written by `write_manifest`."""
    file = Path(path)
    try:
        return Manifest.model_validate_json(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FleetError(f"{file}: cannot read manifest: {exc.strerror}") from None
    except ValidationError as exc:
        lines = [f"{file}: invalid manifest", *_validation_lines(exc, "")]
        raise FleetError("\n".join(lines)) from None


def device_configs(manifest: Manifest) -> list[BaseModel]:
    """Turn a manifest into the collector's `devices:` list, one entry per served device."""
    out: list[BaseModel] = []
    for protocol in dict.fromkeys(d.protocol for d in manifest.devices):
        served = [d for d in manifest.devices if d.protocol == protocol]
        out.extend(plugin_for(protocol).device_configs(served))
    order = {d.id: i for i, d in enumerate(manifest.devices)}
    return sorted(out, key=lambda c: order.get(str(getattr(c, "id", "")), len(order)))
