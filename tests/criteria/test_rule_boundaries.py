"""Every threshold of both programmes at its boundary, generated from the rule set YAML.

For each numeric threshold of every rule (leaves, leaves inside "K industries, each
N", and the K itself) the rule is evaluated alone on a snapshot that puts the figure
exactly on each side of the threshold: 不少于 N fails at N-1 and passes at N; 超过 N
fails at N and passes at N+1; 前 N 强 fails at N+1 and passes at N. The comparator
expected is read from the clause text, not from the YAML, so a wrong op fails here.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import pytest

import criteria
from criteria import Declaration, MetricsSnapshot, evaluate
from criteria.metrics import source_of
from criteria.model import (
    AllOf,
    AnyOf,
    Check,
    Groups,
    Rule,
    RuleSet,
    Threshold,
    parse_ruleset,
    thresholds,
)
from criteria.snapshot import APP_KINDS

DISCRETE = ["C34", "C36", "C35", "C33", "C39"]
PROCESS = ["C26", "C25", "C27", "C28", "C30"]
DOMAINS = ["研发设计", "供应链", "生产制造", "运营管理", "企业管理"]
MONTHS = ("2024-01", "2024-02")
WINDOW = {"window_start": "2024-01-01T00:00:00+08:00", "window_end": "2024-03-01T00:00:00+08:00"}

APP_METRIC_KIND = {
    "mechanism_models": "mechanism_model",
    "algorithms": "algorithm",
    "industrial_models": "mechanism_model",
    "industrial_apps": "industrial_app",
    "cloud_software": "cloud_software",
    "dev_tools": "dev_tool",
}
CATEGORY_KIND = {
    "mechanism_model_categories": "mechanism_model",
    "algorithm_categories": "algorithm",
    "industrial_app_categories": "industrial_app",
    "cloud_software_categories": "cloud_software",
}


# --- a snapshot that puts chosen figures at chosen values --------------------------------


@dataclass
class Figures:
    """Figures added leaf by leaf, built into one consistent snapshot and declarations."""

    devices: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    regions: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    types: dict[str, dict[str, set[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(set))
    )
    points: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    apps: dict[str, list[tuple[int, str, str]]] = field(default_factory=lambda: defaultdict(list))
    categories: dict[str, int] = field(default_factory=dict)
    subs: dict[str, int] = field(default_factory=dict)
    enterprise_users: Counter[str] = field(default_factory=Counter)
    developers: dict[str, int] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    declared: dict[str, Any] = field(default_factory=dict)

    def add(self, leaf: Threshold, value: int, group: str | None = None, by: str = "") -> None:
        """Make `leaf` read exactly `value` (in `group` when given)."""
        metric = leaf.metric
        if leaf.share_of is not None:
            self._base(leaf.share_of)
        if leaf.declared:
            self._declare(leaf, value)
            return
        industry = group if by == "industry" and group else self._industry(leaf)
        if metric in ("connected_devices", "managed_devices"):
            self.devices[metric][industry] += value
            if leaf.scope == "served_area":
                self.regions[metric]["360111"] += value
                self.declared["served_region"] = ["360100"]
        elif metric in ("device_types", "managed_device_types"):
            base = "connected_devices" if metric == "device_types" else "managed_devices"
            self.types[base][industry] |= {f"{metric}-{industry}-{i}" for i in range(value)}
        elif metric in ("points", "process_points"):
            self.points[metric][industry] += value
        elif metric in APP_METRIC_KIND:
            domain = group if by == "domain" and group else DOMAINS[0]
            self.apps[APP_METRIC_KIND[metric]].append((value, industry, domain))
        elif metric in CATEGORY_KIND:
            self.categories[CATEGORY_KIND[metric]] = value
        elif metric == "enterprise_users":
            self.enterprise_users[industry] += value
        elif metric in ("monthly_calls", "monthly_calls_min"):
            assert leaf.kinds
            self.calls[leaf.kinds[0]] = value
        elif metric.startswith("subscri"):
            self.subs[metric] = value
        else:
            self.developers[metric] = value

    def _base(self, share_of: str) -> None:
        # Every share is taken of a base of 100, so the percentage is the figure itself.
        if share_of.startswith("declared."):
            self.declared[share_of.removeprefix("declared.")] = 100
        else:
            self.developers[share_of] = 100

    def _industry(self, leaf: Threshold) -> str:
        if leaf.industry_class == "process" or leaf.metric == "process_points":
            return PROCESS[0]
        return DISCRETE[0]

    def _declare(self, leaf: Threshold, value: int) -> None:
        if leaf.reduce == "count":
            choices = leaf.choices or tuple(f"item-{i}" for i in range(value + 1))
            assert len(choices) >= value, f"{leaf.metric}: too few choices for {value}"
            self.declared[leaf.declared_name] = list(choices[:value])
        elif leaf.reduce == "min":
            self.declared[leaf.declared_name] = {"first": value, "second": value + 10}
        else:
            self.declared[leaf.declared_name] = value

    def snapshot(self) -> MetricsSnapshot:
        """Build the snapshot: every figure present, so nothing reads as insufficient."""
        managed = self._counts("managed_devices", Counter())
        connected = self._counts("connected_devices", self.devices["managed_devices"])
        return MetricsSnapshot.model_validate(
            {
                **WINDOW,
                "include_simulated": False,
                "connected_devices": connected,
                "device_types": len(connected["by_type"]),
                "managed_devices": managed,
                "managed_device_types": len(managed["by_type"]),
                "points": self._points(),
                "process_points": {
                    "total": sum(self.points["process_points"].values()),
                    "by_industry": dict(self.points["process_points"]),
                },
                "apps": {kind: self._app(kind) for kind in APP_KINDS},
                "subscriptions": self._subscriptions(),
                "enterprise_users": {
                    "total": sum(self.enterprise_users.values()),
                    "by_industry": dict(self.enterprise_users),
                },
                "developers": self._developers(),
                "calls": {
                    "months": list(MONTHS),
                    **{k: dict.fromkeys(MONTHS, self.calls.get(k, 0)) for k in APP_KINDS},
                },
            }
        )

    def _counts(self, metric: str, extra: Counter[str]) -> dict[str, Any]:
        by_industry = self.devices[metric] + extra
        by_industry_type: dict[str, dict[str, int]] = {}
        sources = [metric] if metric == "managed_devices" else [metric, "managed_devices"]
        for base in sources:
            for code, labels in self.types[base].items():
                by_industry_type.setdefault(code, {}).update(dict.fromkeys(labels, 1))
        for code, typed in by_industry_type.items():
            by_industry[code] += len(typed)
        by_type = {label: 1 for labels in by_industry_type.values() for label in labels}
        total = sum(by_industry.values())
        regions = self.regions[metric] + (
            self.regions["managed_devices"] if metric == "connected_devices" else Counter()
        )
        return {
            "total": total,
            "by_industry": dict(by_industry),
            "by_type": by_type,
            "by_industry_type": by_industry_type,
            "by_region": dict(regions),
            "by_park": {},
        }

    def _points(self) -> dict[str, Any]:
        by_industry = self.points["points"] + self.points["process_points"]
        return {"total": sum(by_industry.values()), "by_industry": dict(by_industry)}

    def _app(self, kind: str) -> dict[str, Any]:
        items = self.apps[kind]
        by_industry: Counter[str] = Counter()
        by_domain: Counter[str] = Counter()
        for value, industry, domain in items:
            by_industry[industry] += value
            by_domain[domain] += value
        categories = self.categories.get(kind, 0)
        total = max(sum(v for v, _, _ in items), categories)
        counts = {
            "total": total,
            "by_category": {f"category-{i}": 1 for i in range(categories)},
            "by_industry": dict(by_industry),
            "by_domain": dict(by_domain),
        }
        return {"registered": counts, "cross_platform": counts}

    def _subscriptions(self) -> dict[str, Any]:
        ent_kinds = self.subs.get("subscribing_enterprise_kinds", 0)
        user_kinds = self.subs.get("subscribing_user_kinds", 0)
        return {
            "subscriptions": self.subs.get("subscriptions", 0),
            "enterprises": max(self.subs.get("subscribing_enterprises", 0), ent_kinds),
            "enterprises_by_kind": {f"kind-{i}": 1 for i in range(ent_kinds)},
            "users": max(self.subs.get("subscribing_users", 0), user_kinds),
            "users_by_kind": {f"kind-{i}": 1 for i in range(user_kinds)},
        }

    def _developers(self) -> dict[str, Any]:
        third = self.developers.get("third_party_developers", 0)
        callers = self.developers.get("dev_tool_developers", 0)
        return {
            "total": max(self.developers.get("developers", 0), third, callers),
            "third_party": third,
            "dev_tool_callers": callers,
            "languages": self.developers.get("development_languages", 0),
        }

    def declarations(self) -> list[Declaration]:
        """Return the declared figures."""
        return [
            Declaration(
                metric=name,
                value=value,
                evidence_ref=f"doc://{name}",
                declared_by="boundary-test",
                declared_at="2024-03-02T00:00:00+08:00",
            )
            for name, value in self.declared.items()
        ]


# --- the boundary cases, from the YAML ---------------------------------------------------


def norm(text: str) -> str:
    return re.sub(r"\s+", "", text)


def expected_op(rule: Rule, value: Fraction, yaml_op: str, implied: bool) -> str:
    """Read the comparator from the clause text: 超过 N is strict, 前 N 强 an upper bound."""
    if implied:
        return yaml_op
    text = norm(rule.text)
    for match in re.finditer(r"(\d+(?:\.\d+)?)\s*(万|亿)?", text):
        number = Fraction(match[1]) * {"万": 10_000, "亿": 100_000_000}.get(match[2] or "", 1)
        if number == value:
            before = text[max(0, match.start() - 6) : match.start()]
            return ">" if "超过" in before else ">="
    if yaml_op == "<=" and re.search(r"前[一二三四五六七八九十]+强", text):
        return "<="
    raise AssertionError(f"{rule.id}: threshold {value} is not in its text")


@dataclass(frozen=True)
class Case:
    """One threshold of one rule, isolated as its own rule."""

    program: str
    rule: Rule
    where: str
    check: Check
    op: str
    threshold: int
    groups: Groups | None = None

    @property
    def id(self) -> str:
        return f"{self.rule.id}:{self.where}"

    def values(self) -> tuple[int, int]:
        """(failing value, passing value) on either side of the threshold."""
        if self.op == ">=":
            return self.threshold - 1, self.threshold
        if self.op == ">":
            return self.threshold, self.threshold + 1
        return self.threshold + 1, self.threshold


def _cases_of(program: str, rule: Rule) -> list[Case]:
    cases: list[Case] = []

    def leaf_case(leaf: Threshold, where: str, groups: Groups | None) -> None:
        if leaf.op is None or leaf.value is None:
            return  # "must be declared": no number
        value = Fraction(str(leaf.value))
        assert value.denominator == 1, f"{rule.id}: non-integer threshold {leaf.value}"
        check: Check = leaf
        if groups is not None:
            spec = groups.groups.model_copy(update={"at_least": 1, "each": leaf})
            check = Groups(groups=spec)
        op = expected_op(rule, value, leaf.op, leaf.implied)
        cases.append(Case(program, rule, where, check, op, int(value)))

    def walk(node: Check, where: str, groups: Groups | None) -> None:
        if isinstance(node, Threshold):
            leaf_case(node, f"{where}{node.metric}", groups)
        elif isinstance(node, AllOf | AnyOf):
            parts = node.all_of if isinstance(node, AllOf) else node.any_of
            for i, part in enumerate(parts):
                walk(part, f"{where}{type(node).__name__.lower()}[{i}].", groups)
        else:
            at_least = node.groups.at_least
            op = expected_op(rule, Fraction(at_least), ">=", at_least == 1)
            cases.append(Case(program, rule, f"{where}groups", node, op, at_least, groups=node))
            walk(node.groups.each, f"{where}each.", node)

    assert rule.check is not None
    walk(rule.check, "", None)
    return cases


def all_cases() -> list[Case]:
    cases: list[Case] = []
    for program in criteria.list_programs():
        for rule in criteria.load_ruleset(program).rules:
            if rule.check is not None:
                cases += _cases_of(program, rule)
    return cases


CASES = all_cases()


def isolated(case: Case) -> tuple[RuleSet, str]:
    """Return a one-rule rule set holding just this threshold, in the rule's first tier."""
    bundled = criteria.load_ruleset(case.program)
    tier = bundled.tier(case.rule.tiers[0])
    sources = {source_of(t.metric) for t in thresholds(case.check)} | {
        source_of(t.share_of) for t in thresholds(case.check) if t.share_of
    }
    source = next(s for s in ("measured", "registry", "declared") if s in sources)
    rule = {
        "id": case.rule.id,
        "tiers": [tier.id],
        "clause": case.rule.clause,
        "text": case.rule.text,
        "gloss": case.rule.gloss,
        "source": source,
        "check": case.check.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    data = {
        "schema_version": 1,
        "programme": bundled.programme.model_dump(mode="json"),
        "tiers": [tier.model_dump(mode="json")],
        "rules": [rule],
    }
    return parse_ruleset(data, f"{case.id} (isolated)"), tier.id


def first_path(node: Check) -> list[Threshold]:
    """Return the leaves that must pass for `node` to pass along its first alternative."""
    if isinstance(node, Threshold):
        return [node]
    if isinstance(node, AnyOf):
        return first_path(node.any_of[0])
    if isinstance(node, AllOf):
        return [leaf for part in node.all_of for leaf in first_path(part)]
    raise AssertionError("groups cannot be nested")


def passing(leaf: Threshold) -> int:
    assert leaf.value is not None
    value = int(leaf.value)
    return value + 1 if leaf.op == ">" else value


def figures_for(case: Case, value: int) -> Figures:
    figures = Figures()
    if case.groups is None:
        leaf = case.check
        if isinstance(leaf, Threshold):
            figures.add(leaf, value)
            return figures
        assert isinstance(leaf, Groups)
        spec = leaf.groups
        inner = spec.each
        assert isinstance(inner, Threshold)
        key = _keys(spec.by, [inner], 1)[0]
        figures.add(inner, value, key, spec.by)
        if spec.within is not None:
            figures.declared[spec.within.removeprefix("declared.")] = key
        return figures
    # The group count: `value` groups meet `each` along its first alternative.
    spec = case.groups.groups
    leaves = first_path(spec.each)
    keys = _keys(spec.by, leaves, max(value, spec.at_least))
    for key in keys[:value]:
        for leaf in leaves:
            figures.add(leaf, passing(leaf), key, spec.by)
    if spec.within is not None:
        figures.declared[spec.within.removeprefix("declared.")] = keys[: spec.at_least]
    return figures


def _keys(by: str, leaves: list[Threshold], n: int) -> list[str]:
    if by == "domain":
        pool = DOMAINS
    elif any(
        leaf.metric == "process_points" or leaf.industry_class == "process" for leaf in leaves
    ):
        pool = PROCESS
    else:
        pool = DISCRETE
    assert n <= len(pool), f"need {n} groups, have {len(pool)}"
    return pool[:n]


def test_every_numeric_threshold_has_a_case() -> None:
    numeric = sum(
        1
        for p in criteria.list_programs()
        for r in criteria.load_ruleset(p).rules
        if r.check is not None
        for t in thresholds(r.check)
        if t.value is not None
    )
    leaves = [c for c in CASES if c.groups is None]
    assert len(leaves) == numeric
    assert {c.op for c in CASES} == {">=", ">", "<="}
    assert any(c.op == ">" and c.rule.id == "jx-comprehensive-connections" for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_threshold_boundary(case: Case) -> None:
    rules, tier = isolated(case)
    below, at = case.values()
    verdicts = {}
    for value in (below, at):
        figures = figures_for(case, value)
        evaluation = evaluate(rules, figures.snapshot(), figures.declarations(), tier)
        (result,) = evaluation.results
        verdicts[value] = (result.verdict, result.check.detail)
    assert verdicts[below][0] == "fail", f"{case.op} {case.threshold} at {below}: {verdicts}"
    assert verdicts[at][0] == "pass", f"{case.op} {case.threshold} at {at}: {verdicts}"
