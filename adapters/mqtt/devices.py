"""Devices and points an MQTT connection has discovered, within its limits."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from adapters.base import DeviceInfo, PointInfo
from adapters.mqtt.config import MqttConnection
from adapters.mqtt.json_mapping import MappingError
from adapters.mqtt.rejections import Reason

_ID_PART = re.compile(r"^[A-Za-z0-9_.:@-]{1,120}$")
_INDUSTRY = re.compile(r"^[A-T](\d{2}(\d{1,2})?)?$")
_REGION = re.compile(r"^\d{6}$")
CLASSIFICATION = ("name", "device_type", "industry", "region", "park", "enterprise")


def check_id_part(value: str, what: str) -> str:
    """Accept one part of a device key (a topic segment or Sparkplug id) or refuse it."""
    if not _ID_PART.match(value):
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise MappingError(
            Reason.BAD_DEVICE_ID,
            f"{what} {shown!r} cannot be a device id (1-120 of A-Z a-z 0-9 _ . : @ -)",
        )
    return value


def invalid_codes(fields: Mapping[str, str | None]) -> dict[str, MappingError]:
    """Return, per field, the industry/region values that are not valid codes."""
    problems: dict[str, MappingError] = {}
    industry = fields.get("industry")
    if industry is not None and not _INDUSTRY.match(industry):
        problems["industry"] = MappingError(
            Reason.WRONG_TYPE, f"industry {industry!r} is not a GB/T 4754-2017 code like C26"
        )
    region = fields.get("region")
    if region is not None and not _REGION.match(region):
        problems["region"] = MappingError(
            Reason.WRONG_TYPE, f"region {region!r} is not a six-digit GB/T 2260 code"
        )
    return problems


@dataclass(slots=True)
class KnownDevice:
    """A device this connection has registered, with its points so far."""

    info: DeviceInfo
    points: dict[str, PointInfo] = field(default_factory=dict)

    def registration(self) -> DeviceInfo:
        """Return the DeviceInfo to register, carrying every point known so far."""
        return dataclasses.replace(self.info, points=tuple(self.points.values()))


class DeviceBook:
    """Registers devices and points as they appear, refusing those beyond the limits."""

    def __init__(self, config: MqttConnection) -> None:
        self.config = config
        self.devices: dict[str, KnownDevice] = {}

    def key(self, *parts: str) -> str:
        """Return the key of an MQTT device: connection id, then its own id parts."""
        return "/".join((self.config.id, *parts))

    def get(self, key: str) -> KnownDevice | None:
        """Return a known device."""
        return self.devices.get(key)

    def admit(
        self,
        key: str,
        identity: Mapping[str, str],
        classification: Mapping[str, str | None],
        simulated: bool | None = None,
    ) -> tuple[KnownDevice, bool]:
        """Return the device (created within the limit) and whether its registration changed."""
        known = self.devices.get(key)
        given = {k: v for k, v in classification.items() if k in CLASSIFICATION and v}
        if known is None:
            if len(self.devices) >= self.config.limits.max_devices:
                raise MappingError(
                    Reason.DEVICE_LIMIT,
                    f"device {key} refused: limits.max_devices={self.config.limits.max_devices} "
                    "reached",
                )
            c = self.config
            info = DeviceInfo(
                key=key,
                protocol="mqtt",
                endpoint=c.url,
                device_type=c.type,
                industry=c.industry,
                region=c.region,
                park=c.park,
                enterprise=c.enterprise,
                simulated=c.simulated or bool(simulated),
                identity=dict(identity),
            )
            known = KnownDevice(_classified(info, given))
            self.devices[key] = known
            return known, True
        updated = _classified(known.info, given)
        if simulated is not None:
            updated = dataclasses.replace(updated, simulated=self.config.simulated or simulated)
        changed = updated != known.info
        known.info = updated
        return known, changed

    def add_points(
        self, device: KnownDevice, points: Iterable[PointInfo]
    ) -> tuple[set[str], list[MappingError], bool]:
        """Add new points within the limit: (accepted keys, refusals, registration changed)."""
        limit = self.config.limits.max_points_per_device
        accepted: set[str] = set()
        refused: list[MappingError] = []
        changed = False
        for point in points:
            if point.key in device.points:
                accepted.add(point.key)
                continue
            if len(device.points) >= limit:
                refused.append(
                    MappingError(
                        Reason.POINT_LIMIT,
                        f"device {device.info.key}: point {point.key} refused: "
                        f"limits.max_points_per_device={limit} reached",
                    )
                )
                continue
            device.points[point.key] = point
            accepted.add(point.key)
            changed = True
        return accepted, refused, changed

    def forget(self, key: str) -> None:
        """Drop a device (its points go with it)."""
        self.devices.pop(key, None)


def _classified(info: DeviceInfo, given: Mapping[str, str]) -> DeviceInfo:
    return DeviceInfo(
        key=info.key,
        protocol=info.protocol,
        endpoint=info.endpoint,
        device_type=given.get("device_type", info.device_type),
        industry=given.get("industry", info.industry),
        region=given.get("region", info.region),
        park=given.get("park", info.park),
        enterprise=given.get("enterprise", info.enterprise),
        name=given.get("name", info.name),
        simulated=info.simulated,
        identity=info.identity,
        points=info.points,
    )
