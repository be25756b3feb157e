"""The listing of rules per programme and tier: generated, committed, complete, non-empty."""

from __future__ import annotations

import os
from pathlib import Path

import criteria
from criteria.coverage import listing, tier_listing

COMMITTED = criteria.rules_dir().parent / "COVERAGE.md"
ARTIFACTS = Path(os.environ.get("TALLY_TEST_ARTIFACTS", Path(__file__).parents[2] / "build"))


def test_listing_is_written_as_an_artifact_and_matches_the_committed_one() -> None:
    text = listing()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "criteria-coverage.md").write_text(text, encoding="utf-8")
    assert COMMITTED.read_text(encoding="utf-8") == text, (
        "criteria/COVERAGE.md is stale: run `python -m criteria.coverage > criteria/COVERAGE.md` "
        "and review the difference against the documents"
    )


def test_every_tier_lists_its_rules_and_every_rule_is_listed_under_its_tiers() -> None:
    text = listing()
    for program in criteria.list_programs():
        ruleset = criteria.load_ruleset(program)
        for tier in ruleset.tiers:
            rows = tier_listing(ruleset, tier.id)
            assert rows, f"{program} {tier.id} lists no rules"
            assert any("| measured |" in row for row in rows), f"{program} {tier.id}"
            programme = text.split(f"(`{program}`)")[1].split("\n## ")[0]
            section = programme.split(f"(`{tier.id}`)")[1].split("\n### ")[0]
            assert section.count("\n| ") - 1 == len(ruleset.rules_for(tier.id))
        listed = {
            rule.id
            for tier in ruleset.tiers
            for rule in ruleset.rules_for(tier.id)
            for row in tier_listing(ruleset, tier.id)
            if f"`{rule.id}`" in row
        }
        assert listed == {r.id for r in ruleset.rules}


def test_rows_quote_the_text_and_state_the_check() -> None:
    ruleset = criteria.load_ruleset("jiangxi-2022")
    (row,) = [r for r in tier_listing(ruleset, "comprehensive") if "jx-comprehensive-managed" in r]
    assert "managed_devices ≥ 100 台" in row
    assert "设备总数量应达到100台" in row.replace(" ", "")
