"""Which list explains which figure: rule thresholds as drill-down URLs (no database)."""

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import criteria
from api import drilldown_links
from criteria import Declaration
from criteria.model import thresholds

START = datetime(2024, 5, 1, 10, tzinfo=UTC)
END = datetime(2024, 5, 3, 6, tzinfo=UTC)


def query(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    return {k: v[0] for k, v in parse_qs(parts.query).items()} | {"path": parts.path}


def test_every_measured_and_app_figure_has_a_list_and_declared_rules_none() -> None:
    for program in criteria.list_programs():
        ruleset = criteria.load_ruleset(program)
        for tier in ruleset.tiers:
            lists = drilldown_links.by_rule(ruleset, tier, (), include_simulated=False)
            for rule in ruleset.rules_for(tier.id):
                found = lists[rule.id]
                if rule.source == "declared":
                    assert found == [], rule.id
                    continue
                metrics = {leaf.metric for leaf in thresholds(rule.check)} if rule.check else set()
                if metrics & {"connected_devices", "process_points", "industrial_apps"}:
                    assert found, rule.id


def test_filters_of_the_rule_are_in_the_url() -> None:
    ruleset = criteria.load_ruleset("jiangxi-2022")
    tier = ruleset.tier("comprehensive")
    lists = drilldown_links.by_rule(ruleset, tier, (), include_simulated=True)
    urls = {
        f.metric: query(f.drilldown.url(START, END)) for f in lists["jx-comprehensive-connections"]
    }
    assert urls["connected_devices"] == {
        "path": "/v1/drilldowns/devices",
        "start": "2024-05-01T10:00:00Z",
        "end": "2024-05-03T06:00:00Z",
        "include_simulated": "true",
        "status": "connected",
        "industry_class": "discrete",
    }
    assert urls["process_points"]["path"] == "/v1/drilldowns/points"
    assert urls["process_points"]["industry_class"] == "process"


def test_served_area_comes_from_the_declaration() -> None:
    ruleset = criteria.load_ruleset("jiangxi-2022")
    rule = next(
        r for r in ruleset.rules
        if r.check and any(t.scope == "served_area" for t in thresholds(r.check))
    )  # fmt: skip
    tier = ruleset.tier(rule.tiers[0])
    declared = Declaration(
        metric="served_region", value=["360100", "361100"], evidence_ref="charter.pdf",
        declared_by="ops", declared_at=START,
    )  # fmt: skip
    without = drilldown_links.by_rule(ruleset, tier, (), include_simulated=False)[rule.id]
    with_area = drilldown_links.by_rule(ruleset, tier, (declared,), include_simulated=False)
    assert "region" not in query(without[0].drilldown.url(START, END))
    assert query(with_area[rule.id][0].drilldown.url(START, END))["region"] == "360100,361100"


def test_bundle_file_names_are_stable_and_distinct() -> None:
    names: set[str] = set()
    lists: set[drilldown_links.Drilldown] = set()
    for program in criteria.list_programs():
        ruleset = criteria.load_ruleset(program)
        for tier in ruleset.tiers:
            for found in drilldown_links.by_rule(ruleset, tier, (), False).values():
                lists |= {f.drilldown for f in found}
    for drilldown in lists:
        name = drilldown.filename()
        assert name.startswith("drilldowns/") and name.endswith(".csv")
        assert "/" not in name.removeprefix("drilldowns/")
        names.add(name)
    assert len(names) == len(lists)
