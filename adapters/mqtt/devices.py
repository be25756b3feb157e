"""Devices and points an MQTT connection has discovered, within its limits."""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from adapters.base import DeviceInfo, PointInfo, Sample
from adapters.mqtt.config import MqttConnection, MqttDevice, astuple
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
    declared: MqttDevice | None = None
    reported_writable: frozenset[str] = frozenset()
    segments: dict[str, str] = field(default_factory=dict)
    entity: tuple[str, str, str | None] | None = None
    online: bool = False
    _last: dict[str, Sample] = field(default_factory=dict, init=False, repr=False)
    _held: tuple[Sequence[str], Sequence[Sample]] | None = field(
        default=None, init=False, repr=False
    )
    """The latest message's points and samples, not yet merged into `_last`."""

    def keep_latest(self, points: Sequence[str], samples: Sequence[Sample]) -> None:
        """Keep the live samples of one message as their points' latest values.

        The steady state (every message of the device carries the same points) replaces
        the message held before whole, without a dict update per sample; a message of
        other points merges the one held first, so no point ever goes back in time.
        """
        held = self._held
        if held is not None and held[0] != points:
            self._last.update(zip(held[0], held[1], strict=True))
        self._held = (points, samples)

    def keep_sample(self, point: str, sample: Sample) -> None:
        """Keep one live sample as its point's latest value."""
        if self._held is not None:
            self._settle()
        self._last[point] = sample

    def latest(self, point: str) -> Sample | None:
        """Return the latest live sample kept for the point, or None."""
        if self._held is not None:
            self._settle()
        return self._last.get(point)

    def _settle(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            self._last.update(zip(held[0], held[1], strict=True))


class DeviceBook:
    """Registers devices and points as they appear, refusing those beyond the limits.

    A device declared in the configuration keeps its configured id as its key and its
    declared fields win over what its messages say; others get derived keys.
    """

    def __init__(self, config: MqttConnection) -> None:
        self.config = config
        self.devices: dict[str, KnownDevice] = {}
        self.declared: dict[str, MqttDevice] = {d.id: d for d in config.devices}
        self._by_topic = {d.topic_device: d for d in config.devices if d.topic_device}
        self._by_entity = {astuple(d.sparkplug): d for d in config.devices if d.sparkplug}
        self._allow = tuple(config.control.allow_reported_writable)

    def key(self, *parts: str) -> str:
        """Return the derived key of an MQTT device: connection id, then its own id parts."""
        return "/".join((self.config.id, *parts))

    def json_key(self, device: str) -> str:
        """Return the key of the device named by a JSON topic's {device} segment."""
        declared = self._by_topic.get(device)
        return declared.id if declared is not None else self.key(device)

    def sparkplug_key(self, group: str, edge: str, device: str | None) -> str:
        """Return the key of a Sparkplug B device (or of an edge node, without device)."""
        declared = self._by_entity.get((group, edge, device))
        if declared is not None:
            return declared.id
        return self.key(group, edge) if device is None else self.key(group, edge, device)

    def get(self, key: str) -> KnownDevice | None:
        """Return a known device."""
        return self.devices.get(key)

    def writable(self, device: KnownDevice, point: str) -> bool:
        """Tell whether Tally may write `point`: declared writable, or reported and allowed."""
        if device.declared is not None:
            for declared in device.declared.points:
                if declared.key == point and declared.writable:
                    return True
        return point in device.reported_writable and any(
            fnmatch.fnmatchcase(point, pattern) for pattern in self._allow
        )

    def registration(self, device: KnownDevice) -> DeviceInfo:
        """Return the DeviceInfo to register, carrying every point known so far."""
        points = tuple(
            p
            if p.writable == (w := self.writable(device, k))
            else dataclasses.replace(p, writable=w)
            for k, p in device.points.items()
        )
        return dataclasses.replace(device.info, points=points)

    def report_writable(self, device: KnownDevice, points: Iterable[str]) -> bool:
        """Record the points a device reports writable; return whether that changed."""
        reported = frozenset(points)
        changed = reported != device.reported_writable
        device.reported_writable = reported
        return changed

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
        declared = self.declared.get(key)
        if declared is not None:
            if not declared.enabled:
                raise MappingError(
                    Reason.DISABLED_DEVICE, f"device {key} is declared with enabled: false"
                )
            given.update({k: v for k, v in _declared_fields(declared).items() if v})
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
            known = KnownDevice(_classified(info, given), declared=declared)
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
            device.points[point.key] = _with_declared(device.declared, point)
            accepted.add(point.key)
            changed = True
        return accepted, refused, changed

    def forget(self, key: str) -> None:
        """Drop a device (its points go with it)."""
        self.devices.pop(key, None)


def _declared_fields(declared: MqttDevice) -> dict[str, str | None]:
    return {
        "name": declared.name,
        "device_type": declared.type,
        "industry": declared.industry,
        "region": declared.region,
        "park": declared.park,
        "enterprise": declared.enterprise,
    }


def _with_declared(declared: MqttDevice | None, point: PointInfo) -> PointInfo:
    if declared is None:
        return point
    for p in declared.points:
        if p.key == point.key:
            return dataclasses.replace(
                point,
                unit=p.unit or point.unit,
                description=p.description or point.description,
            )
    return point


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
