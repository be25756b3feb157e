"""Operator declarations: versioned, never overwritten, each version written to the audit log.

A declaration records what telemetry cannot show (staff count, device inventory, the
platform's specific industry, a qualitative clause being met) with an evidence
reference. Declarations are kept per key (``staff``, a rule id such as
``jx-architecture``): putting a key again adds version n+1 and marks version n
superseded; rows are append-only (migration 006 forbids edits and deletes), so the
history an auditor reads is the history that was evaluated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from pydantic import ValidationError

import criteria
from collector.store import audit
from criteria import Declaration

KEY_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
_KEY = re.compile(KEY_PATTERN)
_METRIC = re.compile(r"^[a-z][a-z0-9_]*$")
# Transaction-level advisory lock namespace: one writer per key at a time.
_LOCK_SPACE = 0x7A11_DEC1
AUDIT_ACTION = "declaration.put"


class DeclarationError(ValueError):
    """A declaration that cannot be stored; the message says what to change."""


@dataclass(frozen=True, slots=True)
class DeclarationDraft:
    """What an operator declares under one key, before it is stored."""

    value: Any = True
    evidence_ref: str = ""
    program: str | None = None
    tier: str | None = None
    rule: str | None = None
    clause: str | None = None
    metric: str | None = None
    not_applicable: bool = False
    note: str | None = None


@dataclass(frozen=True, slots=True)
class StoredDeclaration:
    """One stored version of a declaration."""

    id: int
    key: str | None
    version: int | None
    program: str | None
    tier: str | None
    rule: str | None
    clause: str | None
    metric: str | None
    value: Any
    not_applicable: bool
    evidence_ref: str
    declared_by: str
    declared_at: datetime
    note: str | None
    superseded_at: datetime | None
    superseded_by: int | None

    @property
    def current(self) -> bool:
        """Tell whether this is the version in force."""
        return self.superseded_at is None

    def as_criteria(self) -> Declaration:
        """Return the declaration as the evaluator reads it."""
        return Declaration(
            program=self.program,
            tier=self.tier,
            rule=self.rule,
            clause=self.clause,
            metric=self.metric,
            value=self.value,
            not_applicable=self.not_applicable,
            evidence_ref=self.evidence_ref,
            declared_by=self.declared_by,
            declared_at=self.declared_at,
            note=self.note,
        )


_COLUMNS = (
    "id, key, version, program, tier, rule, clause, metric, value, not_applicable, evidence_ref,"
    " declared_by, declared_at, note, superseded_at, superseded_by"
)


def _rule_programme(rule_id: str) -> str | None:
    for program in criteria.list_programs():
        if any(r.id == rule_id for r in criteria.load_ruleset(program).rules):
            return program
    return None


def resolve(key: str, draft: DeclarationDraft) -> DeclarationDraft:
    """Check a draft against the bundled rule sets; a bare key names a rule id or a figure.

    Raises DeclarationError naming what is wrong and what would be accepted.
    """
    if not _KEY.match(key):
        raise DeclarationError(
            f"declaration key {key!r} must be 1-100 characters of a-z, 0-9, '_', '.', '-' "
            "(e.g. staff or jx-architecture)"
        )
    if not draft.evidence_ref.strip():
        raise DeclarationError(
            f"declaration {key}: evidence_ref is required (a document, file or URL an auditor "
            "can check)"
        )
    if draft.rule is None and draft.clause is None and draft.metric is None:
        found = _rule_programme(key)
        if found is not None:
            draft = replace(draft, rule=key, program=draft.program or found)
        elif _METRIC.match(key):
            draft = replace(draft, metric=key)
        else:
            raise DeclarationError(
                f"declaration {key}: the key is neither a rule id nor a figure name; "
                "give rule, clause or metric"
            )
    _check_programme(key, draft)
    try:
        Declaration(
            program=draft.program,
            tier=draft.tier,
            rule=draft.rule,
            clause=draft.clause,
            metric=draft.metric,
            value=draft.value,
            not_applicable=draft.not_applicable,
            evidence_ref=draft.evidence_ref,
            declared_by="check",
            declared_at=datetime.fromisoformat("2000-01-01T00:00:00+00:00"),
            note=draft.note,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
        )
        raise DeclarationError(f"declaration {key}: {problems}") from None
    return draft


def _check_programme(key: str, draft: DeclarationDraft) -> None:
    programs = criteria.list_programs()
    if draft.program is not None and draft.program not in programs:
        raise DeclarationError(
            f"declaration {key}: no programme {draft.program!r}; programmes: {', '.join(programs)}"
        )
    scope = [draft.program] if draft.program is not None else programs
    rulesets = [criteria.load_ruleset(p) for p in scope]
    if draft.tier is not None:
        if draft.program is None:
            raise DeclarationError(f"declaration {key}: a tier needs its programme (program)")
        try:
            rulesets[0].tier(draft.tier)
        except criteria.UnknownTierError as exc:
            raise DeclarationError(f"declaration {key}: {exc}") from None
    if draft.rule is not None and not any(r.id == draft.rule for rs in rulesets for r in rs.rules):
        raise DeclarationError(
            f"declaration {key}: no rule {draft.rule!r} in {', '.join(scope)}; "
            "GET /v1/programs lists the rules"
        )
    if draft.clause is not None and not any(
        r.clause == draft.clause for rs in rulesets for r in rs.rules
    ):
        raise DeclarationError(
            f"declaration {key}: no clause {draft.clause!r} in {', '.join(scope)}"
        )


async def put(
    conn: AsyncConnection[Any], key: str, draft: DeclarationDraft, actor: str
) -> StoredDeclaration:
    """Store a new version of a declaration, supersede the current one, and audit it."""
    draft = resolve(key, draft)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_SPACE, key))
        cur = await conn.execute(
            "SELECT id, version FROM declaration WHERE key = %s AND superseded_at IS NULL",
            (key,),
        )
        previous = await cur.fetchone()
        cur = await conn.execute("SELECT nextval(pg_get_serial_sequence('declaration', 'id'))")
        row = await cur.fetchone()
        assert row is not None
        new_id = int(row[0])
        if previous is not None:
            await conn.execute(
                "UPDATE declaration SET superseded_at = now(), superseded_by = %s WHERE id = %s",
                (new_id, previous[0]),
            )
        version = int(previous[1] or 0) + 1 if previous is not None else 1
        async with conn.cursor(row_factory=class_row(StoredDeclaration)) as dcur:
            await dcur.execute(
                "INSERT INTO declaration (id, key, version, program, tier, rule, clause, metric,"
                " value, not_applicable, evidence_ref, declared_by, declared_at, note)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now(), %s)"
                f" RETURNING {_COLUMNS}",
                (
                    new_id,
                    key,
                    version,
                    draft.program,
                    draft.tier,
                    draft.rule,
                    draft.clause,
                    draft.metric,
                    Jsonb(draft.value),
                    draft.not_applicable,
                    draft.evidence_ref.strip(),
                    actor,
                    draft.note,
                ),
            )
            stored = await dcur.fetchone()
        assert stored is not None
        await audit.append(
            conn,
            actor,
            AUDIT_ACTION,
            f"declaration:{key}",
            {
                "id": stored.id,
                "version": stored.version,
                "supersedes": previous[0] if previous is not None else None,
                "program": stored.program,
                "tier": stored.tier,
                "rule": stored.rule,
                "clause": stored.clause,
                "metric": stored.metric,
                "value": stored.value,
                "not_applicable": stored.not_applicable,
                "evidence_ref": stored.evidence_ref,
                "note": stored.note,
            },
        )
    return stored


async def history(
    conn: AsyncConnection[Any], *, all_versions: bool = False, key: str | None = None
) -> list[StoredDeclaration]:
    """Return the declarations in force (or every version), by key and version."""
    where = ["TRUE"]
    params: list[Any] = []
    if not all_versions:
        where.append("superseded_at IS NULL")
    if key is not None:
        where.append("key = %s")
        params.append(key)
    query = (
        f"SELECT {_COLUMNS} FROM declaration WHERE {' AND '.join(where)}"
        " ORDER BY key NULLS LAST, version, id"
    )
    async with conn.cursor(row_factory=class_row(StoredDeclaration)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def in_force(conn: AsyncConnection[Any]) -> list[Declaration]:
    """Return the declarations in force, as the evaluator reads them."""
    return [row.as_criteria() for row in await history(conn)]
