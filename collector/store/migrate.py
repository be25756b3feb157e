"""Versioned SQL migrations, applied once each and recorded in schema_migration."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import psycopg

from collector.config import TimescaleConfig
from collector.store import timescale

_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
# Any constant works; it only has to be the same for every Tally process.
_LOCK_KEY = 0x7A11_7A11


class MigrationError(RuntimeError):
    """The database's recorded migrations disagree with this software's."""


@dataclass(frozen=True)
class Migration:
    """One versioned SQL file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file's text, so an edited migration is detected."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def bundled_migrations() -> list[Migration]:
    """Return the migrations shipped in collector/store/migrations, in version order."""
    found: list[Migration] = []
    for entry in resources.files("collector.store.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions: {versions}")
    return found


@dataclass(frozen=True)
class MigrateResult:
    """What `migrate` did."""

    applied: list[str]
    already: int
    timescale: bool


def migrate(dsn: str, settings: TimescaleConfig | None = None) -> MigrateResult:
    """Apply pending migrations (idempotent, serialised by an advisory lock)."""
    migrations = bundled_migrations()
    applied: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migration (
                       version integer PRIMARY KEY,
                       name text NOT NULL,
                       checksum text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            rows = conn.execute("SELECT version, name, checksum FROM schema_migration").fetchall()
            recorded = {int(v): (n, c) for v, n, c in rows}
            known = {m.version for m in migrations}
            unknown = sorted(set(recorded) - known)
            if unknown:
                raise MigrationError(
                    f"database has migrations {unknown} that this Tally does not know; "
                    "it was migrated by a newer version"
                )
            for migration in migrations:
                if migration.version in recorded:
                    name, checksum = recorded[migration.version]
                    if checksum != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.version:03d}_{name} was changed after it "
                            "was applied; restore the original file"
                        )
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migration (version, name, checksum) "
                        "VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                applied.append(f"{migration.version:03d}_{migration.name}")
            has_timescale = timescale.setup(conn, settings or TimescaleConfig())
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return MigrateResult(applied, len(migrations) - len(applied), has_timescale)
