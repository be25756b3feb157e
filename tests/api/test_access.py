"""Bearer keys and roles on every endpoint, against a real PostgreSQL."""

import psycopg
import pytest

from api.auth import Role
from tests.api.apitest import add_key, api_client, bearer, role_keys

pytestmark = pytest.mark.integration

READ_ENDPOINTS = ["/v1/devices", "/v1/devices/1", "/v1/counts", "/metrics"]


async def test_missing_wrong_and_malformed_keys_get_401_with_bearer_challenge(
    database_url: str,
) -> None:
    keys = await role_keys(database_url)
    good = keys[Role.AUDITOR]
    wrong_secret = good[:-4] + ("abcd" if not good.endswith("abcd") else "efgh")
    async with api_client(database_url) as (client, _):
        for path in [*READ_ENDPOINTS, "/v1/keys"]:
            missing = await client.get(path)
            assert missing.status_code == 401, path
            assert missing.headers["www-authenticate"].startswith("Bearer")
            assert "missing API key" in missing.json()["detail"]
            for headers in (
                bearer(wrong_secret),
                bearer("tly_00000000_nosuchkey"),
                bearer("not-a-key"),
                {"Authorization": f"Basic {good}"},
            ):
                answer = await client.get(path, headers=headers)
                assert answer.status_code == 401, (path, headers)
                assert answer.headers["www-authenticate"].startswith("Bearer")


async def test_revoked_key_stops_working_at_once(database_url: str) -> None:
    keys = await role_keys(database_url)
    auditor = keys[Role.AUDITOR]
    prefix = auditor.split("_")[1]
    async with api_client(database_url) as (client, _):
        assert (await client.get("/v1/counts", headers=bearer(auditor))).status_code == 200
        revoked = await client.delete(f"/v1/keys/{prefix}", headers=bearer(keys[Role.ADMIN]))
        assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
        answer = await client.get("/v1/counts", headers=bearer(auditor))
        assert answer.status_code == 401
        assert "revoked" in answer.json()["detail"]
        assert 'error="invalid_token"' in answer.headers["www-authenticate"]


async def test_every_role_reads_but_only_admin_manages_keys(database_url: str) -> None:
    keys = await role_keys(database_url)
    async with api_client(database_url) as (client, _):
        for role, token in keys.items():
            for path in ["/v1/devices", "/v1/counts", "/metrics"]:
                assert (await client.get(path, headers=bearer(token))).status_code == 200
            listing = await client.get("/v1/keys", headers=bearer(token))
            created = await client.post("/v1/keys", json={"role": "auditor"}, headers=bearer(token))
            if role is Role.ADMIN:
                assert listing.status_code == 200 and created.status_code == 201
            else:
                assert listing.status_code == 403, role
                assert created.status_code == 403, role
                assert f"has {role.value}" in created.json()["detail"]
                assert "admin" in listing.json()["detail"]


async def test_admin_creates_keys_that_work_and_listing_never_shows_secrets(
    database_url: str,
) -> None:
    admin = await add_key(database_url, Role.ADMIN, "root")
    async with api_client(database_url) as (client, _):
        created = await client.post(
            "/v1/keys", json={"role": "operator", "label": "scada"}, headers=bearer(admin)
        )
        assert created.status_code == 201
        body = created.json()
        assert body["role"] == "operator" and body["label"] == "scada"
        new_key = body["key"]
        assert new_key.startswith(f"tly_{body['prefix']}_")
        assert (await client.get("/v1/devices", headers=bearer(new_key))).status_code == 200
        assert (await client.get("/v1/keys", headers=bearer(new_key))).status_code == 403

        listing = await client.get("/v1/keys", headers=bearer(admin))
        assert listing.status_code == 200
        assert [k["label"] for k in listing.json()] == ["root", "scada"]
        text = listing.text
        assert new_key not in text and admin not in text
        assert new_key.split("_", 2)[2] not in text
        assert all("key" not in k and "secret_hash" not in k for k in listing.json())

        bad_role = await client.post("/v1/keys", json={"role": "root"}, headers=bearer(admin))
        assert bad_role.status_code == 422
        unknown = await client.delete("/v1/keys/ffffffff", headers=bearer(admin))
        assert unknown.status_code == 404


async def test_keys_are_stored_hashed_and_last_use_is_recorded(database_url: str) -> None:
    token = await add_key(database_url, Role.AUDITOR)
    prefix = token.split("_")[1]
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT secret_hash, last_used_at FROM api_key WHERE prefix = %s", (prefix,)
        ).fetchone()
    assert row is not None
    assert token.encode() not in bytes(row[0]) and len(bytes(row[0])) == 32
    assert row[1] is None
    async with api_client(database_url) as (client, _):
        for _ in range(3):
            assert (await client.get("/v1/counts", headers=bearer(token))).status_code == 200
    with psycopg.connect(database_url) as conn:
        used = conn.execute(
            "SELECT last_used_at FROM api_key WHERE prefix = %s", (prefix,)
        ).fetchone()
    assert used is not None and used[0] is not None


async def test_health_needs_no_key(database_url: str) -> None:
    async with api_client(database_url) as (client, _):
        answer = await client.get("/v1/health")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok" and answer.json()["store"] == "up"
