"""PUT and GET /v1/declarations: operators declare, auditors read every version."""

import pytest
from psycopg import AsyncConnection

from api.auth import Role
from collector.store import audit
from tests.api.apitest import api_client, bearer, role_keys

pytestmark = pytest.mark.integration

STAFF = {"value": 42, "evidence_ref": "hr/headcount-2024-03.pdf", "note": "payroll March"}


async def test_operators_declare_auditors_read_and_history_is_kept(database_url: str) -> None:
    keys = await role_keys(database_url)
    operator, auditor = bearer(keys[Role.OPERATOR]), bearer(keys[Role.AUDITOR])
    async with api_client(database_url) as (client, _):
        refused = await client.put("/v1/declarations/staff", json=STAFF, headers=auditor)
        first = await client.put("/v1/declarations/staff", json=STAFF, headers=operator)
        second = await client.put(
            "/v1/declarations/staff", json={**STAFF, "value": 55}, headers=operator
        )
        rule = await client.put(
            "/v1/declarations/jx-architecture",
            json={"value": True, "evidence_ref": "docs/architecture.pdf"},
            headers=operator,
        )
        current = await client.get("/v1/declarations", headers=auditor)
        every = await client.get("/v1/declarations", params={"all": "true"}, headers=auditor)
        staff = await client.get("/v1/declarations/staff", headers=auditor)
        nothing = await client.get("/v1/declarations/revenue", headers=auditor)
    assert refused.status_code == 403
    assert "operator" in refused.json()["detail"]
    assert first.status_code == 200, first.text
    one, two = first.json(), second.json()
    assert (one["version"], one["metric"], one["value"], one["current"]) == (1, "staff", 42, True)
    assert one["declared_by"] == f"key:{keys[Role.OPERATOR].split('_')[1]} (operator)"
    assert (two["version"], two["value"]) == (2, 55)
    assert (rule.json()["rule"], rule.json()["program"]) == ("jx-architecture", "jiangxi-2022")
    assert [(d["key"], d["version"]) for d in current.json()] == [
        ("jx-architecture", 1),
        ("staff", 2),
    ]
    assert [(d["key"], d["version"], d["current"]) for d in every.json()] == [
        ("jx-architecture", 1, True),
        ("staff", 1, False),
        ("staff", 2, True),
    ]
    old = staff.json()[0]
    assert (old["value"], old["superseded_by"]) == (42, two["id"])
    assert old["superseded_at"] is not None
    assert nothing.status_code == 404
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        chain = await audit.verify(conn)
        cur = await conn.execute("SELECT subject FROM audit_log WHERE action = 'declaration.put'")
        subjects = [r[0] for r in await cur.fetchall()]
    assert chain.ok
    assert subjects == ["declaration:staff", "declaration:staff", "declaration:jx-architecture"]


async def test_bad_declarations_are_refused_with_the_reason(database_url: str) -> None:
    keys = await role_keys(database_url)
    operator = bearer(keys[Role.OPERATOR])
    async with api_client(database_url) as (client, _):
        no_evidence = await client.put(
            "/v1/declarations/staff", json={"value": 3}, headers=operator
        )
        blank = await client.put(
            "/v1/declarations/staff", json={"value": 3, "evidence_ref": " "}, headers=operator
        )
        tier = await client.put(
            "/v1/declarations/staff",
            json={**STAFF, "program": "jiangsu-2018", "tier": "综合型"},
            headers=operator,
        )
        key = await client.put("/v1/declarations/Bad%20Key", json=STAFF, headers=operator)
        listed = await client.get("/v1/declarations", headers=operator)
    assert no_evidence.status_code == 422
    assert "evidence_ref" in no_evidence.text
    assert blank.status_code == 422 and "evidence_ref is required" in blank.json()["detail"]
    assert tier.status_code == 422 and "跨行业跨领域" in tier.json()["detail"]
    assert key.status_code == 422
    assert listed.json() == []
