"""The metrics rules may read, and how each is read from a snapshot.

A rule names a metric (``connected_devices``); this module says where it comes
from (``measured`` telemetry or the ``registry``), which filters and groupings
it supports, and reads its value. Figures declared by the operator are named
``declared.<name>`` in rules and are read by the evaluator from declarations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from criteria import industries
from criteria.industries import IndustryKind
from criteria.snapshot import AppCounts, AppKind, Counts, MetricsSnapshot

Source = Literal["measured", "registry", "declared"]
GroupBy = Literal["industry", "domain"]
Filter = Literal["industry_class", "cross_platform", "kinds", "scope"]

DECLARED_PREFIX = "declared."
SOURCE_RANK: dict[Source, int] = {"declared": 0, "registry": 1, "measured": 2}


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """What one metric is, where it comes from and how it may be narrowed."""

    name: str
    source: Source
    gloss: str
    groups: frozenset[GroupBy] = frozenset()
    filters: frozenset[Filter] = frozenset()


@dataclass(frozen=True, slots=True)
class Filters:
    """How a rule narrows a metric."""

    industry_class: IndustryKind | None = None
    cross_platform: bool = False
    kinds: tuple[AppKind, ...] | None = None


@dataclass(frozen=True, slots=True)
class Area:
    """The region a regional platform declares it serves: GB/T 2260 codes or park names."""

    regions: tuple[str, ...] = ()
    parks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Reading:
    """A metric's value, or None with the reason it could not be read."""

    value: Fraction | None
    detail: str | None = None
    applicable: bool = True


_DEVICES: frozenset[Filter] = frozenset({"industry_class", "scope"})
_APPS: frozenset[Filter] = frozenset({"cross_platform"})
_INDUSTRY_CLASS: frozenset[Filter] = frozenset({"industry_class"})
_KINDS: frozenset[Filter] = frozenset({"kinds"})
_BY_APP: frozenset[GroupBy] = frozenset({"industry", "domain"})
_BY_INDUSTRY: frozenset[GroupBy] = frozenset({"industry"})

CATALOGUE: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("connected_devices", "measured", "connected devices", _BY_INDUSTRY, _DEVICES),
        MetricSpec("managed_devices", "measured", "managed devices", _BY_INDUSTRY, _DEVICES),
        MetricSpec(
            "device_types",
            "measured",
            "distinct device types among connected devices",
            _BY_INDUSTRY,
            _INDUSTRY_CLASS,
        ),
        MetricSpec(
            "managed_device_types",
            "measured",
            "distinct device types among managed devices",
            _BY_INDUSTRY,
            _INDUSTRY_CLASS,
        ),
        MetricSpec(
            "points",
            "measured",
            "data collection points with a good sample",
            _BY_INDUSTRY,
            _INDUSTRY_CLASS,
        ),
        MetricSpec(
            "process_points",
            "measured",
            "process-industry data collection points with a good sample",
            _BY_INDUSTRY,
        ),
        MetricSpec("mechanism_models", "registry", "industrial mechanism models", _BY_APP, _APPS),
        MetricSpec("algorithms", "registry", "industrial data-analysis algorithms", _BY_APP, _APPS),
        MetricSpec(
            "industrial_models",
            "registry",
            "industrial models: mechanism models plus data-analysis algorithms",
            _BY_APP,
            _APPS,
        ),
        MetricSpec("industrial_apps", "registry", "industrial APPs", _BY_APP, _APPS),
        MetricSpec(
            "cloud_software", "registry", "cloud-deployed industrial software", _BY_APP, _APPS
        ),
        MetricSpec("dev_tools", "registry", "development tools", _BY_APP, _APPS),
        MetricSpec(
            "mechanism_model_categories",
            "registry",
            "categories of mechanism models",
            filters=_APPS,
        ),
        MetricSpec("algorithm_categories", "registry", "categories of algorithms", filters=_APPS),
        MetricSpec(
            "industrial_app_categories", "registry", "categories of industrial APPs", filters=_APPS
        ),
        MetricSpec(
            "cloud_software_categories",
            "registry",
            "kinds of cloud-deployed industrial software (PLM, CAD, MES, ...)",
            filters=_APPS,
        ),
        MetricSpec(
            "subscriptions", "registry", "active subscriptions to industrial software and APPs"
        ),
        MetricSpec("subscribing_enterprises", "registry", "distinct subscribing enterprises"),
        MetricSpec("subscribing_enterprise_kinds", "registry", "kinds of subscribing enterprises"),
        MetricSpec("subscribing_users", "registry", "distinct subscribing users"),
        MetricSpec("subscribing_user_kinds", "registry", "kinds of subscribing users"),
        MetricSpec(
            "enterprise_users",
            "registry",
            "enterprises that used the platform in the window",
            _BY_INDUSTRY,
        ),
        MetricSpec("developers", "registry", "registered developers"),
        MetricSpec("third_party_developers", "registry", "registered third-party developers"),
        MetricSpec(
            "dev_tool_developers",
            "registry",
            "developers who called a development tool in the window",
        ),
        MetricSpec(
            "development_languages", "registry", "development languages the platform offers"
        ),
        MetricSpec(
            "monthly_calls",
            "registry",
            "calls per full calendar month, averaged over the full months of the window",
            filters=_KINDS,
        ),
        MetricSpec(
            "monthly_calls_min",
            "registry",
            "calls in the lowest full calendar month of the window",
            filters=_KINDS,
        ),
    )
}

