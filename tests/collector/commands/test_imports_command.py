"""`tally import RESOURCE FILE` and `tally calls import FILE` against a real PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import psycopg
import pytest

from collector.cli import main

pytestmark = pytest.mark.integration

ENTERPRISES = """key,name,kind,industry,region
acme,Acme Steel,large,C31,320100
beta,Beta Foods,sme,c14,
"""
DEVELOPERS = """key,name,third_party,languages,enterprise
d1,Dana,true,Python; Go,acme
d2,Eli,no,,
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_registries_import_from_csv_json_and_jsonl(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ents = _write(tmp_path, "enterprises.csv", ENTERPRISES)
    devs = _write(tmp_path, "developers.csv", DEVELOPERS)
    apps = _write(tmp_path, "apps.json", json.dumps([
        {"key": "m1", "name": "Model", "kind": "mechanism_model", "developer": "d1"},
        {"key": "t1", "name": "SDK", "kind": "dev_tool", "cross_platform": True},
    ]))  # fmt: skip
    subs = _write(tmp_path, "subs.jsonl", '{"key": "s1", "app": "m1", "enterprise": "beta"}\n')
    for resource, path in (("enterprises", ents), ("developers", devs), ("apps", apps),
                           ("subscriptions", subs)):  # fmt: skip
        assert main(["import", resource, str(path), "--dsn", database_url]) == 0
    out = capsys.readouterr().out
    assert "enterprises: 2 created, 0 updated" in out
    assert main(["import", "enterprises", str(ents), "--dsn", database_url]) == 0
    assert "enterprises: 0 created, 2 updated" in capsys.readouterr().out
    with psycopg.connect(database_url) as conn:
        dev = conn.execute(
            "SELECT third_party, languages FROM developer WHERE key = 'd1'"
        ).fetchone()
        beta = conn.execute("SELECT industry, region FROM enterprise WHERE key = 'beta'").fetchone()
        log = conn.execute(
            "SELECT action, payload FROM audit_log WHERE subject = 'enterprises' ORDER BY seq"
        ).fetchall()
    assert dev == (True, ["Python", "Go"])
    assert beta == ("C14", None)
    assert len(log) == 2 and log[0][0] == "enterprise.imported"
    digest = hashlib.sha256(ents.read_bytes()).hexdigest()
    assert log[0][1] == {"source": "enterprises.csv", "sha256": digest, "records": 2,
                         "created": 2, "updated": 0}  # fmt: skip


def test_a_bad_record_fails_the_whole_file_naming_its_line(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _write(tmp_path, "ents.csv", ENTERPRISES + "gamma,,sme,,\n")
    assert main(["import", "enterprises", str(bad), "--dsn", database_url]) == 1
    err = capsys.readouterr().err
    assert "ents.csv line 4: name: Field required" in err and "nothing was imported" in err
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM enterprise").fetchone() == (0,)


def test_calls_import_stores_good_events_once_and_reports_bad_lines(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    apps = _write(tmp_path, "apps.jsonl", '{"key": "m1", "name": "M", "kind": "algorithm"}\n')
    assert main(["import", "apps", str(apps), "--dsn", database_url]) == 0
    log = _write(tmp_path, "access.jsonl", "\n".join([
        '{"id": "1", "ts": "2026-01-31T23:59:59+08:00", "app": "m1", "outcome": "ok"}',
        "this is not json",
        '{"id": "2", "ts": "2026-02-01T00:00:00+08:00", "app": "m1", "outcome": "ok"}',
        '{"id": "3", "ts": "2026-02-01T00:00:00+08:00", "app": "m9", "outcome": "ok"}',
    ]) + "\n")  # fmt: skip
    csv_text = (
        "id,ts,app,outcome,duration_ms\n"
        "4,2026-02-03T10:00:00Z,m1,error,12.5\n"
        "1,2026-01-31T15:59:59Z,m1,ok,\n"
    )
    csv_log = _write(tmp_path, "access.csv", csv_text)
    capsys.readouterr()
    assert main(["calls", "import", str(log), "--dsn", database_url]) == 1
    out, err = capsys.readouterr()
    assert "2 call events stored, 0 already recorded, 2 rejected" in out
    assert "line 2: not JSON" in err and "line 4: app 'm9' is not registered" in err
    assert main(["calls", "import", str(csv_log), "--dsn", database_url]) == 0
    assert "1 call events stored, 1 already recorded, 0 rejected" in capsys.readouterr().out
    with psycopg.connect(database_url) as conn:
        months = conn.execute(
            "SELECT to_char(month, 'YYYY-MM'), calls FROM call_monthly ORDER BY month"
        ).fetchall()
    assert months == [("2026-01", 1), ("2026-02", 2)]
