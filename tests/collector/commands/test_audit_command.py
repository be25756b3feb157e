"""`tally audit verify` against a real PostgreSQL."""

import psycopg
import pytest

from collector.cli import main

pytestmark = pytest.mark.integration


def test_verify_says_intact_then_names_the_edited_entry(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for label in ("a", "b", "c"):
        assert (
            main(["keys", "create", "--role", "auditor", "--label", label, "--dsn", database_url])
            == 0
        )
    capsys.readouterr()
    assert main(["audit", "verify", "--dsn", database_url]) == 0
    assert "audit log intact: 3 entries" in capsys.readouterr().out

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    assert main(["audit", "verify", "--dsn", database_url]) == 1
    err = capsys.readouterr().err
    assert "BROKEN at entry 2" in err and "edited" in err
