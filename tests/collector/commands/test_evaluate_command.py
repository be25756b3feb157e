"""`tally evaluate`: a saved snapshot re-evaluated offline gives exactly the API's verdicts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import criteria
from api.auth import Role
from collector.cli import main
from tests.api.apitest import WINDOW, Seed, api_client, bearer, build_fleet, role_keys

EVERY_TIER = [(p, t.id) for p in criteria.list_programs() for t in criteria.load_ruleset(p).tiers]

DECLARED = {
    "staff": 60,
    "device_inventory": 8,
    "specific_industry": "C26",
    "served_region": ["360100"],
    "regional_services": ["产业数据监测"],
    "jx-architecture": True,
    "js-key-plan": False,
}


@pytest.fixture
def seed(database_url: str) -> Iterator[Seed]:
    s = Seed(database_url)
    try:
        yield s
    finally:
        s.close()


def evaluate_offline(path: Path, program: str, tier: str, tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / f"offline-{program}-{tier}.json"
    code = main(
        ["evaluate", "--snapshot", str(path), "--program", program, "--tier", tier,
         "--format", "json", "-o", str(out)]
    )  # fmt: skip
    assert code == 0
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return report


@pytest.mark.integration
async def test_offline_verdicts_equal_the_api_rule_by_rule(
    database_url: str, seed: Seed, tmp_path: Path
) -> None:
    ids = build_fleet(seed)
    seed.conn.execute(
        "INSERT INTO control_op (device_id, kind, requested_by, requested_at, outcome)"
        " VALUES (%s, 'write', 'test', '2024-05-02T03:00:00Z', 'verified')",
        (ids["b-lathe"],),
    )
    keys = await role_keys(database_url)
    compared = 0
    async with api_client(database_url) as (client, _):
        for key, value in DECLARED.items():
            answer = await client.put(
                f"/v1/declarations/{key}",
                json={"value": value, "evidence_ref": f"evidence/{key}.pdf"},
                headers=bearer(keys[Role.OPERATOR]),
            )
            assert answer.status_code == 200, answer.text
        for program, tier in EVERY_TIER:
            answer = await client.get(
                f"/v1/programs/{program}/tiers/{tier}/evaluation",
                params=WINDOW,
                headers=bearer(keys[Role.AUDITOR]),
            )
            assert answer.status_code == 200, answer.text
            online = answer.json()
            saved = tmp_path / f"api-{program}-{tier}.json"
            saved.write_text(answer.text, encoding="utf-8")
            offline = evaluate_offline(saved, program, tier, tmp_path)["evaluation"]
            api_results = online["evaluation"]["results"]
            assert [r["rule"] for r in offline["results"]] == [r["rule"] for r in api_results]
            for mine, theirs in zip(offline["results"], api_results, strict=True):
                # The API adds the links to the drill-downs behind each rule's figures.
                assert theirs["drilldown"] is None or theirs["drilldown"].startswith("/v1/")
                linked = {k: v for k, v in theirs.items() if k not in ("drilldown", "drilldowns")}
                assert mine == linked, mine["rule"]
                compared += 1
            assert offline["verdict"] == online["verdict"]
            assert offline["counts"] == online["evaluation"]["counts"]
            assert offline["warnings"] == online["evaluation"]["warnings"]
    assert compared == sum(len(criteria.load_ruleset(p).rules_for(t)) for p, t in EVERY_TIER)


def test_text_output_lists_every_rule_and_the_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = criteria.rules_dir().parent / "examples" / "snapshot.json"
    assert main(["evaluate", "--snapshot", str(example), "--program", "jiangsu-2018",
                 "--tier", "企业级"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "2024-01-01T00:00:00+08:00" in out and "simulated devices excluded" in out
    for rule in criteria.load_ruleset("jiangsu-2018").rules_for("enterprise"):
        assert rule.id in out
    assert "js-enterprise-managed" in out and "35 ≥ 30 台" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"hello": 1}', "no snapshot in it"),
        ('{"snapshot": {"window_start": "2024-01-01"}}', "not a valid snapshot"),
    ],
)
def test_unusable_files_are_explained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    code = main(["evaluate", "--snapshot", str(path), "--program", "jiangxi-2022",
                 "--tier", "enterprise"])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("tally evaluate: ") and message in err and "bad.json" in err


def test_unknown_tier_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = criteria.rules_dir().parent / "examples" / "snapshot.json"
    assert main(["evaluate", "--snapshot", str(example), "--program", "jiangxi-2022",
                 "--tier", "gold"]) == 1  # fmt: skip
    assert "综合型" in capsys.readouterr().err
    assert main(["evaluate", "--snapshot", str(tmp_path / "none.json"), "--program",
                 "jiangxi-2022", "--tier", "enterprise"]) == 1  # fmt: skip
    assert "cannot read" in capsys.readouterr().err
