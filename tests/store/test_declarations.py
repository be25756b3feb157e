"""Declarations in the store: versioned, append-only, audited, read as the evaluator reads them."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection

from collector.store import audit, declarations
from collector.store.declarations import DeclarationDraft, DeclarationError, resolve

pytestmark = pytest.mark.integration


def draft(**fields: Any) -> DeclarationDraft:
    return DeclarationDraft(**{"evidence_ref": "hr/2024-03-headcount.pdf", **fields})


async def test_versions_supersede_and_history_is_kept(database_url: str) -> None:
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        first = await declarations.put(conn, "staff", draft(value=42), "key:aaaa (operator)")
        second = await declarations.put(conn, "staff", draft(value=55), "key:bbbb (operator)")
        other = await declarations.put(conn, "jx-architecture", draft(), "key:aaaa (operator)")
        current = await declarations.history(conn)
        every = await declarations.history(conn, all_versions=True)
        of_staff = await declarations.history(conn, all_versions=True, key="staff")
        in_force = await declarations.in_force(conn)
        chain = await audit.verify(conn)

    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert (first.metric, first.rule) == ("staff", None)
    assert (other.rule, other.program, other.metric) == ("jx-architecture", "jiangxi-2022", None)
    assert [(d.key, d.version) for d in current] == [("jx-architecture", 1), ("staff", 2)]
    assert [(d.key, d.version, d.current) for d in every] == [
        ("jx-architecture", 1, True),
        ("staff", 1, False),
        ("staff", 2, True),
    ]
    old = of_staff[0]
    assert (old.value, old.superseded_by) == (42, second.id)
    assert old.superseded_at is not None and old.superseded_at >= old.declared_at
    assert [(d.metric, d.value, d.declared_by) for d in in_force if d.metric] == [
        ("staff", 55, "key:bbbb (operator)")
    ]
    assert chain.ok and chain.entries == 3


async def test_every_version_is_in_the_audit_log(database_url: str) -> None:
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        await declarations.put(conn, "device_inventory", draft(value=160), "key:cccc (operator)")
        await declarations.put(
            conn, "device_inventory", draft(value=170, note="after the audit"), "key:cccc"
        )
        cur = await conn.execute(
            "SELECT actor, action, subject, payload FROM audit_log ORDER BY seq"
        )
        rows = await cur.fetchall()
    assert [(r[1], r[2]) for r in rows] == [("declaration.put", "declaration:device_inventory")] * 2
    assert rows[0][0] == "key:cccc (operator)"
    assert rows[1][3]["version"] == 2
    assert rows[1][3]["supersedes"] == rows[0][3]["id"]
    assert rows[1][3]["value"] == 170
    assert rows[1][3]["evidence_ref"] == "hr/2024-03-headcount.pdf"


async def test_rows_are_append_only(database_url: str) -> None:
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        stored = await declarations.put(conn, "staff", draft(value=42), "key:aaaa")
        with pytest.raises(psycopg.errors.RaiseException, match="cannot be edited"):
            await conn.execute("UPDATE declaration SET value = '999' WHERE id = %s", (stored.id,))
        with pytest.raises(psycopg.errors.RaiseException, match="cannot be deleted"):
            await conn.execute("DELETE FROM declaration WHERE id = %s", (stored.id,))
        await declarations.put(conn, "staff", draft(value=43), "key:aaaa")
        with pytest.raises(psycopg.errors.RaiseException, match="cannot be edited"):
            await conn.execute(
                "UPDATE declaration SET superseded_at = now() WHERE id = %s", (stored.id,)
            )
        (row,) = await declarations.history(conn, key="staff")
    assert row.value == 43


async def test_a_failed_put_leaves_no_trace(database_url: str) -> None:
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        await declarations.put(conn, "staff", draft(value=42), "key:aaaa")
        with pytest.raises(DeclarationError):
            await declarations.put(conn, "staff", draft(value={"a": "b"}), "key:aaaa")
        (row,) = await declarations.history(conn, all_versions=True)
        cur = await conn.execute("SELECT count(*) FROM audit_log")
        counted = await cur.fetchone()
    assert (row.version, row.value) == (1, 42)
    assert counted == (1,)


@pytest.mark.parametrize(
    ("key", "fields", "message"),
    [
        ("Staff!", {}, "must be 1-100 characters"),
        ("staff", {"evidence_ref": "  "}, "evidence_ref is required"),
        ("my-thing", {}, "neither a rule id nor a figure name"),
        ("staff", {"program": "hainan-2030"}, "no programme 'hainan-2030'"),
        ("staff", {"program": "jiangxi-2022", "tier": "gold"}, "has no tier 'gold'"),
        ("staff", {"tier": "企业级"}, "a tier needs its programme"),
        ("x", {"rule": "js-nothing"}, "no rule 'js-nothing'"),
        ("x", {"clause": "九.(九)"}, "no clause"),
        ("staff", {"value": {"a": "b"}}, "declaration staff: value"),
    ],
)
def test_bad_drafts_say_what_to_fix(key: str, fields: dict[str, Any], message: str) -> None:
    with pytest.raises(DeclarationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(key, draft(**fields))


def test_tier_names_and_clauses_are_accepted() -> None:
    resolved = resolve("cases", draft(program="jiangxi-2022", tier="综合型", clause="三.(一)"))
    assert (resolved.clause, resolved.metric, resolved.rule) == ("三.(一)", None, None)
