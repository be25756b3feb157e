"""A snapshot that left simulated devices out says so in every device verdict."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

import criteria
from criteria import MetricsSnapshot, evaluate
from criteria.describe import explain

BASE: dict[str, Any] = {
    "window_start": datetime(2024, 1, 1, tzinfo=UTC),
    "window_end": datetime(2024, 2, 1, tzinfo=UTC),
    "connected_devices": {"total": 0, "by_industry": {}, "by_type": {}, "by_industry_type": {}},
    "managed_devices": {"total": 0, "by_industry": {}, "by_type": {}, "by_industry_type": {}},
    "device_types": 0,
    "managed_device_types": 0,
    "points": {"total": 0, "by_industry": {}},
    "process_points": {"total": 0, "by_industry": {}},
}


def snapshot(include_simulated: bool = False, **excluded: int) -> MetricsSnapshot:
    return MetricsSnapshot.model_validate(
        {**BASE, "include_simulated": include_simulated, "simulated_excluded": excluded or None}
    )


def test_device_verdicts_name_the_excluded_simulated_devices() -> None:
    snap = snapshot(connected_devices=40, managed_devices=5, points=200)
    result = evaluate(criteria.load_ruleset("jiangsu-2018"), snap, [], "enterprise")
    connections = "\n".join(explain(result.result("js-enterprise-connections")))
    assert "40 simulated connected devices were excluded" in connections
    assert "200 points of simulated devices were excluded" in connections
    managed = result.result("js-enterprise-managed")
    assert (managed.verdict, managed.measured) == ("fail", 0)
    assert "5 simulated managed devices were excluded" in (managed.check.detail or "")
    assert any("40 simulated devices connected in the window" in w for w in result.warnings)


def test_group_rules_say_it_too() -> None:
    snap = snapshot(connected_devices=3)
    result = evaluate(criteria.load_ruleset("jiangxi-2022"), snap, [], "comprehensive")
    groups = result.result("jx-comprehensive-industries-connected")
    assert groups.verdict == "fail"
    assert "3 simulated connected devices were excluded" in (groups.check.detail or "")


def test_nothing_is_said_when_nothing_was_excluded_or_not_stated() -> None:
    for snap in (snapshot(), snapshot(connected_devices=0)):
        result = evaluate(criteria.load_ruleset("jiangsu-2018"), snap, [], "enterprise")
        text = "\n".join(line for r in result.results for line in explain(r))
        assert "simulated" not in text
        assert not result.warnings


def test_an_included_snapshot_cannot_claim_exclusions() -> None:
    with pytest.raises(ValueError, match="simulated_excluded must be zero"):
        snapshot(include_simulated=True, connected_devices=1)
    assert snapshot(include_simulated=True).simulated_excluded is None
