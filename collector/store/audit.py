"""Hash-chained audit log: every entry carries the hash of the one before it.

An entry's hash is SHA-256 over a canonical JSON rendering of (seq, ts, actor, action,
subject, payload, prev_hash) exactly as PostgreSQL stores them: the row is inserted, read
back and only then hashed, inside the caller's transaction and under a lock, so the chain
is linear and what is verified later is what was hashed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

# Transaction-level advisory lock that serialises appends (any constant, same everywhere).
_LOCK_KEY = 0x7A11_A0D1


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One appended entry."""

    seq: int
    ts: datetime
    actor: str
    action: str
    subject: str
    payload: Mapping[str, Any]
    prev_hash: bytes | None
    hash: bytes


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    """The result of walking the chain."""

    ok: bool
    entries: int
    head: str | None
    """Hex hash of the last entry checked (publish it to detect later truncation)."""
    broken_seq: int | None = None
    reason: str | None = None


def _canonical_ts(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(  # noqa: PLR0917 - the fields of one row, in column order
    seq: int,
    ts: datetime,
    actor: str,
    action: str,
    subject: str,
    payload: Mapping[str, Any],
    prev_hash: bytes | None,
) -> bytes:
    """Return the SHA-256 of the entry's canonical JSON form."""
    canonical = json.dumps(
        {
            "seq": seq,
            "ts": _canonical_ts(ts),
            "actor": actor,
            "action": action,
            "subject": subject,
            "payload": payload,
            "prev": prev_hash.hex() if prev_hash is not None else None,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).digest()


async def append(
    conn: AsyncConnection[Any],
    actor: str,
    action: str,
    subject: str,
    payload: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append an entry in the caller's transaction (one is opened if none is active)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        cur = await conn.execute("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        last = await cur.fetchone()
        prev: bytes | None = bytes(last[0]) if last is not None else None
        placeholder = os.urandom(32)
        cur = await conn.execute(
            "INSERT INTO audit_log (ts, actor, action, subject, payload, prev_hash, hash) "
            "VALUES (now(), %s, %s, %s, %s, %s, %s) "
            "RETURNING seq, ts, actor, action, subject, payload",
            (actor, action, subject, Jsonb(dict(payload or {})), prev, placeholder),
        )
        row = await cur.fetchone()
        assert row is not None
        seq, ts, actor_, action_, subject_, stored = row
        digest = entry_hash(seq, ts, actor_, action_, subject_, stored, prev)
        await conn.execute("UPDATE audit_log SET hash = %s WHERE seq = %s", (digest, seq))
    return AuditEntry(seq, ts, actor_, action_, subject_, stored, prev, digest)


async def verify(conn: AsyncConnection[Any], batch: int = 5_000) -> ChainVerdict:
    """Walk the whole chain in order; name the first entry whose hash or link is wrong."""
    prev: bytes | None = None
    count = 0
    after = 0
    while True:
        cur = await conn.execute(
            "SELECT seq, ts, actor, action, subject, payload, prev_hash, hash FROM audit_log "
            "WHERE seq > %s ORDER BY seq LIMIT %s",
            (after, batch),
        )
        rows = await cur.fetchall()
        if not rows:
            break
        for seq, ts, actor, action, subject, payload, prev_hash, stored_hash in rows:
            link = bytes(prev_hash) if prev_hash is not None else None
            if link != prev:
                return ChainVerdict(
                    False, count, prev.hex() if prev else None, seq,
                    f"entry {seq}: prev_hash does not match the hash of the entry before it "
                    "(an entry was removed, inserted or reordered)",
                )  # fmt: skip
            expected = entry_hash(seq, ts, actor, action, subject, payload, link)
            if expected != bytes(stored_hash):
                return ChainVerdict(
                    False, count, prev.hex() if prev else None, seq,
                    f"entry {seq} ({action} {subject}): content does not match its hash "
                    "(the entry was edited)",
                )  # fmt: skip
            prev = bytes(stored_hash)
            count += 1
            after = seq
    return ChainVerdict(True, count, prev.hex() if prev else None)
