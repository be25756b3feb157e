"""Stored report bundles (table ``report``): the signed zip's bytes and what identifies it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import class_row

from collector.store import audit


@dataclass(frozen=True)
class ReportRow:
    """A stored report, without its bundle bytes."""

    id: UUID
    created_at: datetime
    created_by: str
    programme: str
    tier: str
    window_start: datetime
    window_end: datetime
    window_spec: str | None
    include_simulated: bool
    verdict: str
    manifest_sha256: str
    key_fingerprint: str
    bundle_sha256: str


_COLUMNS = (
    "id, created_at, created_by, programme, tier, window_start, window_end, window_spec,"
    " include_simulated, verdict, manifest_sha256, key_fingerprint, bundle_sha256"
)


async def insert(conn: AsyncConnection[Any], row: ReportRow, bundle: bytes) -> None:
    """Store a report and append it to the audit log, in one transaction."""
    async with conn.transaction():
        await conn.execute(
            f"INSERT INTO report ({_COLUMNS}, bundle)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                row.id,
                row.created_at,
                row.created_by,
                row.programme,
                row.tier,
                row.window_start,
                row.window_end,
                row.window_spec,
                row.include_simulated,
                row.verdict,
                row.manifest_sha256,
                row.key_fingerprint,
                row.bundle_sha256,
                bundle,
            ),
        )
        await audit.append(
            conn,
            row.created_by,
            "report.created",
            f"report/{row.id}",
            {
                "programme": row.programme,
                "tier": row.tier,
                "window_start": row.window_start.isoformat(),
                "window_end": row.window_end.isoformat(),
                "include_simulated": row.include_simulated,
                "verdict": row.verdict,
                "manifest_sha256": row.manifest_sha256,
                "bundle_sha256": row.bundle_sha256,
                "key_fingerprint": row.key_fingerprint,
            },
        )


async def fetch(conn: AsyncConnection[Any], report_id: UUID) -> ReportRow | None:
    """Return one report, or None."""
    async with conn.cursor(row_factory=class_row(ReportRow)) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM report WHERE id = %s", (report_id,))
        return await cur.fetchone()


async def bundle(conn: AsyncConnection[Any], report_id: UUID) -> bytes | None:
    """Return a report's bundle bytes, or None."""
    cur = await conn.execute("SELECT bundle FROM report WHERE id = %s", (report_id,))
    row = await cur.fetchone()
    return bytes(row[0]) if row is not None else None


async def page(conn: AsyncConnection[Any], limit: int, offset: int) -> tuple[int, list[ReportRow]]:
    """Return (total, reports newest first)."""
    cur = await conn.execute("SELECT count(*) FROM report")
    counted = await cur.fetchone()
    async with conn.cursor(row_factory=class_row(ReportRow)) as rcur:
        await rcur.execute(
            f"SELECT {_COLUMNS} FROM report ORDER BY created_at DESC, id LIMIT %s OFFSET %s",
            (limit, offset),
        )
        return (int(counted[0]) if counted else 0), await rcur.fetchall()
