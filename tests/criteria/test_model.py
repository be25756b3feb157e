"""Rule-set, snapshot and declaration models: validation and clear errors."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import criteria
from criteria.model import RuleSetError, load_ruleset_file, parse_ruleset
from criteria.snapshot import CallFigures, Counts, Declaration, MetricsSnapshot

START = datetime(2024, 1, 1, tzinfo=UTC)
END = datetime(2024, 3, 1, tzinfo=UTC)


def minimal_ruleset() -> dict[str, Any]:
    return {
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
            {
                "id": "t-devices",
                "tiers": ["basic"],
                "clause": "一.1",
                "text": "连接不少于10台设备",
                "gloss": "At least 10 connected devices.",
                "source": "measured",
                "check": {"metric": "connected_devices", "op": ">=", "value": 10, "unit": "台"},
            },
            {
                "id": "t-plan",
                "tiers": ["basic"],
                "clause": "一.2",
                "text": "有明确的计划",
                "gloss": "Has a plan.",
                "source": "declared",
            },
        ],
    }


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(RuleSetError) as excinfo:
        parse_ruleset(data, "test.yaml")
    return str(excinfo.value)


def test_minimal_ruleset_parses() -> None:
    ruleset = parse_ruleset(minimal_ruleset(), "test.yaml")
    assert [r.id for r in ruleset.rules_for("basic")] == ["t-devices", "t-plan"]
    assert ruleset.rule("t-devices").metrics == ("connected_devices",)
    assert ruleset.rule("t-plan").metrics == ()


def test_unknown_key_names_file_rule_and_path() -> None:
    data = minimal_ruleset()
    data["rules"][0]["check"]["treshold"] = 3
    message = error_of(data)
    assert "test.yaml" in message
    assert "rules[0](id=t-devices).check.treshold" in message
    assert "Extra inputs are not permitted" in message


def test_unknown_metric_lists_the_known_ones() -> None:
    data = minimal_ruleset()
    data["rules"][0]["check"]["metric"] = "conected_devices"
    message = error_of(data)
    assert "rules[0](id=t-devices).check" in message
    assert "unknown metric 'conected_devices'" in message
    assert "connected_devices" in message


def test_bad_comparator_is_rejected() -> None:
    data = minimal_ruleset()
    data["rules"][0]["check"]["op"] = "=>"
    assert "check.op" in error_of(data)


def test_check_without_a_known_key_is_explained() -> None:
    data = minimal_ruleset()
    data["rules"][0]["check"] = {"label": "x"}
    assert "a check needs one of the keys: metric, all, any, groups" in error_of(data)


def test_nested_paths_go_through_all_and_any() -> None:
    data = minimal_ruleset()
    data["rules"][0]["check"] = {
        "any": [
            {"metric": "connected_devices", "op": ">=", "value": 1},
            {
                "all": [
                    {"metric": "points", "op": ">=", "value": 1},
                    {"metric": "points", "op": "~"},
                ]
            },
        ]
    }
    assert "rules[0](id=t-devices).check.any[1].all[1].op" in error_of(data)


def test_filters_must_suit_the_metric() -> None:
    data = minimal_ruleset()
    data["rules"][0]["check"]["cross_platform"] = True
    assert "connected_devices does not take cross_platform" in error_of(data)


def test_calls_need_kinds() -> None:
    data = minimal_ruleset()
    data["rules"][0]["source"] = "registry"
    data["rules"][0]["check"] = {"metric": "monthly_calls", "op": ">=", "value": 1}
    assert "needs kinds" in error_of(data)


def test_groups_need_a_groupable_metric() -> None:
    data = minimal_ruleset()
    data["rules"][0]["source"] = "registry"
    data["rules"][0]["check"] = {
        "groups": {
            "by": "domain",
            "at_least": 2,
            "each": {"metric": "dev_tool_developers", "op": ">=", "value": 1},
        }
    }
    assert "dev_tool_developers cannot be grouped by domain" in error_of(data)


def test_industry_class_needs_industry_groups() -> None:
    data = minimal_ruleset()
    data["rules"][0]["source"] = "registry"
    data["rules"][0]["check"] = {
        "groups": {
            "by": "domain",
            "at_least": 2,
            "each": {
                "metric": "mechanism_models",
                "industry_class": "process",
                "op": ">=",
                "value": 1,
            },
        }
    }
    assert "does not take industry_class" in error_of(data)


def test_presence_checks_are_for_declared_figures_only() -> None:
    data = minimal_ruleset()
    data["rules"][0]["check"] = {"metric": "connected_devices"}
    assert "needs op and value" in error_of(data)


def test_share_must_be_a_percentage() -> None:
    data = minimal_ruleset()
    data["rules"][0]["check"] = {
        "metric": "connected_devices",
        "share_of": "declared.device_inventory",
        "op": ">=",
        "value": 50,
    }
    assert "set unit to '%'" in error_of(data)


def test_source_must_match_what_the_rule_reads() -> None:
    data = minimal_ruleset()
    data["rules"][0]["source"] = "registry"
    assert "set source: measured" in error_of(data)
    data = minimal_ruleset()
    data["rules"][1]["source"] = "measured"
    assert "set source: declared" in error_of(data)


def test_rule_ids_are_unique_and_tiers_known() -> None:
    data = minimal_ruleset()
    data["rules"][1]["id"] = "t-devices"
    assert "rule id t-devices is used twice" in error_of(data)
    data = minimal_ruleset()
    data["rules"][1]["tiers"] = ["advanced"]
    assert "unknown tiers ['advanced']" in error_of(data)


def test_every_tier_needs_rules() -> None:
    data = minimal_ruleset()
    data["tiers"].append({"id": "empty", "name": "空", "name_en": "Empty"})
    assert "tier empty has no rules" in error_of(data)


def test_unknown_tier_lists_the_valid_ones() -> None:
    ruleset = parse_ruleset(minimal_ruleset(), "test.yaml")
    assert ruleset.tier("基础").id == "basic"
    with pytest.raises(criteria.UnknownTierError, match=r"basic \(基础\)"):
        ruleset.tier("gold")


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("schema_version: 1\nrules:\n  - id: [unclosed\n", encoding="utf-8")
    with pytest.raises(RuleSetError, match=r"broken\.yaml: not valid YAML at line \d+"):
        load_ruleset_file(path)


def test_missing_file_is_a_rule_set_error(tmp_path: Path) -> None:
    with pytest.raises(RuleSetError, match="cannot read"):
        load_ruleset_file(tmp_path / "absent.yaml")


def test_load_ruleset_rejects_unknown_programmes() -> None:
    with pytest.raises(RuleSetError, match="bundled programmes: jiangsu-2018, jiangxi-2022"):
        criteria.load_ruleset("jiangxi-2023")


def test_list_programs() -> None:
    assert criteria.list_programs() == ["jiangsu-2018", "jiangxi-2022"]


# --- snapshot ------------------------------------------------------------------


def test_empty_snapshot_has_every_figure_absent() -> None:
    snapshot = MetricsSnapshot(window_start=START, window_end=END, include_simulated=False)
    assert snapshot.schema_version == criteria.SCHEMA_VERSION == 1
    assert snapshot.connected_devices is None
    assert snapshot.apps is None
    assert snapshot.calls is None


def test_snapshot_round_trips_through_json() -> None:
    snapshot = MetricsSnapshot(
        window_start=START,
        window_end=END,
        include_simulated=True,
        definitions={"connected_device": "good live sample in window"},
        connected_devices=Counts(
            total=3,
            by_industry={"C36": 2},
            by_type={"plc": 2, "cnc": 1},
            by_industry_type={"C36": {"plc": 2}},
        ),
        device_types=2,
        calls=CallFigures(
            months=("2024-01", "2024-02"),
            mechanism_model={"2024-01": 1, "2024-02": 2},
            algorithm={"2024-01": 0, "2024-02": 0},
            industrial_app={"2024-01": 0, "2024-02": 0},
            cloud_software={"2024-01": 0, "2024-02": 0},
            dev_tool={"2024-01": 0, "2024-02": 0},
        ),
    )
    text = snapshot.model_dump_json()
    assert json.loads(text)["schema_version"] == 1
    assert MetricsSnapshot.model_validate_json(text) == snapshot


def test_snapshot_rejects_unknown_fields_and_versions() -> None:
    base = {"window_start": START, "window_end": END, "include_simulated": False}
    with pytest.raises(ValidationError):
        MetricsSnapshot.model_validate({**base, "connected": 3})
    with pytest.raises(ValidationError):
        MetricsSnapshot.model_validate({**base, "schema_version": 2})


def test_snapshot_window_must_be_ordered_and_aware() -> None:
    with pytest.raises(ValidationError, match="window_end must be after window_start"):
        MetricsSnapshot(window_start=END, window_end=START, include_simulated=False)
    with pytest.raises(ValidationError):
        MetricsSnapshot.model_validate(
            {"window_start": datetime(2024, 1, 1), "window_end": END, "include_simulated": False}
        )


def test_snapshot_checks_its_own_consistency() -> None:
    base: dict[str, Any] = {"window_start": START, "window_end": END, "include_simulated": False}
    with pytest.raises(ValidationError, match="device_types is 3 but by_type lists 2 labels"):
        MetricsSnapshot.model_validate(
            {
                **base,
                "connected_devices": {"total": 3, "by_type": {"a": 1, "b": 2}},
                "device_types": 3,
            }
        )
    with pytest.raises(ValidationError, match="more than the total"):
        Counts(total=1, by_industry={"C26": 2})
    with pytest.raises(ValidationError, match=r"managed_devices\.total is more"):
        MetricsSnapshot.model_validate(
            {**base, "connected_devices": {"total": 1}, "managed_devices": {"total": 2}}
        )


def test_call_figures_need_every_month_for_every_kind() -> None:
    months = {"months": ["2024-01"], "mechanism_model": {"2024-01": 1}}
    rest = {k: {"2024-01": 0} for k in ("algorithm", "industrial_app", "cloud_software")}
    with pytest.raises(ValidationError, match="dev_tool must give a count"):
        CallFigures.model_validate({**months, **rest, "dev_tool": {}})
    with pytest.raises(ValidationError, match="not YYYY-MM"):
        CallFigures.model_validate({**months, **rest, "months": ["2024-13"], "dev_tool": {}})


# --- declarations ----------------------------------------------------------------


def test_declaration_needs_evidence_and_a_target() -> None:
    ok = {
        "rule": "jx-plan",
        "evidence_ref": "doc://plan.pdf",
        "declared_by": "ops",
        "declared_at": END,
    }
    assert Declaration.model_validate(ok).value is True
    bad = copy.deepcopy(ok)
    bad["evidence_ref"] = "   "
    with pytest.raises(ValidationError, match="must not be blank"):
        Declaration.model_validate(bad)
    bad = copy.deepcopy(ok)
    del bad["rule"]
    with pytest.raises(ValidationError, match="needs a rule, a clause or a metric"):
        Declaration.model_validate(bad)
    bad = copy.deepcopy(ok)
    del bad["evidence_ref"]
    with pytest.raises(ValidationError):
        Declaration.model_validate(bad)


def test_declaration_values_are_json() -> None:
    declaration = Declaration(
        metric="benchmark_cases",
        value={"C36": 2, "研发设计": 1},
        evidence_ref="doc://cases",
        declared_by="ops",
        declared_at=END,
    )
    assert Declaration.model_validate_json(declaration.model_dump_json()) == declaration


def test_rules_list_every_figure_they_read() -> None:
    jiangxi = criteria.load_ruleset("jiangxi-2022")
    assert jiangxi.rule("jx-regional-connections").metrics == (
        "connected_devices",
        "declared.served_region",
        "declared.served_parks",
        "managed_devices",
    )
    assert jiangxi.rule("jx-industry-connections").metrics == (
        "declared.specific_industry",
        "connected_devices",
        "process_points",
    )
    assert jiangxi.rule("jx-enterprise-connected-share").metrics == (
        "connected_devices",
        "declared.device_inventory",
    )
