"""Verifying bundles: which file changed, and re-evaluation against the stated verdicts."""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import criteria
from collector.bundles import signing
from collector.bundles.bundle import build_bundle, read_zip
from collector.bundles.verify import verify_bundle
from criteria.evidence import read_evidence

AT = datetime(2024, 5, 3, 6, tzinfo=UTC)
PROGRAM, TIER = "jiangsu-2018", "enterprise"


@pytest.fixture
def key(tmp_path: Path) -> signing.SigningKey:
    return signing.load_or_create(tmp_path)[0]


def report_files(tamper: Any = None) -> dict[str, bytes]:
    """Build a report.json like the API's from the example snapshot and declarations."""
    examples = criteria.rules_dir().parent / "examples"
    saved = read_evidence((examples / "snapshot.json").read_text(), "snapshot.json")
    declarations = json.loads((examples / "declarations.json").read_text())
    ruleset = criteria.load_ruleset(PROGRAM)
    parsed = [criteria.Declaration.model_validate(d) for d in declarations]
    evaluation = criteria.evaluate(ruleset, saved.snapshot, parsed, TIER)
    report: dict[str, Any] = {
        "programme": PROGRAM,
        "tier": TIER,
        "verdict": evaluation.verdict,
        "evaluation": evaluation.model_dump(mode="json"),
        "snapshot": saved.snapshot.model_dump(mode="json"),
        "declarations": declarations,
        "bundle": {"ruleset_file": f"rules/{PROGRAM}.yaml"},
    }
    if tamper is not None:
        tamper(report)
    rules = (criteria.rules_dir() / f"{PROGRAM}.yaml").read_bytes()
    return {"report.json": json.dumps(report).encode(), f"rules/{PROGRAM}.yaml": rules}


def bundle_of(files: dict[str, bytes], key: signing.SigningKey) -> dict[str, bytes]:
    return read_zip(build_bundle(files, key, report_id="r", created_at=AT).data, "test")


def test_an_intact_bundle_verifies_and_every_rule_is_compared(key: signing.SigningKey) -> None:
    verdict = verify_bundle(bundle_of(report_files(), key), None)
    assert verdict.ok, verdict.problems
    assert verdict.key_source == "bundled"
    assert verdict.rules_compared == len(criteria.load_ruleset(PROGRAM).rules_for(TIER))
    assert verdict.notes == []


def test_a_verdict_the_inputs_do_not_give_fails_even_when_signed(
    key: signing.SigningKey,
) -> None:
    def claim_fail(report: dict[str, Any]) -> None:
        result = next(r for r in report["evaluation"]["results"] if r["verdict"] == "pass")
        result["verdict"] = "fail"
        report["rule"] = result["rule"]

    files = report_files(claim_fail)
    rule = json.loads(files["report.json"])["rule"]
    verdict = verify_bundle(bundle_of(files, key), None)
    assert [p.file for p in verdict.problems] == ["report.json"]
    assert f"rule {rule}: re-evaluation gives pass" in verdict.problems[0].reason


def test_a_changed_snapshot_figure_changes_the_verdicts_it_feeds(
    key: signing.SigningKey,
) -> None:
    def no_managed_devices(report: dict[str, Any]) -> None:
        managed = report["snapshot"]["managed_devices"]
        report["snapshot"]["managed_devices"] = {"total": 0, "by_industry": {}, "by_type": {}}
        report["snapshot"]["managed_device_types"] = 0
        assert managed["total"] > 0

    verdict = verify_bundle(bundle_of(report_files(no_managed_devices), key), None)
    assert verdict.problems and {p.file for p in verdict.problems} == {"report.json"}


def test_a_rule_set_unlike_the_installed_one_is_used_and_noted(
    key: signing.SigningKey,
) -> None:
    files = report_files()
    name = f"rules/{PROGRAM}.yaml"
    text = files[name].decode()
    first_gloss = text.index("gloss: ") + len("gloss: ")
    files[name] = (text[:first_gloss] + "Edited. " + text[first_gloss:]).encode()
    verdict = verify_bundle(bundle_of(files, key), None)
    assert verdict.ok, verdict.problems
    assert any("differs from the one installed" in n for n in verdict.notes)
