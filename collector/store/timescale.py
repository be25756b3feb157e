"""TimescaleDB features (hypertables, compression, retention) when the extension is present.

Written against TimescaleDB's documented 2.x API. Everything here is idempotent and is a
no-op on plain PostgreSQL, where the same schema runs with BRIN time indexes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg
from psycopg import sql

from collector.config import TimescaleConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hypertable:
    """A table that becomes a hypertable, and how it is compressed."""

    table: str
    time_column: str
    segment_by: str
    order_by: str


HYPERTABLES = (
    Hypertable("sample", "ts", "point_id", "ts DESC"),
    Hypertable("call_event", "ts", "app_id", "ts DESC"),
)


def available(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """Report whether the timescaledb extension can be (or is) installed in this database.

    TimescaleDB must also be in shared_preload_libraries, or CREATE EXTENSION fails; a
    server with the package installed but not preloaded is treated as plain PostgreSQL.
    """
    row = conn.execute(
        "SELECT current_setting('shared_preload_libraries') ~ 'timescaledb'"
        " FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if row is None:
        return False
    if not row[0]:
        log.warning(
            "timescaledb is installed but not in shared_preload_libraries: using plain "
            "PostgreSQL; add it there and restart the server to use hypertables"
        )
        return False
    return True


def installed_version(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[int, ...] | None:
    """Return the installed extension's version as a tuple, or None."""
    row = conn.execute(
        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
    ).fetchone()
    if row is None:
        return None
    return tuple(int(p) for p in str(row[0]).split("-")[0].split(".") if p.isdigit())


def _hypertable_state(conn: psycopg.Connection[tuple[object, ...]], table: str) -> bool | None:
    """Return None when `table` is not a hypertable, else whether compression is enabled."""
    row = conn.execute(
        "SELECT compression_enabled FROM timescaledb_information.hypertables "
        "WHERE hypertable_schema = current_schema() AND hypertable_name = %s",
        (table,),
    ).fetchone()
    return None if row is None else bool(row[0])


def _create_hypertable(
    conn: psycopg.Connection[tuple[object, ...]],
    spec: Hypertable,
    chunk: str,
    version: tuple[int, ...],
) -> None:
    if version >= (2, 13):
        # Generalised API: create_hypertable(relation, dimension => by_range(column, interval)).
        conn.execute(
            "SELECT create_hypertable(%s::regclass, by_range(%s, %s::interval), "
            "if_not_exists => true, migrate_data => true)",
            (spec.table, spec.time_column, chunk),
        )
    else:
        conn.execute(
            "SELECT create_hypertable(%s::regclass, %s, chunk_time_interval => %s::interval, "
            "if_not_exists => true, migrate_data => true)",
            (spec.table, spec.time_column, chunk),
        )


def _enable_compression(conn: psycopg.Connection[tuple[object, ...]], spec: Hypertable) -> None:
    conn.execute(
        sql.SQL(
            "ALTER TABLE {} SET (timescaledb.compress, "
            "timescaledb.compress_segmentby = {}, timescaledb.compress_orderby = {})"
        ).format(
            sql.Identifier(spec.table), sql.Literal(spec.segment_by), sql.Literal(spec.order_by)
        )
    )


def _add_compression_policy(
    conn: psycopg.Connection[tuple[object, ...]], spec: Hypertable, after: str
) -> None:
    conn.execute(
        "SELECT add_compression_policy(%s::regclass, compress_after => %s::interval, "
        "if_not_exists => true)",
        (spec.table, after),
    )


def _set_retention(
    conn: psycopg.Connection[tuple[object, ...]], spec: Hypertable, keep: str | None
) -> None:
    conn.execute("SELECT remove_retention_policy(%s::regclass, if_exists => true)", (spec.table,))
    if keep is not None:
        conn.execute(
            "SELECT add_retention_policy(%s::regclass, drop_after => %s::interval, "
            "if_not_exists => true)",
            (spec.table, keep),
        )


def setup(conn: psycopg.Connection[tuple[object, ...]], settings: TimescaleConfig) -> bool:
    """Turn sample and call_event into compressed hypertables when TimescaleDB is present.

    Returns True when TimescaleDB is in use, False on plain PostgreSQL.
    """
    if not available(conn):
        log.info("timescaledb extension not available: using plain PostgreSQL with BRIN indexes")
        return False
    conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    version = installed_version(conn) or (2, 0)
    for spec in HYPERTABLES:
        compressed = _hypertable_state(conn, spec.table)
        if compressed is None:
            _create_hypertable(conn, spec, settings.chunk_interval, version)
        if not compressed:
            # Only once: changing compression settings is refused once chunks are compressed.
            _enable_compression(conn, spec)
        _add_compression_policy(conn, spec, settings.compress_after)
    # Retention applies to raw samples only; call events are evidence and are kept.
    _set_retention(conn, HYPERTABLES[0], settings.retention)
    log.info(
        "timescaledb %s in use: hypertables %s, compress after %s, retention %s",
        ".".join(map(str, version)),
        ", ".join(h.table for h in HYPERTABLES),
        settings.compress_after,
        settings.retention or "none",
    )
    return True
