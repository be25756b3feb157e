"""/v1/audit-log/verify and the audit entries of key management, against a real PostgreSQL."""

import psycopg
import pytest

from api.auth import Role
from tests.api.apitest import api_client, bearer, role_keys

pytestmark = pytest.mark.integration


async def test_key_management_is_chained_and_tampering_is_named(database_url: str) -> None:
    keys = await role_keys(database_url)
    admin, auditor = bearer(keys[Role.ADMIN]), bearer(keys[Role.AUDITOR])
    admin_prefix = keys[Role.ADMIN].split("_")[1]
    async with api_client(database_url) as (client, _):
        created = await client.post("/v1/keys", json={"role": "operator"}, headers=admin)
        assert created.status_code == 201, created.text
        prefix = created.json()["prefix"]
        assert (await client.delete(f"/v1/keys/{prefix}", headers=admin)).status_code == 200

        assert (await client.get("/v1/audit-log/verify")).status_code == 401
        intact = (await client.get("/v1/audit-log/verify", headers=auditor)).json()
        assert intact["ok"] is True
        assert intact["entries"] == len(keys) + 2  # role_keys' keys, then create and revoke
        assert intact["head"] is not None and len(intact["head"]) == 64

        with psycopg.connect(database_url) as conn:
            rows = conn.execute("SELECT seq, actor, action, subject FROM audit_log ORDER BY seq")
            entries = rows.fetchall()
        assert entries[-2][1:] == (f"key:{admin_prefix}", "key.created", f"key/{prefix}")
        assert entries[-1][1:] == (f"key:{admin_prefix}", "key.revoked", f"key/{prefix}")

        tampered = entries[-2][0]
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE audit_log SET payload = jsonb_set(payload, '{role}', '\"admin\"') "
                "WHERE seq = %s",
                (tampered,),
            )
        broken = (await client.get("/v1/audit-log/verify", headers=auditor)).json()
    assert broken["ok"] is False
    assert broken["broken_seq"] == tampered
    assert "edited" in broken["reason"]