_MISSING = "not in the snapshot"


def exact(value: int | float) -> Fraction:
    """Return a number as an exact fraction (0.1 stays one tenth)."""
    return Fraction(str(value)) if isinstance(value, float) else Fraction(value)


def is_declared(metric: str) -> bool:
    """Tell whether a metric name refers to a declared figure."""
    return metric.startswith(DECLARED_PREFIX)


def source_of(metric: str) -> Source:
    """Return where a metric comes from; raises KeyError for unknown names."""
    if is_declared(metric):
        return "declared"
    return CATALOGUE[metric].source


def rollup_industries(breakdown: Mapping[str, int]) -> dict[str, int]:
    """Sum an industry breakdown up to GB/T 4754 divisions; unknown codes stay as given."""
    out: dict[str, int] = {}
    for code, count in breakdown.items():
        key = _division_or_raw(code)
        out[key] = out.get(key, 0) + count
    return out


def _division_or_raw(code: str) -> str:
    try:
        return industries.division_code(code)
    except industries.UnknownIndustryError:
        return code


def _rollup_types(nested: Mapping[str, Mapping[str, int]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for code, types in nested.items():
        labels = {label for label, count in types.items() if count > 0}
        out.setdefault(_division_or_raw(code), set()).update(labels)
    return out


def region_prefix(area_code: str) -> str:
    """Return the prefix every GB/T 2260 code inside an area shares (``360100`` -> ``3601``)."""
    prefix = area_code
    while len(prefix) > 2 and prefix.endswith("00"):
        prefix = prefix[:-2]
    return prefix


def region_contains(area_code: str, code: str) -> bool:
    """Tell whether a GB/T 2260 code lies inside an area code (province, city or county)."""
    return code.startswith(region_prefix(area_code))


# --- group keys ---------------------------------------------------------------


def group_keys(
    metric: str, filters: Filters, snapshot: MetricsSnapshot, by: GroupBy
) -> set[str] | None:
    """Return the groups a metric has figures for, or None when its breakdown is missing."""
    breakdown = _breakdown(metric, filters, snapshot, by)
    if breakdown is None:
        return None
    return {key for key, count in breakdown.items() if count > 0}


def _breakdown(
    metric: str, filters: Filters, snapshot: MetricsSnapshot, by: GroupBy
) -> dict[str, int] | None:
    """Return per-group values of a metric (types as label counts), or None."""
    if metric in ("device_types", "managed_device_types"):
        counts = (
            snapshot.connected_devices if metric == "device_types" else snapshot.managed_devices
        )
        if counts is None or counts.by_industry_type is None:
            return None
        return {k: len(v) for k, v in _rollup_types(counts.by_industry_type).items()}
    if metric in _COUNTS:
        counts = _COUNTS[metric](snapshot)
        if counts is None or counts.by_industry is None:
            return None
        return rollup_industries(counts.by_industry)
    if metric == "enterprise_users":
        users = snapshot.enterprise_users
        if users is None or users.by_industry is None:
            return None
        return rollup_industries(users.by_industry)
    if metric in _APP_KINDS:
        parts = _app_counts(metric, filters, snapshot)
        if parts is None:
            return None
        out: dict[str, int] = {}
        for part in parts:
            raw = part.by_industry if by == "industry" else part.by_domain
            if raw is None:
                return None
            rolled = rollup_industries(raw) if by == "industry" else raw
            for key, count in rolled.items():
                out[key] = out.get(key, 0) + count
        return out
    raise KeyError(f"metric {metric!r} cannot be grouped by {by}")


# --- reading ------------------------------------------------------------------

_COUNTS: dict[str, Callable[[MetricsSnapshot], Counts | None]] = {
    "connected_devices": lambda s: s.connected_devices,
    "managed_devices": lambda s: s.managed_devices,
    "points": lambda s: s.points,
    "process_points": lambda s: s.process_points,
}

_APP_KINDS: dict[str, tuple[AppKind, ...]] = {
    "mechanism_models": ("mechanism_model",),
    "algorithms": ("algorithm",),
    "industrial_models": ("mechanism_model", "algorithm"),
    "industrial_apps": ("industrial_app",),
    "cloud_software": ("cloud_software",),
    "dev_tools": ("dev_tool",),
}

_CATEGORY_KINDS: dict[str, AppKind] = {
    "mechanism_model_categories": "mechanism_model",
    "algorithm_categories": "algorithm",
    "industrial_app_categories": "industrial_app",
    "cloud_software_categories": "cloud_software",
}


def _app_counts(metric: str, filters: Filters, snapshot: MetricsSnapshot) -> list[AppCounts] | None:
    if snapshot.apps is None:
        return None
    parts: list[AppCounts] = []
    for kind in _APP_KINDS[metric]:
        figures = snapshot.apps.kind(kind)
        counts = figures.cross_platform if filters.cross_platform else figures.registered
        if counts is None:
            return None
        parts.append(counts)
    return parts


_SIMULATED_BASE: dict[str, str] = {
    "connected_devices": "connected_devices",
    "device_types": "connected_devices",
    "managed_devices": "managed_devices",
    "managed_device_types": "managed_devices",
    "points": "points",
    "process_points": "points",
}


def simulated_note(metric: str, snapshot: MetricsSnapshot) -> str | None:
    """Say how many simulated devices (or points) a measured figure left out, if any."""
    excluded = snapshot.simulated_excluded
    base = _SIMULATED_BASE.get(metric)
    if excluded is None or base is None or snapshot.include_simulated:
        return None
    if base == "points":
        if not excluded.points:
            return None
        return (
            f"{excluded.points} points of simulated devices were excluded "
            "(simulated devices never count unless include_simulated is asked for)"
        )
    count = excluded.connected_devices if base == "connected_devices" else excluded.managed_devices
    if not count:
        return None
    noun = "connected" if base == "connected_devices" else "managed"
    return (
        f"{count} simulated {noun} devices were excluded "
        "(simulated devices never count unless include_simulated is asked for)"
    )


def read(
    metric: str,
    filters: Filters,
    snapshot: MetricsSnapshot,
    *,
    group: str | None = None,
    by: GroupBy | None = None,
    area: Area | None = None,
) -> Reading:
    """Read one metric from the snapshot, for the whole window or one group."""
    reading = _read_any(metric, filters, snapshot, group=group, by=by, area=area)
    note = simulated_note(metric, snapshot)
    if note is None:
        return reading
    detail = f"{reading.detail}; {note}" if reading.detail else note
    return Reading(reading.value, detail, reading.applicable)


def _read_any(
    metric: str,
    filters: Filters,
    snapshot: MetricsSnapshot,
    *,
    group: str | None,
    by: GroupBy | None,
    area: Area | None,
) -> Reading:
    if group is not None and by is not None:
        return _read_group(metric, filters, snapshot, group, by)
    if metric in _COUNTS:
        return _read_counts(metric, filters, snapshot, area)
    if metric in ("device_types", "managed_device_types"):
        return _read_types(metric, filters, snapshot)
    if metric in _APP_KINDS:
        parts = _app_counts(metric, filters, snapshot)
        if parts is None:
            return Reading(None, _missing_apps(filters))
        return Reading(Fraction(sum(p.total for p in parts)))
    if metric in _CATEGORY_KINDS:
        return _read_categories(metric, filters, snapshot)
    if metric in ("monthly_calls", "monthly_calls_min"):
        return _read_calls(metric, filters, snapshot)
    return _read_plain(metric, snapshot)


def _missing_apps(filters: Filters) -> str:
    if filters.cross_platform:
        return "cross-platform figures of the model/APP registry are " + _MISSING
    return "the model/APP registry is " + _MISSING


def _read_group(
    metric: str, filters: Filters, snapshot: MetricsSnapshot, group: str, by: GroupBy
) -> Reading:
    if filters.industry_class is not None:
        kind = industries.classify(group)
        if kind is None:
            return Reading(
                None, f"industry {group} is not in the GB/T 4754 table, so its kind is unknown"
            )
        if kind != filters.industry_class:
            return Reading(None, f"industry {group} is a {kind} industry", applicable=False)
    breakdown = _breakdown(metric, filters, snapshot, by)
    if breakdown is None:
        return Reading(None, f"{metric} by {by} is {_MISSING}")
    return Reading(Fraction(breakdown.get(group, 0)))


def _read_counts(
    metric: str, filters: Filters, snapshot: MetricsSnapshot, area: Area | None
) -> Reading:
    counts = _COUNTS[metric](snapshot)
    if counts is None:
        return Reading(None, f"{metric} is {_MISSING}")
    if area is not None:
        return _read_area(metric, counts, area)
    if filters.industry_class is None:
        return Reading(Fraction(counts.total))
    if counts.by_industry is None:
        return Reading(
            None,
            f"{metric} by industry is {_MISSING}, so {filters.industry_class} "
            "industries cannot be told apart",
        )
    rolled = rollup_industries(counts.by_industry)
    kept = sum(
        n for code, n in rolled.items() if industries.classify(code) == filters.industry_class
    )
    unknown = sum(n for code, n in rolled.items() if industries.classify(code) is None)
    other = sum(rolled.values()) - kept - unknown
    unclassified = counts.total - sum(rolled.values())
    detail = (
        f"{kept} of {counts.total} in {filters.industry_class} industries; left out: "
        f"{other} in other industries, {unknown} with unknown codes, "
        f"{unclassified} without an industry"
    )
    return Reading(Fraction(kept), detail)


def _read_area(metric: str, counts: Counts, area: Area) -> Reading:
    if area.regions:
        if counts.by_region is None:
            return Reading(None, f"{metric} by region is {_MISSING}")
        inside = sum(
            n
            for code, n in counts.by_region.items()
            if any(region_contains(a, code) for a in area.regions)
        )
        return Reading(
            Fraction(inside), f"{inside} of {counts.total} inside {', '.join(area.regions)}"
        )
    if counts.by_park is None:
        return Reading(None, f"{metric} by park is {_MISSING}")
    inside = sum(n for park, n in counts.by_park.items() if park in area.parks)
    return Reading(Fraction(inside), f"{inside} of {counts.total} inside {', '.join(area.parks)}")


def _read_types(metric: str, filters: Filters, snapshot: MetricsSnapshot) -> Reading:
    total = snapshot.device_types if metric == "device_types" else snapshot.managed_device_types
    if filters.industry_class is None:
        if total is None:
            return Reading(None, f"{metric} is {_MISSING}")
        return Reading(Fraction(total))
    counts = snapshot.connected_devices if metric == "device_types" else snapshot.managed_devices
    if counts is None or counts.by_industry_type is None:
        return Reading(
            None,
            f"{metric} by industry is {_MISSING}, so {filters.industry_class} "
            "industries cannot be told apart",
        )
    labels: set[str] = set()
    for code, types in _rollup_types(counts.by_industry_type).items():
        if industries.classify(code) == filters.industry_class:
            labels |= types
    detail = f"types in {filters.industry_class} industries: {', '.join(sorted(labels)) or 'none'}"
    return Reading(Fraction(len(labels)), detail)


def _read_categories(metric: str, filters: Filters, snapshot: MetricsSnapshot) -> Reading:
    if snapshot.apps is None:
        return Reading(None, _missing_apps(filters))
    figures = snapshot.apps.kind(_CATEGORY_KINDS[metric])
    counts = figures.cross_platform if filters.cross_platform else figures.registered
    if counts is None:
        return Reading(None, _missing_apps(filters))
    if counts.by_category is None:
        return Reading(None, f"{metric}: categories are {_MISSING}")
    labels = sorted(c for c, n in counts.by_category.items() if n > 0)
    return Reading(Fraction(len(labels)), f"categories: {', '.join(labels) or 'none'}")


def _read_calls(metric: str, filters: Filters, snapshot: MetricsSnapshot) -> Reading:
    calls = snapshot.calls
    if calls is None:
        return Reading(None, f"call figures are {_MISSING}")
    kinds = filters.kinds or ()
    values = calls.monthly(kinds)
    if not values:
        return Reading(None, "the window holds no full calendar month")
    per_month = ", ".join(f"{m}: {v}" for m, v in zip(calls.months, values, strict=True))
    if metric == "monthly_calls":
        return Reading(Fraction(sum(values), len(values)), f"calls per month: {per_month}")
    return Reading(Fraction(min(values)), f"calls per month: {per_month}")


def _read_plain(metric: str, snapshot: MetricsSnapshot) -> Reading:
    subs = snapshot.subscriptions
    devs = snapshot.developers
    if metric in ("subscriptions", "subscribing_enterprises", "subscribing_users"):
        if subs is None:
            return Reading(None, f"subscription figures are {_MISSING}")
        value = {
            "subscriptions": subs.subscriptions,
            "subscribing_enterprises": subs.enterprises,
            "subscribing_users": subs.users,
        }[metric]
        return Reading(Fraction(value))
    if metric in ("subscribing_enterprise_kinds", "subscribing_user_kinds"):
        if subs is None:
            return Reading(None, f"subscription figures are {_MISSING}")
        by_kind = (
            subs.enterprises_by_kind
            if metric == "subscribing_enterprise_kinds"
            else subs.users_by_kind
        )
        if by_kind is None:
            return Reading(None, f"{metric} is {_MISSING}")
        labels = sorted(k for k, n in by_kind.items() if n > 0)
        return Reading(Fraction(len(labels)), f"kinds: {', '.join(labels) or 'none'}")
    if metric == "enterprise_users":
        if snapshot.enterprise_users is None:
            return Reading(None, f"enterprise users are {_MISSING}")
        return Reading(Fraction(snapshot.enterprise_users.total))
    if metric in (
        "developers",
        "third_party_developers",
        "dev_tool_developers",
        "development_languages",
    ):
        if devs is None:
            return Reading(None, f"developer figures are {_MISSING}")
        figure = {
            "developers": devs.total,
            "third_party_developers": devs.third_party,
            "dev_tool_developers": devs.dev_tool_callers,
            "development_languages": devs.languages,
        }[metric]
        if figure is None:
            return Reading(None, f"{metric} is {_MISSING}")
        return Reading(Fraction(figure))
    raise KeyError(f"unknown metric {metric!r}")
