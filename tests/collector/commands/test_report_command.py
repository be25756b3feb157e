"""`tally report` and `tally snapshot` against a real PostgreSQL; reports in both languages."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.base import utcnow
from collector.cli import main
from criteria.report.labels import LABELS
from tests.api.apitest import Seed

pytestmark = pytest.mark.integration


def seed_recent(dsn: str) -> None:
    """Two connected devices (one simulated) with good samples half an hour ago."""
    s = Seed(dsn)
    try:
        at = utcnow() - timedelta(minutes=30)
        real = s.device("press-1", device_type="press", industry="C34", region="360100")
        s.live(real, s.point(real, "force"), at)
        sim = s.device("sim-1", device_type="pump", industry="C26", simulated=True)
        s.live(sim, s.point(sim, "flow"), at)
    finally:
        s.close()


def run(*argv: str) -> int:
    return main(list(argv))


def test_report_renders_each_format_and_language(database_url: str, tmp_path: Path) -> None:
    seed_recent(database_url)
    common = ("--program", "jiangxi-2022", "--tier", "企业级", "--window", "24h",
              "--dsn", database_url)  # fmt: skip
    outputs = {}
    for fmt, lang in (
        ("md", "both"),
        ("html", "both"),
        ("md", "zh"),
        ("html", "en"),
        ("json", "en"),
    ):
        path = tmp_path / f"report-{lang}.{fmt}"
        assert run("report", *common, "--format", fmt, "--lang", lang, "-o", str(path)) == 0
        outputs[(fmt, lang)] = path.read_text(encoding="utf-8")
    for fmt in ("md", "html"):
        both = outputs[(fmt, "both")]
        for key in ("overall", "clause", "text", "window", "software", "simulated"):
            assert LABELS[key][0] in both and LABELS[key][1] in both, (fmt, key)
        assert "可连接不低于50%的工业设备" in both
        assert "1 simulated connected devices were excluded" in both
    assert LABELS["overall"][1] not in outputs[("md", "zh")]
    assert LABELS["overall"][0] not in outputs[("html", "en")]
    report = json.loads(outputs[("json", "en")])
    assert report["snapshot"]["connected_devices"]["total"] == 1
    assert report["snapshot"]["simulated_excluded"]["connected_devices"] == 1
    assert report["include_simulated"] is False and report["simulated_notice"] is None
    assert report["evaluation"]["window_end"] == report["snapshot"]["window_end"]


def test_simulated_reports_say_so_and_count_them(database_url: str, tmp_path: Path) -> None:
    seed_recent(database_url)
    path = tmp_path / "sim.md"
    assert run("report", "--program", "jiangsu-2018", "--tier", "enterprise", "--window", "2h",
               "--dsn", database_url, "--include-simulated", "--format", "md", "--lang", "en",
               "-o", str(path)) == 0  # fmt: skip
    text = path.read_text(encoding="utf-8")
    banner = LABELS["simulated_banner"][1]
    assert text.count(banner) >= text.count("\n## ") + 2
    assert "Simulated devices included | yes" in text


def test_saved_snapshot_re_evaluates_to_the_reported_verdicts(
    database_url: str, tmp_path: Path
) -> None:
    seed_recent(database_url)
    saved = tmp_path / "snapshot.json"
    assert run("snapshot", "--window", "24h", "--dsn", database_url, "-o", str(saved)) == 0
    data = json.loads(saved.read_text(encoding="utf-8"))
    assert data["format"] == "tally-evidence/1"
    assert data["snapshot"]["connected_devices"]["total"] == 1
    online, offline = tmp_path / "online.json", tmp_path / "offline.json"
    tier = ("--program", "jiangsu-2018", "--tier", "key-cultivation")
    assert run("report", *tier, "--window", "24h", "--dsn", database_url, "--format", "json",
               "-o", str(online)) == 0  # fmt: skip
    assert run("evaluate", "--snapshot", str(saved), *tier, "--format", "json",
               "-o", str(offline)) == 0  # fmt: skip
    a = json.loads(online.read_text(encoding="utf-8"))["evaluation"]["results"]
    b = json.loads(offline.read_text(encoding="utf-8"))["evaluation"]["results"]
    assert [(r["rule"], r["verdict"], r["measured"]) for r in a] == [
        (r["rule"], r["verdict"], r["measured"]) for r in b
    ]


def test_store_problems_are_reported_not_raised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1"
    assert run("report", "--program", "jiangxi-2022", "--tier", "enterprise", "--dsn", dsn) == 1
    assert capsys.readouterr().err.startswith("tally report: cannot read the store")
    assert run("snapshot", "--window", "forever", "--dsn", dsn) == 1
    assert "30d" in capsys.readouterr().err
