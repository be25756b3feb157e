"""Semantics of the pure evaluator, on small rule sets and on the bundled programmes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter

import criteria
from criteria import Declaration, Evaluation, MetricsSnapshot, RuleResult, evaluate
from criteria.model import RuleSet, parse_ruleset
from criteria.snapshot import APP_KINDS

START = datetime(2024, 1, 1, tzinfo=UTC)
END = datetime(2024, 3, 1, tzinfo=UTC)
MONTHS = ("2024-01", "2024-02")
WHEN = datetime(2024, 3, 2, tzinfo=UTC)


# --- builders ----------------------------------------------------------------------


def snapshot(**figures: Any) -> MetricsSnapshot:
    return MetricsSnapshot.model_validate(
        {"window_start": START, "window_end": END, "include_simulated": False, **figures}
    )


def declare(
    *, rule: str | None = None, metric: str | None = None, value: Any = True, **extra: Any
) -> Declaration:
    return Declaration.model_validate(
        {
            "rule": rule,
            "metric": metric,
            "value": value,
            "evidence_ref": f"doc://{rule or metric}",
            "declared_by": "operator@example",
            "declared_at": extra.pop("declared_at", WHEN),
            **extra,
        }
    )


def ruleset(*rules: dict[str, Any]) -> RuleSet:
    return parse_ruleset(
        {
            "schema_version": 1,
            "programme": {
                "id": "test-2024",
                "title": "测试",
                "title_en": "Test",
                "issuer": "nobody",
                "year": 2024,
                "source_text": "sources/test.txt",
                "source_sha256": "0" * 64,
            },
            "tiers": [{"id": "basic", "name": "基础", "name_en": "Basic"}],
            "rules": [
                {"tiers": ["basic"], "clause": "一", "text": "文", "gloss": "g", **rule}
                for rule in rules
            ],
        },
        "test",
    )


def one(rules: RuleSet, snap: MetricsSnapshot, *declarations: Declaration) -> RuleResult:
    evaluation = evaluate(rules, snap, declarations, "basic")
    assert len(evaluation.results) == 1
    return evaluation.results[0]


def rule_of(program: str, rule_id: str) -> RuleSet:
    """Return a one-rule, one-tier rule set holding a bundled rule, to test it alone."""
    bundled = criteria.load_ruleset(program)
    rule = bundled.rule(rule_id)
    data = rule.model_dump(mode="json", by_alias=True, exclude_none=True)
    data.pop("tiers")
    data.pop("clause")
    data.pop("text")
    data.pop("gloss")
    return ruleset(data)


def bundled(program: str, rule_id: str, snap: MetricsSnapshot, *decls: Declaration) -> RuleResult:
    return one(rule_of(program, rule_id), snap, *decls)


def calls(**per_kind: tuple[int, int]) -> dict[str, Any]:
    data: dict[str, Any] = {"months": list(MONTHS)}
    for kind in APP_KINDS:
        values = per_kind.get(kind, (0, 0))
        data[kind] = dict(zip(MONTHS, values, strict=True))
    return data


def apps(**overrides: Any) -> dict[str, Any]:
    counts = {"total": 0, "by_category": {}, "by_industry": {}, "by_domain": {}}
    data: dict[str, Any] = {k: {"registered": counts, "cross_platform": counts} for k in APP_KINDS}
    data.update(overrides)
    return data


# --- comparators -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "measured", "verdict", "margin"),
    [
        (">=", 10, "pass", 0),
        (">=", 9, "fail", -1),
        (">=", 11, "pass", 1),
        (">", 10, "fail", 0),
        (">", 11, "pass", 1),
    ],
)
def test_comparators_at_the_boundary(op: str, measured: int, verdict: str, margin: int) -> None:
    rules = ruleset(
        {
            "id": "r",
            "source": "measured",
            "check": {"metric": "connected_devices", "op": op, "value": 10},
        }
    )
    result = one(rules, snapshot(connected_devices={"total": measured}))
    assert (result.verdict, result.measured, result.threshold, result.margin, result.op) == (
        verdict,
        measured,
        10,
        margin,
        op,
    )


def test_more_than_ten_types_means_eleven() -> None:
    # 二.(一).3 设备种类超过10类: 超过 excludes the number.
    def types(n: int) -> MetricsSnapshot:
        by_type = {f"t{i}": 100 for i in range(n)}
        return snapshot(
            connected_devices={
                "total": 100 * n,
                "by_industry": {"C36": 100 * n},
                "by_type": by_type,
                "by_industry_type": {"C36": by_type},
            },
            device_types=n,
            process_points={"total": 0, "by_industry": {}},
        )

    ten = bundled("jiangxi-2022", "jx-comprehensive-connections", types(10))
    assert ten.verdict == "fail"
    discrete = ten.alternatives[0]
    assert [c.verdict for c in discrete.children] == ["pass", "fail"]
    assert discrete.children[1].op == ">"
    assert discrete.children[1].margin == 0
    assert bundled("jiangxi-2022", "jx-comprehensive-connections", types(11)).verdict == "pass"


def test_at_most_for_rankings() -> None:
    rules = rule_of("jiangsu-2018", "js-key-revenue-rank")
    assert one(rules, snapshot(), declare(metric="revenue_rank", value=10)).verdict == "pass"
    result = one(rules, snapshot(), declare(metric="revenue_rank", value=11))
    assert (result.verdict, result.margin) == ("fail", -1)


# --- alternatives ------------------------------------------------------------------


def test_alternatives_pass_on_either_and_show_both() -> None:
    rule = "js-enterprise-connections"
    discrete = snapshot(
        connected_devices={"total": 100, "by_industry": {"C34": 100}}, process_points={"total": 0}
    )
    result = bundled("jiangsu-2018", rule, discrete)
    assert result.verdict == "pass"
    assert [a.label for a in result.alternatives] == ["离散行业", "流程行业"]
    assert [a.verdict for a in result.alternatives] == ["pass", "fail"]

    process = snapshot(
        connected_devices={"total": 40, "by_industry": {"C26": 40}},
        process_points={"total": 3000, "by_industry": {"C26": 3000}},
    )
    result = bundled("jiangsu-2018", rule, process)
    assert [a.verdict for a in result.alternatives] == ["fail", "pass"]
    assert result.verdict == "pass"

    neither = snapshot(
        connected_devices={"total": 99, "by_industry": {"C34": 99}}, process_points={"total": 2999}
    )
    assert bundled("jiangsu-2018", rule, neither).verdict == "fail"


def test_alternative_without_evidence_makes_a_failing_rule_insufficient() -> None:
    # The discrete alternative fails; the process one cannot be read: not proven either way.
    snap = snapshot(connected_devices={"total": 10, "by_industry": {"C34": 10}})
    result = bundled("jiangsu-2018", "js-enterprise-connections", snap)
    assert [a.verdict for a in result.alternatives] == ["fail", "insufficient_evidence"]
    assert result.verdict == "insufficient_evidence"


def test_discrete_alternative_counts_discrete_industries_only() -> None:
    snap = snapshot(
        connected_devices={"total": 250, "by_industry": {"C34": 60, "C26": 150}},
        process_points={"total": 10},
    )
    result = bundled("jiangsu-2018", "js-enterprise-connections", snap)
    discrete = result.alternatives[0]
    assert (discrete.measured, discrete.verdict) == (60, "fail")
    assert discrete.detail is not None
    assert "150 in other industries" in discrete.detail
    assert "40 without an industry" in discrete.detail


# --- K industries each N -------------------------------------------------------------


def test_k_industries_each_meeting_n() -> None:
    rule = "jx-comprehensive-industries-connected"
    two = snapshot(
        connected_devices={"total": 1000, "by_industry": {"C36": 500, "C34": 500}},
        process_points={"total": 0, "by_industry": {}},
    )
    result = bundled("jiangxi-2022", rule, two)
    assert (result.verdict, result.measured, result.threshold, result.margin) == ("pass", 2, 2, 0)
    assert [g.group for g in result.check.groups] == ["C34", "C36"]
    assert result.check.groups[0].name == "通用设备制造业"

    short = snapshot(
        connected_devices={"total": 999, "by_industry": {"C36": 500, "C34": 499}},
        process_points={"total": 0, "by_industry": {}},
    )
    assert bundled("jiangxi-2022", rule, short).verdict == "fail"


def test_each_industry_meets_its_own_measure() -> None:
    # A process industry counts by process points, not by devices.
    snap = snapshot(
        connected_devices={"total": 1000, "by_industry": {"C36": 500, "C26": 500}},
        process_points={"total": 2500, "by_industry": {"C25": 2500}},
    )
    result = bundled("jiangxi-2022", "jx-comprehensive-industries-connected", snap)
    outcomes = {g.group: g.verdict for g in result.check.groups}
    assert outcomes == {"C25": "pass", "C26": "fail", "C36": "pass"}
    assert result.measured == 2


def test_finer_industry_codes_roll_up_to_their_division() -> None:
    snap = snapshot(
        connected_devices={"total": 1000, "by_industry": {"C3611": 300, "C3670": 200, "C34": 500}},
        process_points={"total": 0, "by_industry": {}},
    )
    result = bundled("jiangxi-2022", "jx-comprehensive-industries-connected", snap)
    assert result.verdict == "pass"
    assert {g.group for g in result.check.groups} == {"C34", "C36"}


def test_unknown_industry_codes_are_insufficient_not_counted() -> None:
    snap = snapshot(
        connected_devices={"total": 1000, "by_industry": {"C36": 500, "Z99": 500}},
        process_points={"total": 0, "by_industry": {}},
    )
    result = bundled("jiangxi-2022", "jx-comprehensive-industries-connected", snap)
    assert {g.group: g.verdict for g in result.check.groups} == {
        "C36": "pass",
        "Z99": "insufficient_evidence",
    }
    assert result.verdict == "insufficient_evidence"


def test_groups_without_a_breakdown_are_insufficient() -> None:
    snap = snapshot(connected_devices={"total": 5000}, process_points={"total": 0})
    result = bundled("jiangxi-2022", "jx-comprehensive-industries-connected", snap)
    assert result.verdict == "insufficient_evidence"
    assert result.check.detail is not None
    assert "connected_devices by industry" in result.check.detail


def test_domains_each_meeting_models_and_apps() -> None:
    def domains(models: int) -> MetricsSnapshot:
        by_domain = {"研发设计": models, "生产制造": 10}
        counts = {"total": models + 10, "by_domain": by_domain}
        return snapshot(
            apps=apps(
                mechanism_model={"registered": counts},
                industrial_app={
                    "registered": {"total": 20, "by_domain": {"研发设计": 10, "生产制造": 10}}
                },
            )
        )

    assert bundled("jiangxi-2022", "jx-comprehensive-domains", domains(10)).verdict == "pass"
    result = bundled("jiangxi-2022", "jx-comprehensive-domains", domains(9))
    assert (result.verdict, result.measured) == ("fail", 1)


# --- categories and count ------------------------------------------------------------


@pytest.mark.parametrize(
    ("categories", "count", "verdict"),
    [(3, 150, "pass"), (2, 150, "fail"), (3, 149, "fail"), (4, 200, "pass")],
)
def test_categories_and_count(categories: int, count: int, verdict: str) -> None:
    by_category = {f"c{i}": 1 for i in range(1, categories)}
    by_category["c0"] = count - (categories - 1)
    cross = {"total": count, "by_category": by_category}
    mechanism = {"registered": {"total": 1000}, "cross_platform": cross}
    result = bundled(
        "jiangsu-2018", "js-cross-mechanism-models", snapshot(apps=apps(mechanism_model=mechanism))
    )
    assert result.verdict == verdict
    assert [c.measured for c in result.check.children] == [categories, count]


def test_cross_platform_figures_are_required() -> None:
    mechanism = {"registered": {"total": 1000, "by_category": {"a": 400, "b": 300, "c": 300}}}
    result = bundled(
        "jiangsu-2018", "js-cross-mechanism-models", snapshot(apps=apps(mechanism_model=mechanism))
    )
    assert result.verdict == "insufficient_evidence"


# --- shares ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("connected", "inventory", "verdict", "measured"),
    [(50, 100, "pass", 50), (49, 100, "fail", 49), (1, 2, "pass", 50), (1, 3, "fail", 33.333333)],
)
def test_connected_share_of_declared_inventory(
    connected: int, inventory: int, verdict: str, measured: float
) -> None:
    result = bundled(
        "jiangxi-2022",
        "jx-enterprise-connected-share",
        snapshot(connected_devices={"total": connected}),
        declare(metric="device_inventory", value=inventory),
    )
    assert (result.verdict, result.measured, result.unit) == (verdict, measured, "%")
    assert result.check.evidence == ("doc://device_inventory",)


def test_managed_share_is_of_the_inventory_not_of_connected() -> None:
    snap = snapshot(connected_devices={"total": 100}, managed_devices={"total": 5})
    result = bundled(
        "jiangxi-2022",
        "jx-enterprise-managed-share",
        snap,
        declare(metric="device_inventory", value=100),
    )
    assert (result.verdict, result.measured, result.margin) == ("pass", 5, 0)
    result = bundled(
        "jiangxi-2022",
        "jx-enterprise-managed-share",
        snap,
        declare(metric="device_inventory", value=101),
    )
    assert result.verdict == "fail"


def test_share_without_a_base_is_insufficient() -> None:
    snap = snapshot(connected_devices={"total": 100})
    rule = "jx-enterprise-connected-share"
    assert bundled("jiangxi-2022", rule, snap).verdict == "insufficient_evidence"
    zero = bundled("jiangxi-2022", rule, snap, declare(metric="device_inventory", value=0))
    assert zero.verdict == "insufficient_evidence"
    assert zero.check.detail is not None
    assert "zero" in zero.check.detail
    text = bundled("jiangxi-2022", rule, snap, declare(metric="device_inventory", value="lots"))
    assert text.verdict == "insufficient_evidence"


def test_third_party_developer_share() -> None:
    rule = "js-cross-third-party-share"
    assert (
        bundled(
            "jiangsu-2018", rule, snapshot(developers={"total": 500, "third_party": 100})
        ).verdict
        == "pass"
    )
    assert (
        bundled(
            "jiangsu-2018", rule, snapshot(developers={"total": 501, "third_party": 100})
        ).verdict
        == "fail"
    )


def test_declared_share() -> None:
    rule = "js-key-rd-share"
    result = bundled(
        "jiangsu-2018",
        rule,
        snapshot(),
        declare(metric="rd_expense", value=1.5e7),
        declare(metric="revenue", value=1.5e8),
    )
    assert (result.verdict, result.measured, result.margin) == ("pass", 10, 0)
    assert set(result.check.evidence) == {"doc://rd_expense", "doc://revenue"}


# --- absent figures -------------------------------------------------------------------


def test_absent_metric_is_insufficient_never_zero() -> None:
    rules = ruleset(
        {
            "id": "r",
            "source": "measured",
            "check": {"metric": "managed_devices", "op": ">=", "value": 0},
        }
    )
    result = one(rules, snapshot())
    assert result.verdict == "insufficient_evidence"
    assert result.measured is None
    assert result.check.detail == "managed_devices is not in the snapshot"


@pytest.mark.parametrize("program", ["jiangxi-2022", "jiangsu-2018"])
def test_an_empty_snapshot_fails_nothing(program: str) -> None:
    rules = criteria.load_ruleset(program)
    for tier in rules.tiers:
        evaluation = evaluate(rules, snapshot(), [], tier.id)
        assert evaluation.counts["fail"] == 0
        assert evaluation.verdict == "insufficient_evidence"
        assert all(r.measured is None for r in evaluation.results)


# --- declarations -----------------------------------------------------------------------


def test_qualitative_rule_needs_a_declaration() -> None:
    rules = ruleset({"id": "plan", "source": "declared"})
    missing = one(rules, snapshot())
    assert missing.verdict == "insufficient_evidence"
    assert missing.check.detail is not None
    assert "declare it with an evidence reference" in missing.check.detail
    met = one(rules, snapshot(), declare(rule="plan"))
    assert (met.verdict, met.check.evidence) == ("pass", ("doc://plan",))
    assert one(rules, snapshot(), declare(rule="plan", value=False)).verdict == "fail"
    assert (
        one(rules, snapshot(), declare(rule="plan", value="yes")).verdict == "insufficient_evidence"
    )
    assert (
        one(rules, snapshot(), declare(rule="plan", not_applicable=True)).verdict
        == "not_applicable"
    )


def test_declarations_by_clause_programme_and_tier() -> None:
    rules = ruleset({"id": "plan", "source": "declared"})
    assert one(rules, snapshot(), declare(clause="一")).verdict == "pass"
    assert one(rules, snapshot(), declare(clause="二")).verdict == "insufficient_evidence"
    assert (
        one(rules, snapshot(), declare(rule="plan", program="other")).verdict
        == "insufficient_evidence"
    )
    assert one(rules, snapshot(), declare(rule="plan", program="test-2024")).verdict == "pass"
    assert (
        one(rules, snapshot(), declare(rule="plan", tier="gold")).verdict == "insufficient_evidence"
    )
    assert one(rules, snapshot(), declare(rule="plan", tier="基础")).verdict == "pass"


def test_latest_declaration_wins() -> None:
    rules = ruleset({"id": "plan", "source": "declared"})
    old = declare(rule="plan", value=True, declared_at=WHEN)
    new = declare(rule="plan", value=False, declared_at=WHEN + timedelta(days=1))
    assert one(rules, snapshot(), new, old).verdict == "fail"
    assert one(rules, snapshot(), old, new).verdict == "fail"


def test_declared_figures() -> None:
    rules = rule_of("jiangxi-2022", "jx-staff")
    assert one(rules, snapshot(), declare(metric="staff", value=10)).verdict == "pass"
    result = one(rules, snapshot(), declare(metric="staff", value=9))
    assert (result.verdict, result.measured, result.margin) == ("fail", 9, -1)
    assert (
        one(rules, snapshot(), declare(metric="staff", value=True)).verdict
        == "insufficient_evidence"
    )
    assert one(rules, snapshot()).verdict == "insufficient_evidence"


def test_declared_counts_use_the_closed_list() -> None:
    rules = rule_of("jiangxi-2022", "jx-enterprise-integrated-systems")
    ok = one(
        rules,
        snapshot(),
        declare(metric="integrated_system_classes", value=["研发设计类", "生产制造类"]),
    )
    assert (ok.verdict, ok.measured) == ("pass", 2)
    other = one(
        rules,
        snapshot(),
        declare(metric="integrated_system_classes", value=["研发设计类", "财务类"]),
    )
    assert (other.verdict, other.measured) == ("fail", 1)
    assert other.check.detail is not None
    assert "财务类" in other.check.detail


def test_declared_minimum_over_covered_items() -> None:
    rules = rule_of("jiangxi-2022", "jx-comprehensive-benchmark-cases")
    ok = one(rules, snapshot(), declare(metric="benchmark_cases", value={"C36": 2, "研发设计": 1}))
    assert (ok.verdict, ok.measured) == ("pass", 1)
    gap = one(rules, snapshot(), declare(metric="benchmark_cases", value={"C36": 2, "某园区": 0}))
    assert gap.verdict == "fail"
    assert (
        one(rules, snapshot(), declare(metric="benchmark_cases", value={})).verdict
        == "insufficient_evidence"
    )


def test_not_applicable_cannot_override_measured_rules() -> None:
    rules = rule_of("jiangsu-2018", "js-key-managed")
    evaluation = evaluate(
        rules,
        snapshot(managed_devices={"total": 1}),
        [declare(rule="js-key-managed", not_applicable=True)],
        "basic",
    )
    assert evaluation.results[0].verdict == "fail"
    assert any("was ignored" in w for w in evaluation.warnings)


def test_declarations_for_unknown_rules_are_reported() -> None:
    rules = ruleset({"id": "plan", "source": "declared"})
    evaluation = evaluate(rules, snapshot(), [declare(rule="plna")], "basic")
    assert any("'plna'" in w for w in evaluation.warnings)


# --- scopes: specific industry and served area ------------------------------------------


def test_specific_industry_is_declared() -> None:
    rule = "jx-industry-connections"
    snap = snapshot(
        connected_devices={"total": 1500, "by_industry": {"C36": 1000, "C34": 500}},
        process_points={"total": 0, "by_industry": {}},
    )
    missing = bundled("jiangxi-2022", rule, snap)
    assert missing.verdict == "insufficient_evidence"
    assert (
        bundled(
            "jiangxi-2022", rule, snap, declare(metric="specific_industry", value="C3611")
        ).verdict
        == "pass"
    )
    other = bundled("jiangxi-2022", rule, snap, declare(metric="specific_industry", value="C34"))
    assert other.verdict == "fail"
    bad = bundled("jiangxi-2022", rule, snap, declare(metric="specific_industry", value="E47"))
    assert bad.verdict == "insufficient_evidence"


def test_served_area_scopes_device_counts() -> None:
    rule = "jx-regional-connections"
    snap = snapshot(
        connected_devices={
            "total": 700,
            "by_region": {"360111": 300, "360112": 200, "361002": 200},
        },
        managed_devices={"total": 150, "by_region": {"360111": 100, "361002": 50}},
    )
    assert bundled("jiangxi-2022", rule, snap).verdict == "insufficient_evidence"
    city = bundled("jiangxi-2022", rule, snap, declare(metric="served_region", value=["360100"]))
    assert [c.measured for c in city.check.children] == [500, 100]
    assert city.verdict == "pass"
    county = bundled("jiangxi-2022", rule, snap, declare(metric="served_region", value="360111"))
    assert county.verdict == "fail"
    province = bundled("jiangxi-2022", rule, snap, declare(metric="served_region", value="360000"))
    assert [c.measured for c in province.check.children] == [700, 150]


def test_served_parks() -> None:
    snap = snapshot(
        connected_devices={"total": 600, "by_park": {"南昌高新区": 400, "赣州经开区": 200}},
        managed_devices={"total": 100, "by_park": {"南昌高新区": 100}},
    )
    parks = declare(metric="served_parks", value=["南昌高新区", "赣州经开区"])
    assert bundled("jiangxi-2022", "jx-regional-connections", snap, parks).verdict == "pass"
    area = bundled("jiangxi-2022", "jx-regional-served-area", snap, parks)
    assert [a.verdict for a in area.alternatives] == ["insufficient_evidence", "pass"]
    one_park = declare(metric="served_parks", value=["南昌高新区"])
    assert (
        bundled("jiangxi-2022", "jx-regional-served-area", snap, one_park).verdict
        == "insufficient_evidence"
    )
    region = declare(metric="served_region", value=["360100"])
    assert bundled("jiangxi-2022", "jx-regional-served-area", snap, region).verdict == "pass"


# --- calls -------------------------------------------------------------------------------


def test_every_month_versus_monthly_average() -> None:
    snap = snapshot(
        calls=calls(dev_tool=(2999, 5000), mechanism_model=(600, 300), algorithm=(100, 0))
    )
    every = bundled("jiangsu-2018", "js-cross-dev-tool-calls", snap)
    assert (every.verdict, every.measured) == ("fail", 2999)
    average = bundled("jiangsu-2018", "js-industry-model-calls", snap)
    assert (average.verdict, average.measured) == ("pass", 500)


def test_a_window_without_a_full_month_has_no_monthly_figure() -> None:
    snap = snapshot(calls={"months": [], **{k: {} for k in APP_KINDS}})
    assert (
        bundled("jiangsu-2018", "js-industry-model-calls", snap).verdict == "insufficient_evidence"
    )


# --- the bundled programmes end to end ------------------------------------------------------


def full_snapshot() -> MetricsSnapshot:
    types = {f"type-{i}": 100 for i in range(40)}
    app_counts = {
        "total": 600,
        "by_category": {f"cat-{i}": 100 for i in range(6)},
        "by_industry": {"C36": 200, "C34": 200, "C39": 200},
        "by_domain": {"研发设计": 200, "生产制造": 200, "运营管理": 200},
    }
    return snapshot(
        definitions={"connected_device": "a good live sample in the window"},
        connected_devices={
            "total": 20000,
            "by_industry": {"C36": 6000, "C34": 6000, "C39": 6000, "C26": 2000},
            "by_type": types,
            "by_industry_type": {"C36": types},
            "by_region": {"360111": 20000},
        },
        device_types=40,
        managed_devices={
            "total": 5000,
            "by_industry": {"C36": 2500, "C34": 2500},
            "by_type": {f"m{i}": 1000 for i in range(5)},
            "by_region": {"360111": 5000},
        },
        managed_device_types=5,
        points={"total": 200000},
        process_points={"total": 100000, "by_industry": {"C26": 50000, "C25": 50000}},
        apps={k: {"registered": app_counts, "cross_platform": app_counts} for k in APP_KINDS},
        subscriptions={
            "subscriptions": 10000,
            "enterprises": 5000,
            "enterprises_by_kind": {"large": 1000, "sme": 3000, "park": 1000},
            "users": 6000,
            "users_by_kind": {"staff": 3000, "developer": 2000, "individual": 1000},
        },
        enterprise_users={"total": 100, "by_industry": {"C36": 30, "C34": 30, "C39": 30}},
        developers={"total": 2000, "third_party": 1000, "dev_tool_callers": 1500, "languages": 4},
        calls=calls(**{k: (5000, 5000) for k in APP_KINDS}),
    )


def full_declarations(rules: RuleSet, tier: str) -> list[Declaration]:
    decls = [declare(rule=r.id) for r in rules.rules_for(tier) if r.check is None]
    figures: dict[str, Any] = {
        "staff": 100,
        "device_inventory": 20000,
        "specific_industry": "C36",
        "served_region": ["360100"],
        "regional_services": ["产业数据监测", "人才培训"],
        "integrated_system_classes": ["研发设计类", "生产制造类"],
        "benchmark_cases": {"C36": 2, "C34": 1},
        "profitable_years": 3,
        "revenue_rank": 4,
        "rd_expense": 2.0e7,
        "revenue": 1.0e8,
    }
    decls += [declare(metric=name, value=value) for name, value in figures.items()]
    return decls


def every_tier() -> list[tuple[str, str]]:
    return [(p, t.id) for p in criteria.list_programs() for t in criteria.load_ruleset(p).tiers]


@pytest.mark.parametrize(("program", "tier"), every_tier())
def test_every_tier_can_pass(program: str, tier: str) -> None:
    rules = criteria.load_ruleset(program)
    evaluation = evaluate(rules, full_snapshot(), full_declarations(rules, tier), tier)
    failing = [
        (r.rule, r.verdict, r.check.detail) for r in evaluation.results if r.verdict != "pass"
    ]
    assert failing == []
    assert evaluation.verdict == "pass"
    assert evaluation.by_source.get("measured", "pass") == "pass"


@pytest.mark.parametrize(("program", "tier"), every_tier())
def test_one_short_figure_fails_the_tier(program: str, tier: str) -> None:
    rules = criteria.load_ruleset(program)
    short = full_snapshot().model_copy(
        update={"managed_devices": None, "managed_device_types": None}
    )
    evaluation = evaluate(rules, short, full_declarations(rules, tier), tier)
    assert evaluation.verdict == "insufficient_evidence"
    decls = [d for d in full_declarations(rules, tier) if d.metric != "staff"]
    decls.append(declare(metric="staff", value=1))
    with_staff = evaluate(rules, full_snapshot(), decls, tier)
    has_staff_rule = any("declared.staff" in r.metrics for r in rules.rules_for(tier))
    assert with_staff.verdict == ("fail" if has_staff_rule else "pass")


def test_evaluation_reports_window_definitions_and_counts() -> None:
    rules = criteria.load_ruleset("jiangsu-2018")
    evaluation = evaluate(rules, full_snapshot(), full_declarations(rules, "enterprise"), "企业级")
    assert (evaluation.tier, evaluation.tier_name) == ("enterprise", "企业级")
    assert evaluation.window_start == START
    assert evaluation.definitions == {"connected_device": "a good live sample in the window"}
    assert sum(evaluation.counts.values()) == len(evaluation.results)
    assert evaluation.result("js-enterprise-managed").measured == 5000
    assert evaluation.warnings == ()


def test_simulated_snapshots_are_flagged() -> None:
    rules = criteria.load_ruleset("jiangsu-2018")
    simulated = full_snapshot().model_copy(update={"include_simulated": True})
    evaluation = evaluate(rules, simulated, [], "enterprise")
    assert evaluation.include_simulated
    assert any("simulated" in w for w in evaluation.warnings)


def test_unknown_tier_is_an_error() -> None:
    with pytest.raises(criteria.UnknownTierError, match="跨行业跨领域"):
        evaluate(criteria.load_ruleset("jiangsu-2018"), snapshot(), [], "gold")


def test_evaluation_is_pure_and_serialisable() -> None:
    rules = criteria.load_ruleset("jiangxi-2022")
    snap = full_snapshot()
    decls = full_declarations(rules, "comprehensive")
    before = (snap.model_dump_json(), [d.model_dump_json() for d in decls])
    first = evaluate(rules, snap, decls, "comprehensive")
    second = evaluate(rules, snap, tuple(decls), "comprehensive")
    assert first == second
    assert (snap.model_dump_json(), [d.model_dump_json() for d in decls]) == before
    assert Evaluation.model_validate_json(first.model_dump_json()) == first


# --- the bundled example --------------------------------------------------------------------


def test_bundled_example_meets_jiangsu_enterprise() -> None:
    examples = criteria.rules_dir().parent / "examples"
    snap = MetricsSnapshot.model_validate_json(
        (examples / "snapshot.json").read_text(encoding="utf-8")
    )
    decls = TypeAdapter(list[Declaration]).validate_json(
        (examples / "declarations.json").read_text(encoding="utf-8")
    )
    jiangsu = evaluate(criteria.load_ruleset("jiangsu-2018"), snap, decls, "enterprise")
    assert jiangsu.verdict == "pass"
    assert jiangsu.result("js-enterprise-model-calls").measured == pytest.approx(238.333333)
    # The same enterprise against Jiangxi: shares pass on the declared inventory of 160,
    # but 3 kinds of cloud software fall short of 5.
    jiangxi = evaluate(criteria.load_ruleset("jiangxi-2022"), snap, decls, "enterprise")
    assert jiangxi.result("jx-enterprise-connected-share").measured == 75
    assert jiangxi.result("jx-enterprise-cloud-migration").verdict == "fail"
    assert jiangxi.verdict == "fail"
