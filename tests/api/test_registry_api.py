"""Registry routes: operators write (audited), auditors read, references checked."""

from __future__ import annotations

import pytest
from psycopg import AsyncConnection

from api.auth import Role
from collector.store import audit
from tests.api.apitest import api_client, bearer, role_keys


@pytest.mark.integration
async def test_put_creates_then_updates_and_auditors_only_read(database_url: str) -> None:
    keys = await role_keys(database_url)
    op, aud = bearer(keys[Role.OPERATOR]), bearer(keys[Role.AUDITOR])
    app = {"key": "furnace-model", "name": "Furnace", "kind": "mechanism_model",
           "category": "thermal", "industry": "C31", "domain": "生产制造"}  # fmt: skip
    async with api_client(database_url) as (client, _):
        created = await client.put("/v1/apps/furnace-model", json=app, headers=op)
        updated = await client.put(
            "/v1/apps/furnace-model", json={**app, "cross_platform": True}, headers=op
        )
        refused = await client.put("/v1/apps/furnace-model", json=app, headers=aud)
        mismatch = await client.put("/v1/apps/other", json=app, headers=op)
        fetched = await client.get("/v1/apps/furnace-model", headers=aud)
        missing = await client.get("/v1/apps/nope", headers=aud)
        bad_domain = await client.put(
            "/v1/apps/x", json={**app, "key": "x", "domain": "marketing"}, headers=op
        )
    assert (created.status_code, updated.status_code) == (201, 200), created.text
    assert updated.json()["cross_platform"] is True
    assert refused.status_code == 403
    assert mismatch.status_code == 422 and "not the key" in mismatch.text
    assert fetched.json()["domain"] == "生产制造" and fetched.json()["id"] > 0
    assert missing.status_code == 404
    assert bad_domain.status_code == 422
    async with await AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(
            "SELECT actor, action, subject FROM audit_log WHERE action LIKE 'app.%' ORDER BY seq"
        )
        log = await cur.fetchall()
        assert (await audit.verify(conn)).ok
    prefix = keys[Role.OPERATOR].split("_")[1]
    assert log == [
        (f"key:{prefix}", "app.registered", "app/furnace-model"),
        (f"key:{prefix}", "app.updated", "app/furnace-model"),
    ]


@pytest.mark.integration
async def test_bulk_registration_is_all_or_none_and_pages(database_url: str) -> None:
    keys = await role_keys(database_url)
    op = bearer(keys[Role.OPERATOR])
    ents = [{"key": f"e{i}", "name": f"E{i}", "kind": "sme"} for i in range(5)]
    async with api_client(database_url) as (client, _):
        bulk = await client.post("/v1/enterprises", json={"items": ents}, headers=op)
        subs = [
            {"key": "s1", "app": "missing-app", "enterprise": "e1"},
        ]
        refused = await client.post("/v1/subscriptions", json={"items": subs}, headers=op)
        page = await client.get("/v1/enterprises", params={"limit": 3}, headers=op)
        rest = await client.get(
            "/v1/enterprises", params={"after": page.json()["next_after"]}, headers=op
        )
    assert bulk.status_code == 200, bulk.text
    assert (bulk.json()["created"], len(bulk.json()["sha256"])) == (5, 64)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["index"] == 0
    assert "app 'missing-app' is not registered" in refused.text
    keys_seen = [e["key"] for e in page.json()["items"] + rest.json()["items"]]
    assert keys_seen == [f"e{i}" for i in range(5)]
    assert rest.json()["next_after"] is None
