"""Registry upserts: by key, references resolved, refusals named, audited."""

from __future__ import annotations

import pytest
from psycopg import AsyncConnection

from collector.registry.models import (
    AppRecord,
    DeveloperRecord,
    EnterpriseRecord,
    SubscriptionRecord,
    UserRecord,
)
from collector.store import audit, registry


@pytest.mark.integration
async def test_records_are_created_then_updated_by_key_and_audited(database_url: str) -> None:
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        ent = EnterpriseRecord(key="acme", name="Acme", kind="sme", industry="c2614")
        first = await registry.register_one(conn, "key:abc", "enterprises", ent)
        again = await registry.register_one(
            conn, "key:abc", "enterprises", ent.model_copy(update={"kind": "large"})
        )
        await registry.register(
            conn,
            "developers",
            [DeveloperRecord(key="d1", name="D", third_party=False, languages=("Go", "C"))],
        )
        await registry.register(
            conn, "users", [UserRecord(key="u1", kind="staff", enterprise="acme")]
        )
        await registry.register(
            conn, "apps", [AppRecord(key="a1", name="A", kind="industrial_app", developer="d1")]
        )
        subs = [
            SubscriptionRecord(key="s1", app="a1", enterprise="acme"),
            SubscriptionRecord(key="s2", app="a1", user="u1"),
        ]
        bulk = await registry.register_many(
            conn, "cli:test", "subscriptions", subs, source="subs.csv", sha256="00" * 32
        )
        stored = await registry.fetch(conn, "enterprises", "acme")
        dev = await registry.fetch(conn, "developers", "d1")
        page = await registry.listing(conn, "subscriptions", limit=1)
        rest = await registry.listing(conn, "subscriptions", after=page[-1]["key"])
        cur = await conn.execute("SELECT action, subject, payload FROM audit_log ORDER BY seq")
        log = await cur.fetchall()
        verdict = await audit.verify(conn)
    assert (first.created, again.updated) == (1, 1)
    assert stored is not None and stored["kind"] == "large" and stored["industry"] == "C2614"
    assert dev is not None and dev["languages"] == ["Go", "C"]
    assert (bulk.created, [r["key"] for r in page + rest]) == (2, ["s1", "s2"])
    assert rest[0]["user"] == "u1" and page[0]["enterprise"] == "acme"
    assert [(a, s) for a, s, _ in log] == [
        ("enterprise.registered", "enterprise/acme"),
        ("enterprise.updated", "enterprise/acme"),
        ("subscription.imported", "subscriptions"),
    ]
    assert log[2][2] == {
        "source": "subs.csv", "sha256": "00" * 32, "records": 2, "created": 2, "updated": 0,
    }  # fmt: skip
    assert verdict.ok


@pytest.mark.integration
async def test_unknown_references_and_repeated_keys_refuse_the_whole_list(
    database_url: str,
) -> None:
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        apps = [
            AppRecord(key="a1", name="A", kind="algorithm"),
            AppRecord(key="a2", name="B", kind="algorithm", developer="ghost"),
        ]
        with pytest.raises(registry.RegistryError, match=r"record 1: developer 'ghost' is not"):
            await registry.register(conn, "apps", apps)
        with pytest.raises(registry.RegistryError, match="record 1: key 'a1' was already given"):
            await registry.register(conn, "apps", [apps[0], apps[0]])
        cur = await conn.execute("SELECT count(*) FROM app")
        assert await cur.fetchone() == (0,)


def test_a_subscription_needs_a_subscriber() -> None:
    with pytest.raises(ValueError, match="enterprise or a user"):
        SubscriptionRecord(key="s", app="a")
