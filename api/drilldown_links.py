"""Which list explains which figure: a rule's metric and filters as a drill-down query and URL.

The mapping is the evaluator's reading of each metric (criteria/metrics.py) turned
into the filters of /v1/drilldowns: connected or managed devices (device types are
read from the same list), points (process points are points of process industries),
apps of the kinds a figure counts with their monthly calls. Figures without a list
(subscriptions, developers, enterprise users) and declared figures have none.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import quote, urlencode

from collector.store.drilldowns import AppFilter, DrillFilter
from criteria import Declaration, Rule, RuleSet, Tier
from criteria.declarations import Declarations, served_area
from criteria.metrics import is_declared
from criteria.model import Threshold, thresholds

ListName = Literal["devices", "points", "apps"]

_DEVICE_STATUS: dict[str, Literal["connected", "managed"]] = {
    "connected_devices": "connected",
    "device_types": "connected",
    "managed_devices": "managed",
    "managed_device_types": "managed",
}
_APP_KINDS: dict[str, tuple[str, ...]] = {
    "mechanism_models": ("mechanism_model",),
    "algorithms": ("algorithm",),
    "industrial_models": ("mechanism_model", "algorithm"),
    "industrial_apps": ("industrial_app",),
    "cloud_software": ("cloud_software",),
    "dev_tools": ("dev_tool",),
    "mechanism_model_categories": ("mechanism_model",),
    "algorithm_categories": ("algorithm",),
    "industrial_app_categories": ("industrial_app",),
    "cloud_software_categories": ("cloud_software",),
}


@dataclass(frozen=True)
class Drilldown:
    """One list behind a figure: which endpoint, with which filters."""

    name: ListName
    devices: DrillFilter | None = None
    apps: AppFilter | None = None

    def params(self) -> list[tuple[str, str]]:
        """Return the filter query parameters in a fixed order (window not included)."""
        out: list[tuple[str, str]] = []
        if self.devices is not None:
            f = self.devices
            out.append(("include_simulated", "true" if f.include_simulated else "false"))
            if self.name == "devices" or f.status == "managed":
                out.append(("status", f.status))
            for name, value in (
                ("industry", f.industry),
                ("industry_class", f.industry_class),
                ("type", f.device_type),
                ("protocol", f.protocol),
            ):
                if value is not None:
                    out.append((name, value))
            if f.regions is not None:
                out.append(("region", ",".join(f.regions)))
            if f.parks is not None:
                out.append(("park", ",".join(f.parks)))
        if self.apps is not None:
            a = self.apps
            if a.kinds is not None:
                out.append(("kind", ",".join(a.kinds)))
            for name, value in (
                ("category", a.category),
                ("industry", a.industry),
                ("domain", a.domain),
            ):
                if value is not None:
                    out.append((name, value))
            if a.cross_platform is not None:
                out.append(("cross_platform", "true" if a.cross_platform else "false"))
        return out

    def url(self, start: datetime, end: datetime) -> str:
        """Return the relative URL of this list over the window [start, end)."""
        window = [("start", _iso(start)), ("end", _iso(end))]
        query = urlencode(window + self.params(), quote_via=quote, safe=":,")
        return f"/v1/drilldowns/{self.name}?{query}"

    def filename(self) -> str:
        """Return a stable file name for this list's CSV inside a bundle."""
        parts: list[str] = [self.name] + [
            f"{k}-{v}" for k, v in self.params() if k != "include_simulated" or v == "true"
        ]
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in "_".join(parts))
        return f"drilldowns/{safe}.csv"


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def for_threshold(
    leaf: Threshold, rule: Rule, declared: Declarations, include_simulated: bool
) -> Drilldown | None:
    """Return the list behind one threshold's metric, or None when the metric has none."""
    metric = leaf.metric
    if is_declared(metric):
        return None
    regions: tuple[str, ...] | None = None
    parks: tuple[str, ...] | None = None
    if leaf.scope == "served_area":
        area, _, _ = served_area(declared, rule)
        if area is not None:
            regions = area.regions or None
            parks = None if area.regions else area.parks
    if metric in _DEVICE_STATUS:
        filt = DrillFilter(
            include_simulated=include_simulated,
            status=_DEVICE_STATUS[metric],
            industry_class=leaf.industry_class,
            regions=regions,
            parks=parks,
        )
        return Drilldown("devices", devices=filt)
    if metric in ("points", "process_points"):
        kind = "process" if metric == "process_points" else leaf.industry_class
        return Drilldown(
            "points", devices=DrillFilter(include_simulated=include_simulated, industry_class=kind)
        )
    if metric in _APP_KINDS:
        cross = True if leaf.cross_platform else None
        return Drilldown("apps", apps=AppFilter(kinds=_APP_KINDS[metric], cross_platform=cross))
    if metric in ("monthly_calls", "monthly_calls_min"):
        return Drilldown("apps", apps=AppFilter(kinds=tuple(leaf.kinds or ())))
    return None


@dataclass(frozen=True)
class FigureList:
    """A figure a rule reads and the list behind it."""

    metric: str
    drilldown: Drilldown


def for_rule(rule: Rule, declared: Declarations, include_simulated: bool) -> Iterator[FigureList]:
    """Yield the figures a rule reads with their lists, in order of appearance, once each."""
    if rule.check is None:
        return
    seen: set[FigureList] = set()
    for leaf in thresholds(rule.check):
        found = for_threshold(leaf, rule, declared, include_simulated)
        if found is None:
            continue
        figure = FigureList(leaf.metric, found)
        if figure not in seen:
            seen.add(figure)
            yield figure


def by_rule(
    ruleset: RuleSet,
    tier: Tier,
    declarations: Sequence[Declaration],
    include_simulated: bool,
) -> dict[str, list[FigureList]]:
    """Return every rule's figures and lists (empty for declared rules), for one tier."""
    declared = Declarations.for_tier(declarations, ruleset.programme.id, (tier.id, tier.name))
    return {
        rule.id: list(for_rule(rule, declared, include_simulated))
        for rule in ruleset.rules_for(tier.id)
    }
