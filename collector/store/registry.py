"""Registry writes and reads: upsert records by key, resolve references, list and fetch.

Records arrive validated (collector/registry/models.py). One ``register`` call upserts
a list of records of one resource in one statement (``INSERT ... SELECT FROM unnest``
``ON CONFLICT (key) DO UPDATE``) inside the caller's transaction, after resolving the
keys the records refer to; an unknown reference or a key given twice refuses the whole
list with ``RegistryError`` naming the record.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from adapters.base import utcnow
from collector.registry.models import (
    AppRecord,
    DeveloperRecord,
    EnterpriseRecord,
    Record,
    Resource,
    SubscriptionRecord,
    UserRecord,
)
from collector.store import audit

MAX_LIST = 1000


class RegistryError(ValueError):
    """Records that cannot be registered; the message names the record and the problem."""

    def __init__(self, index: int | None, message: str) -> None:
        super().__init__(message if index is None else f"record {index}: {message}")
        self.index = index


@dataclass(frozen=True, slots=True)
class Registered:
    """What one register call did."""

    resource: Resource
    created: int
    updated: int
    ids: dict[str, int]
    """Id of every registered key."""


# Which record field names which registry, and the table behind it.
_REF_TABLES: dict[str, tuple[str, str]] = {
    "enterprise": ("enterprise", "enterprises"),
    "developer": ("developer", "developers"),
    "user": ("platform_user", "users"),
    "app": ("app", "apps"),
}

_TABLES: dict[Resource, str] = {
    "apps": "app",
    "enterprises": "enterprise",
    "users": "platform_user",
    "developers": "developer",
    "subscriptions": "subscription",
}

_UPSERT: dict[Resource, str] = {
    "enterprises": """
        INSERT INTO enterprise (key, name, kind, industry, region, park, device_inventory)
        SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                             %s::text[], %s::int[])
        ON CONFLICT (key) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,
            industry = EXCLUDED.industry, region = EXCLUDED.region, park = EXCLUDED.park,
            device_inventory = EXCLUDED.device_inventory, updated_at = now()
        RETURNING key, id, xmax = 0""",
    "developers": """
        INSERT INTO developer (key, name, third_party, languages, enterprise_id)
        SELECT k, n, t, ARRAY(SELECT jsonb_array_elements_text(l::jsonb)), e
        FROM unnest(%s::text[], %s::text[], %s::bool[], %s::text[], %s::int8[]) AS u(k, n, t, l, e)
        ON CONFLICT (key) DO UPDATE SET name = EXCLUDED.name,
            third_party = EXCLUDED.third_party, languages = EXCLUDED.languages,
            enterprise_id = EXCLUDED.enterprise_id, updated_at = now()
        RETURNING key, id, xmax = 0""",
    "users": """
        INSERT INTO platform_user (key, kind, enterprise_id)
        SELECT * FROM unnest(%s::text[], %s::text[], %s::int8[])
        ON CONFLICT (key) DO UPDATE SET kind = EXCLUDED.kind,
            enterprise_id = EXCLUDED.enterprise_id, updated_at = now()
        RETURNING key, id, xmax = 0""",
    "apps": """
        INSERT INTO app (key, name, kind, category, industry, domain, provider, developer_id,
                         cross_platform)
        SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                             %s::text[], %s::text[], %s::int8[], %s::bool[])
        ON CONFLICT (key) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,
            category = EXCLUDED.category, industry = EXCLUDED.industry,
            domain = EXCLUDED.domain, provider = EXCLUDED.provider,
            developer_id = EXCLUDED.developer_id, cross_platform = EXCLUDED.cross_platform,
            updated_at = now()
        RETURNING key, id, xmax = 0""",
    "subscriptions": """
        INSERT INTO subscription (key, app_id, enterprise_id, user_id, subscribed_at, ended_at)
        SELECT * FROM unnest(%s::text[], %s::int8[], %s::int8[], %s::int8[],
                             %s::timestamptz[], %s::timestamptz[])
        ON CONFLICT (key) DO UPDATE SET app_id = EXCLUDED.app_id,
            enterprise_id = EXCLUDED.enterprise_id, user_id = EXCLUDED.user_id,
            subscribed_at = EXCLUDED.subscribed_at, ended_at = EXCLUDED.ended_at,
            updated_at = now()
        RETURNING key, id, xmax = 0""",
}

_SELECT: dict[Resource, str] = {
    "enterprises": """
        SELECT r.id, r.key, r.name, r.kind, r.industry, r.region, r.park, r.device_inventory,
               r.created_at AS registered_at, r.updated_at
        FROM enterprise r""",
    "developers": """
        SELECT r.id, r.key, r.name, r.third_party, r.languages, e.key AS enterprise,
               r.registered_at, r.updated_at
        FROM developer r LEFT JOIN enterprise e ON e.id = r.enterprise_id""",
    "users": """
        SELECT r.id, r.key, r.kind, e.key AS enterprise, r.registered_at, r.updated_at
        FROM platform_user r LEFT JOIN enterprise e ON e.id = r.enterprise_id""",
    "apps": """
        SELECT r.id, r.key, r.name, r.kind, r.category, r.industry, r.domain, r.provider,
               d.key AS developer, r.cross_platform, r.registered_at, r.updated_at
        FROM app r LEFT JOIN developer d ON d.id = r.developer_id""",
    "subscriptions": """
        SELECT r.id, r.key, a.key AS app, e.key AS enterprise, u.key AS "user",
               r.subscribed_at, r.ended_at, r.subscribed_at AS registered_at, r.updated_at
        FROM subscription r JOIN app a ON a.id = r.app_id
        LEFT JOIN enterprise e ON e.id = r.enterprise_id
        LEFT JOIN platform_user u ON u.id = r.user_id""",
}


def _check_unique(records: Sequence[Record]) -> None:
    first: dict[str, int] = {}
    for index, record in enumerate(records):
        if record.key in first:
            raise RegistryError(
                index, f"key {record.key!r} was already given by record {first[record.key]}"
            )
        first[record.key] = index


async def resolve_keys(conn: AsyncConnection[Any], field: str, keys: set[str]) -> dict[str, int]:
    """Return the ids of the given keys of the registry a reference field names."""
    if not keys:
        return {}
    table, _ = _REF_TABLES[field]
    cur = await conn.execute(
        f"SELECT key, id FROM {table} WHERE key = ANY(%s)",
        (sorted(keys),),
    )
    return {str(k): int(i) for k, i in await cur.fetchall()}


async def _references(
    conn: AsyncConnection[Any], records: Sequence[Record], fields: Sequence[str]
) -> dict[str, dict[str, int]]:
    """Resolve every reference field of the records; RegistryError names the first unknown."""
    found: dict[str, dict[str, int]] = {}
    for field in fields:
        wanted = {getattr(r, field) for r in records} - {None}
        found[field] = await resolve_keys(conn, field, wanted)
        for index, record in enumerate(records):
            key = getattr(record, field)
            if key is not None and key not in found[field]:
                _, resource = _REF_TABLES[field]
                raise RegistryError(
                    index,
                    f"{field} {key!r} is not registered; register it first "
                    f"(PUT /v1/{resource}/{key} or `tally import {resource}`)",
                )
    return found


def _ref(found: dict[str, dict[str, int]], field: str, key: str | None) -> int | None:
    return None if key is None else found[field][key]


async def _columns(
    conn: AsyncConnection[Any], resource: Resource, records: Sequence[Record]
) -> list[list[Any]]:
    """Return the column arrays of the upsert statement, references resolved."""
    if resource == "enterprises":
        ents = cast(Sequence[EnterpriseRecord], records)
        rows: list[tuple[Any, ...]] = [
            (r.key, r.name, r.kind, r.industry, r.region, r.park, r.device_inventory) for r in ents
        ]
    elif resource == "developers":
        devs = cast(Sequence[DeveloperRecord], records)
        refs = await _references(conn, devs, ("enterprise",))
        rows = [
            (
                r.key,
                r.name,
                r.third_party,
                json.dumps(list(r.languages), ensure_ascii=False),
                _ref(refs, "enterprise", r.enterprise),
            )
            for r in devs
        ]
    elif resource == "users":
        users = cast(Sequence[UserRecord], records)
        refs = await _references(conn, users, ("enterprise",))
        rows = [(r.key, r.kind, _ref(refs, "enterprise", r.enterprise)) for r in users]
    elif resource == "apps":
        apps = cast(Sequence[AppRecord], records)
        refs = await _references(conn, apps, ("developer",))
        rows = [
            (
                r.key,
                r.name,
                r.kind,
                r.category,
                r.industry,
                r.domain,
                r.provider,
                _ref(refs, "developer", r.developer),
                r.cross_platform,
            )
            for r in apps
        ]
    else:
        subs = cast(Sequence[SubscriptionRecord], records)
        refs = await _references(conn, subs, ("app", "enterprise", "user"))
        since = await _subscribed_since(conn, subs)
        rows = [
            (
                r.key,
                _ref(refs, "app", r.app),
                _ref(refs, "enterprise", r.enterprise),
                _ref(refs, "user", r.user),
                since[r.key],
                r.ended_at,
            )
            for r in subs
        ]
    return [list(column) for column in zip(*rows, strict=True)]


async def _subscribed_since(
    conn: AsyncConnection[Any], subs: Sequence[SubscriptionRecord]
) -> dict[str, datetime]:
    """Return each subscription's start: as given, else as stored, else now."""
    missing = [s.key for s in subs if s.subscribed_at is None]
    stored: dict[str, datetime] = {}
    if missing:
        cur = await conn.execute(
            "SELECT key, subscribed_at FROM subscription WHERE key = ANY(%s)", (missing,)
        )
        stored = {str(k): ts for k, ts in await cur.fetchall()}
    now = utcnow()
    return {s.key: s.subscribed_at or stored.get(s.key, now) for s in subs}


