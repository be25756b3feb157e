import psycopg
import pytest

from collector.store.migrate import MigrationError, bundled_migrations, migrate

DOMAIN_TABLES = {
    "enterprise", "device", "point", "sample", "device_activity", "point_activity", "ingest_log",
    "control_op", "app", "call_event", "call_event_seen", "call_monthly", "subscription",
    "developer", "platform_user", "declaration", "audit_log", "api_key",
}  # fmt: skip


def test_migrations_are_numbered_without_gaps() -> None:
    versions = [m.version for m in bundled_migrations()]
    assert versions == list(range(1, len(versions) + 1))


@pytest.mark.integration
def test_migrate_creates_the_whole_domain_and_is_idempotent(database_url: str) -> None:
    again = migrate(database_url)
    assert again.applied == []
    assert again.already == len(bundled_migrations())
    assert again.timescale is False
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchall()
    assert {r[0] for r in rows} >= DOMAIN_TABLES


@pytest.mark.integration
def test_edited_migration_is_refused(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE schema_migration SET checksum = 'x' WHERE version = 1")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(database_url)


@pytest.mark.integration
def test_newer_database_is_refused(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migration VALUES (999, 'future', 'x')")
    with pytest.raises(MigrationError, match="newer version"):
        migrate(database_url)
