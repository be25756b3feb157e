"""The metrics snapshot the evaluator reads, and operator declarations.

A ``MetricsSnapshot`` holds every figure the rule sets read, for one window, as
the collector computed them from what it recorded. A figure that was not
measured is ``None``; the evaluator turns it into ``insufficient_evidence``,
never into a zero. Inside a figure that is present, a breakdown key that is
missing means zero (the breakdown was computed and that key had nothing), and a
breakdown that is ``None`` was not computed.

Breakdown keys:

- industry: a GB/T 4754-2017 code at any level (``C26``, ``C2614``); the evaluator
  rolls codes up to their division. Devices with no industry are left out of
  ``by_industry`` (so its sum may be less than ``total``).
- region: a GB/T 2260 administrative code (``360111``).
- park: a park name as registered.
- type: the device type label (设备种类).
- domain: one of 研发设计, 供应链, 生产制造, 运营管理, 企业管理, 仓储物流, 产品服务.

The schema is versioned by ``schema_version``; a change that alters the meaning
of a field gets a new version.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

SCHEMA_VERSION: Literal[1] = 1

AppKind = Literal["mechanism_model", "algorithm", "industrial_app", "cloud_software", "dev_tool"]
APP_KINDS: tuple[AppKind, ...] = (
    "mechanism_model",
    "algorithm",
    "industrial_app",
    "cloud_software",
    "dev_tool",
)

Breakdown = dict[str, NonNegativeInt]

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_breakdown(name: str, breakdown: Breakdown | None, total: int) -> None:
    if breakdown is not None and sum(breakdown.values()) > total:
        raise ValueError(f"{name} sums to {sum(breakdown.values())}, more than the total {total}")


class Counts(_Model):
    """A count of devices or points in the window, with optional breakdowns."""

    total: NonNegativeInt
    by_industry: Breakdown | None = None
    by_type: Breakdown | None = None
    by_region: Breakdown | None = None
    by_park: Breakdown | None = None
    by_industry_type: dict[str, Breakdown] | None = Field(
        default=None, description="industry code -> device type label -> devices"
    )

    @model_validator(mode="after")
    def _sums(self) -> Counts:
        for name in ("by_industry", "by_type", "by_region", "by_park"):
            _check_breakdown(name, getattr(self, name), self.total)
        if self.by_industry_type is not None:
            nested = sum(sum(v.values()) for v in self.by_industry_type.values())
            if nested > self.total:
                raise ValueError(
                    f"by_industry_type sums to {nested}, more than the total {self.total}"
                )
        return self


class AppCounts(_Model):
    """Registered items of one kind, with optional breakdowns."""

    total: NonNegativeInt
    by_category: Breakdown | None = None
    by_industry: Breakdown | None = None
    by_domain: Breakdown | None = None

    @model_validator(mode="after")
    def _sums(self) -> AppCounts:
        for name in ("by_category", "by_industry", "by_domain"):
            _check_breakdown(name, getattr(self, name), self.total)
        return self


class AppKindFigures(_Model):
    """Registered items of one kind at the window end: all, and those usable across platforms."""

    registered: AppCounts
    cross_platform: AppCounts | None = None

    @model_validator(mode="after")
    def _subset(self) -> AppKindFigures:
        if self.cross_platform is not None and self.cross_platform.total > self.registered.total:
            raise ValueError("cross_platform.total is more than registered.total")
        return self


class AppRegistry(_Model):
    """The model/APP registry: mechanism models, algorithms, APPs, cloud software, dev tools."""

    mechanism_model: AppKindFigures
    algorithm: AppKindFigures
    industrial_app: AppKindFigures
    cloud_software: AppKindFigures
    dev_tool: AppKindFigures

    def kind(self, kind: AppKind) -> AppKindFigures:
        """Return the figures of one kind."""
        figures: AppKindFigures = getattr(self, kind)
        return figures


class SubscriptionFigures(_Model):
    """Subscriptions to industrial software and APPs active in the window."""

    subscriptions: NonNegativeInt
    enterprises: NonNegativeInt = Field(description="distinct subscribing enterprises")
    enterprises_by_kind: Breakdown | None = None
    users: NonNegativeInt = Field(description="distinct subscribing users")
    users_by_kind: Breakdown | None = None

    @model_validator(mode="after")
    def _sums(self) -> SubscriptionFigures:
        _check_breakdown("enterprises_by_kind", self.enterprises_by_kind, self.enterprises)
        _check_breakdown("users_by_kind", self.users_by_kind, self.users)
        return self


class EnterpriseFigures(_Model):
    """Enterprises that used the platform in the window (its enterprise users)."""

    total: NonNegativeInt
    by_industry: Breakdown | None = None
    by_kind: Breakdown | None = None

    @model_validator(mode="after")
    def _sums(self) -> EnterpriseFigures:
        _check_breakdown("by_industry", self.by_industry, self.total)
        _check_breakdown("by_kind", self.by_kind, self.total)
        return self


class DeveloperFigures(_Model):
    """Registered developers and what they did in the window."""

    total: NonNegativeInt
    third_party: NonNegativeInt
    dev_tool_callers: NonNegativeInt | None = Field(
        default=None, description="developers who called a development tool in the window"
    )
    languages: NonNegativeInt | None = Field(
        default=None, description="distinct development languages the platform offers"
    )

    @model_validator(mode="after")
    def _subset(self) -> DeveloperFigures:
        if self.third_party > self.total:
            raise ValueError("third_party is more than total")
        if self.dev_tool_callers is not None and self.dev_tool_callers > self.total:
            raise ValueError("dev_tool_callers is more than total")
        return self


class CallFigures(_Model):
    """Calls per app kind in each full calendar month (Asia/Shanghai) inside the window."""

    months: tuple[str, ...] = Field(description="full months inside the window, YYYY-MM")
    mechanism_model: dict[str, NonNegativeInt]
    algorithm: dict[str, NonNegativeInt]
    industrial_app: dict[str, NonNegativeInt]
    cloud_software: dict[str, NonNegativeInt]
    dev_tool: dict[str, NonNegativeInt]

    @field_validator("months")
    @classmethod
    def _months(cls, months: tuple[str, ...]) -> tuple[str, ...]:
        for month in months:
            if not _MONTH.match(month):
                raise ValueError(f"month {month!r} is not YYYY-MM")
        if list(months) != sorted(set(months)):
            raise ValueError("months must be distinct and in order")
        return months

    @model_validator(mode="after")
    def _every_month(self) -> CallFigures:
        for kind in APP_KINDS:
            keys = set(self.by_month(kind))
            if keys != set(self.months):
                raise ValueError(
                    f"{kind} must give a count for exactly the months {list(self.months)}, "
                    f"got {sorted(keys)}"
                )
        return self

    def by_month(self, kind: AppKind) -> dict[str, int]:
        """Return calls of one kind per month."""
        counts: dict[str, int] = getattr(self, kind)
        return counts

    def monthly(self, kinds: tuple[AppKind, ...]) -> list[int]:
        """Return calls of the given kinds together, one figure per full month."""
        return [sum(self.by_month(k)[m] for k in kinds) for m in self.months]

    def monthly_average(self, kinds: tuple[AppKind, ...]) -> Fraction | None:
        """Return calls in the full months / number of full months, or None without one."""
        values = self.monthly(kinds)
        return Fraction(sum(values), len(values)) if values else None


class SimulatedExcluded(_Model):
    """What simulated devices would have added, had they been counted (include_simulated false)."""

    connected_devices: NonNegativeInt = 0
    managed_devices: NonNegativeInt = 0
    points: NonNegativeInt = Field(default=0, description="their points with a good sample")


class MetricsSnapshot(_Model):
    """Every figure the criteria read, computed for one window."""

    schema_version: Literal[1] = SCHEMA_VERSION
    window_start: AwareDatetime
    window_end: AwareDatetime
    include_simulated: bool = Field(
        description="true when simulated devices were counted; such a snapshot proves nothing"
    )
    generated_at: AwareDatetime | None = None
    collector: str | None = Field(default=None, description="which collector produced it")
    definitions: dict[str, str] = Field(
        default_factory=dict, description="definitions in force, e.g. connected_device"
    )
    simulated_excluded: SimulatedExcluded | None = Field(
        default=None,
        description="simulated devices and points left out of the figures (None: not stated)",
    )

    connected_devices: Counts | None = None
    managed_devices: Counts | None = None
    device_types: NonNegativeInt | None = Field(
        default=None, description="distinct type labels among connected devices"
    )
    managed_device_types: NonNegativeInt | None = Field(
        default=None, description="distinct type labels among managed devices"
    )
    points: Counts | None = Field(default=None, description="points with a good sample")
    process_points: Counts | None = Field(
        default=None, description="points with a good sample whose device is in a process industry"
    )

    apps: AppRegistry | None = None
    subscriptions: SubscriptionFigures | None = None
    enterprise_users: EnterpriseFigures | None = None
    developers: DeveloperFigures | None = None
    calls: CallFigures | None = None

    @model_validator(mode="after")
    def _consistent(self) -> MetricsSnapshot:
        if self.window_end <= self.window_start:
            raise ValueError("window_end must be after window_start")
        pairs = (
            ("device_types", self.device_types, self.connected_devices),
            ("managed_device_types", self.managed_device_types, self.managed_devices),
        )
        for name, types, counts in pairs:
            if types is None or counts is None or counts.by_type is None:
                continue
            labels = sum(1 for n in counts.by_type.values() if n > 0)
            if labels != types:
                raise ValueError(f"{name} is {types} but by_type lists {labels} labels")
        if self.include_simulated and self.simulated_excluded is not None:
            excluded = self.simulated_excluded
            if excluded.connected_devices or excluded.managed_devices or excluded.points:
                raise ValueError("simulated_excluded must be zero when simulated devices count")
        if (
            self.managed_devices is not None
            and self.connected_devices is not None
            and self.managed_devices.total > self.connected_devices.total
        ):
            raise ValueError("managed_devices.total is more than connected_devices.total")
        if (
            self.process_points is not None
            and self.points is not None
            and self.process_points.total > self.points.total
        ):
            raise ValueError("process_points.total is more than points.total")
        return self


DeclaredValue = (
    StrictBool | StrictInt | StrictFloat | str | list[str] | dict[str, StrictInt | StrictFloat]
)


class Declaration(_Model):
    """An operator's statement with an evidence reference, for what telemetry cannot show.

    A declaration targets a rule (``rule``), every rule of a clause (``clause``), or
    a declared figure (``metric``, e.g. ``staff``) that rules read as
    ``declared.<metric>``. ``program`` and ``tier`` narrow it; left empty it
    applies to every programme and tier. The latest ``declared_at`` wins.
    """

    program: str | None = None
    tier: str | None = None
    rule: str | None = None
    clause: str | None = None
    metric: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")
    value: DeclaredValue = True
    not_applicable: bool = Field(
        default=False,
        description="the clause does not apply to this platform (declared rules only)",
    )
    evidence_ref: str = Field(min_length=1)
    declared_by: str = Field(min_length=1)
    declared_at: AwareDatetime
    note: str | None = None

    @field_validator("evidence_ref", "declared_by")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @model_validator(mode="after")
    def _target(self) -> Declaration:
        if self.rule is None and self.clause is None and self.metric is None:
            raise ValueError("a declaration needs a rule, a clause or a metric")
        return self