async def register(
    conn: AsyncConnection[Any], resource: Resource, records: Sequence[Record]
) -> Registered:
    """Create or update records of one resource by key, in the caller's transaction."""
    if not records:
        return Registered(resource, 0, 0, {})
    _check_unique(records)
    columns = await _columns(conn, resource, records)
    cur = await conn.execute(_UPSERT[resource], columns)
    rows = await cur.fetchall()
    created = sum(1 for _, _, inserted in rows if inserted)
    return Registered(resource, created, len(rows) - created, {str(k): int(i) for k, i, _ in rows})


async def fetch(conn: AsyncConnection[Any], resource: Resource, key: str) -> dict[str, Any] | None:
    """Return one registered record (references as keys), or None."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_SELECT[resource] + " WHERE r.key = %s", (key,))
        return await cur.fetchone()


async def listing(
    conn: AsyncConnection[Any], resource: Resource, *, after: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Return registered records in key order, `limit` after the key `after`."""
    if not 1 <= limit <= MAX_LIST:
        raise ValueError(f"limit {limit} is outside 1..{MAX_LIST}")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            _SELECT[resource] + " WHERE (%(after)s::text IS NULL OR r.key > %(after)s::text)"
            " ORDER BY r.key LIMIT %(limit)s",
            {"after": after, "limit": limit},
        )
        return await cur.fetchall()


def table_of(resource: Resource) -> str:
    """Return the table a resource is stored in."""
    return _TABLES[resource]


_SINGULAR: dict[Resource, str] = {
    "apps": "app",
    "enterprises": "enterprise",
    "users": "user",
    "developers": "developer",
    "subscriptions": "subscription",
}


async def register_one(
    conn: AsyncConnection[Any], actor: str, resource: Resource, record: Record
) -> Registered:
    """Create or update one record and append it to the audit log, in one transaction."""
    singular = _SINGULAR[resource]
    async with conn.transaction():
        result = await register(conn, resource, [record])
        action = f"{singular}.{'registered' if result.created else 'updated'}"
        await audit.append(
            conn, actor, action, f"{singular}/{record.key}", record.model_dump(mode="json")
        )
    return result


async def register_many(
    conn: AsyncConnection[Any],
    actor: str,
    resource: Resource,
    records: Sequence[Record],
    *,
    source: str,
    sha256: str,
) -> Registered:
    """Create or update records in one transaction with ONE audit entry for the whole import.

    The entry names the source (a file name or ``http``), the SHA-256 of its bytes and
    the counts, so an auditor can match the log to the file that was imported.
    """
    async with conn.transaction():
        result = await register(conn, resource, records)
        await audit.append(
            conn,
            actor,
            f"{_SINGULAR[resource]}.imported",
            resource,
            {
                "source": source,
                "sha256": sha256,
                "records": len(records),
                "created": result.created,
                "updated": result.updated,
            },
        )
    return result
