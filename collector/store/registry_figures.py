"""Registry and call figures of the metrics snapshot, read from the registries and rollups.

Definitions (stated in every report through ``DEFINITIONS``):

- apps, models, algorithms, cloud software, dev tools: as registered now (a registry is an
  inventory kept by the operator; its registration time is not when the item came into
  use, so it does not cut the window);
- subscriptions: active at some time in the window (started before its end, not ended
  before its start); subscribing enterprises and users are distinct subscribers;
- enterprise users: enterprises that made at least one recorded call in the window;
- developers: as registered now; dev-tool callers: developers named by
  at least one call of a development tool in the window; languages: distinct languages
  of the registered developers;
- calls: per kind and full calendar month (collector/store/call_months.py).

A figure whose registry is empty is None: nothing was recorded, which is insufficient
evidence, not zero. Nothing here scans raw call events, except a window shorter than one
UTC day that lies inside one day: its callers are read from the events of that part of
the day.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

from collector.store.call_months import monthly_calls
from collector.store.calls import recorded_zone
from criteria.snapshot import (
    APP_KINDS,
    AppCounts,
    AppKindFigures,
    AppRegistry,
    CallFigures,
    DeveloperFigures,
    EnterpriseFigures,
    SubscriptionFigures,
)

DEFINITIONS: dict[str, str] = {
    "registered_app": "a model, algorithm, APP, cloud software or dev tool in the registry "
    "when the figures were computed",
    "subscription": "a subscription that started before the window's end and did not end "
    "before its start",
    "enterprise_user": "an enterprise that made at least one recorded call in the window",
    "dev_tool_developer": "a developer named by at least one call of a development tool in "
    "the window",
    "monthly_calls": "calls in the full calendar months of the window divided by their number",
}

_APPS = """
SELECT kind, cross_platform, category, industry, domain, count(*)::int8
FROM app GROUP BY 1, 2, 3, 4, 5
"""
_ACTIVE = "s.subscribed_at < %(end)s AND (s.ended_at IS NULL OR s.ended_at > %(start)s)"
_SUBSCRIPTIONS = f"""
SELECT count(*)::int8, count(DISTINCT s.enterprise_id)::int8, count(DISTINCT s.user_id)::int8
FROM subscription s WHERE {_ACTIVE}
"""
_SUBSCRIBER_KINDS = f"""
SELECT 'enterprise', e.kind, count(DISTINCT e.id)::int8
FROM subscription s JOIN enterprise e ON e.id = s.enterprise_id
WHERE {_ACTIVE} AND e.kind IS NOT NULL GROUP BY 2
UNION ALL
SELECT 'user', u.kind, count(DISTINCT u.id)::int8
FROM subscription s JOIN platform_user u ON u.id = s.user_id
WHERE {_ACTIVE} GROUP BY 2
"""
# A (caller, UTC day) row has a call inside [start, end) when its last call is at or after
# start and its first is before end; exact unless start and end cut the same day. One
# primary-key probe per enterprise or developer, stopping at the first matching day.
_CALLERS = {
    caller: f"""
SELECT x.id FROM {table} x CROSS JOIN LATERAL (
    SELECT 1 FROM call_caller_daily c
    WHERE c.caller = '{caller}' AND c.caller_id = x.id
      AND c.day >= %(first_day)s AND c.day <= %(last_day)s
      AND c.last_ts >= %(start)s AND c.first_ts < %(end)s
    LIMIT 1) hit
"""
    for caller, table in (("enterprise", "enterprise"), ("dev_tool_developer", "developer"))
}
_CALLERS_RAW = {
    "enterprise": "SELECT DISTINCT enterprise_id FROM call_event"
    " WHERE ts >= %(start)s AND ts < %(end)s AND enterprise_id IS NOT NULL",
    "dev_tool_developer": "SELECT DISTINCT c.developer_id FROM call_event c"
    " JOIN app a ON a.id = c.app_id AND a.kind = 'dev_tool'"
    " WHERE c.ts >= %(start)s AND c.ts < %(end)s AND c.developer_id IS NOT NULL",
}
_DEVELOPERS = """
SELECT count(*)::int8, count(*) FILTER (WHERE third_party)::int8,
       (SELECT count(DISTINCT lang)::int8 FROM developer d, unnest(d.languages) lang)
FROM developer
"""


def _app_counts(rows: list[tuple[Any, ...]]) -> AppCounts:
    total = sum(int(r[5]) for r in rows)
    by: dict[int, Counter[str]] = {2: Counter(), 3: Counter(), 4: Counter()}
    for row in rows:
        for column, counter in by.items():
            if row[column] is not None:
                counter[str(row[column])] += int(row[5])
    return AppCounts(
        total=total,
        by_category=dict(by[2]),
        by_industry=dict(by[3]),
        by_domain=dict(by[4]),
    )


async def app_registry(conn: AsyncConnection[Any]) -> AppRegistry:
    """Count registered items of every kind, with their cross-platform subset."""
    cur = await conn.execute(_APPS)
    rows = await cur.fetchall()
    kinds: dict[str, AppKindFigures] = {}
    for kind in APP_KINDS:
        of_kind = [r for r in rows if r[0] == kind]
        kinds[kind] = AppKindFigures(
            registered=_app_counts(of_kind),
            cross_platform=_app_counts([r for r in of_kind if r[1]]),
        )
    return AppRegistry(**kinds)


async def subscription_figures(
    conn: AsyncConnection[Any], start: datetime, end: datetime
) -> SubscriptionFigures:
    """Count subscriptions active in the window and their distinct subscribers by kind."""
    window = {"start": start, "end": end}
    cur = await conn.execute(_SUBSCRIPTIONS, window)
    row = await cur.fetchone()
    assert row is not None
    cur = await conn.execute(_SUBSCRIBER_KINDS, window)
    kinds: dict[str, dict[str, int]] = {"enterprise": {}, "user": {}}
    for who, kind, count in await cur.fetchall():
        kinds[who][str(kind)] = int(count)
    return SubscriptionFigures(
        subscriptions=int(row[0]),
        enterprises=int(row[1]),
        enterprises_by_kind=kinds["enterprise"],
        users=int(row[2]),
        users_by_kind=kinds["user"],
    )


async def callers(
    conn: AsyncConnection[Any], caller: str, start: datetime, end: datetime
) -> set[int]:
    """Return the ids of enterprises (or dev-tool developers) that called in [start, end)."""
    first = start.astimezone(UTC)
    last = (end - timedelta(microseconds=1)).astimezone(UTC)
    day_start = first.replace(hour=0, minute=0, second=0, microsecond=0)
    params = {
        "start": start,
        "end": end,
        "first_day": first.date(),
        "last_day": last.date(),
    }
    inside_one_day = (
        first.date() == last.date() and first != day_start and (end < day_start + timedelta(days=1))
    )
    query = _CALLERS_RAW[caller] if inside_one_day else _CALLERS[caller]
    cur = await conn.execute(query, params)
    return {int(r[0]) for r in await cur.fetchall()}


async def enterprise_users(
    conn: AsyncConnection[Any], start: datetime, end: datetime
) -> EnterpriseFigures:
    """Count the enterprises that called in the window, by industry and kind."""
    ids = await callers(conn, "enterprise", start, end)
    cur = await conn.execute(
        "SELECT industry, kind FROM enterprise WHERE id = ANY(%s)", (sorted(ids),)
    )
    rows = await cur.fetchall()
    industries = Counter(str(i) for i, _ in rows if i is not None)
    kinds = Counter(str(k) for _, k in rows if k is not None)
    return EnterpriseFigures(total=len(rows), by_industry=dict(industries), by_kind=dict(kinds))


async def developer_figures(
    conn: AsyncConnection[Any], start: datetime, end: datetime
) -> DeveloperFigures:
    """Count registered developers, third-party ones, dev-tool callers and languages."""
    cur = await conn.execute(_DEVELOPERS)
    row = await cur.fetchone()
    assert row is not None
    calling = await callers(conn, "dev_tool_developer", start, end)
    return DeveloperFigures(
        total=int(row[0]),
        third_party=int(row[1]),
        dev_tool_callers=len(calling),
        languages=int(row[2]),
    )


async def call_figures(
    conn: AsyncConnection[Any], start: datetime, end: datetime, zone: str
) -> CallFigures:
    """Return calls per kind in each full calendar month of the window."""
    figures = await monthly_calls(conn, start, end, zone, group_by="kind")
    per_kind: dict[str, dict[str, int]] = {
        kind: dict.fromkeys(figures.months, 0) for kind in APP_KINDS
    }
    for group in figures.groups:
        if group.key in per_kind:
            per_kind[group.key] = dict(group.calls)
    return CallFigures(months=figures.months, **per_kind)


async def _has_rows(conn: AsyncConnection[Any], table: str) -> bool:
    cur = await conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table})")
    row = await cur.fetchone()
    return bool(row and row[0])


async def registry_figures(
    conn: AsyncConnection[Any], start: datetime, end: datetime, tz: str
) -> dict[str, Any]:
    """Return the snapshot's registry and call figures for [start, end), months in `tz`.

    A figure whose registry holds nothing at all is None (no evidence was recorded, which
    the evaluator reports as insufficient evidence rather than zero): apps without any
    registered app, subscriptions without any subscription, developers without any
    developer, and calls and enterprise users before the first call event was ingested.
    Months are counted in the zone the rollup was built in (`tz` unless the
    configuration changed since; see collector/store/calls.py).
    """
    zone = await recorded_zone(conn)
    calls_recorded = zone is not None
    return {
        "apps": await app_registry(conn) if await _has_rows(conn, "app") else None,
        "subscriptions": (
            await subscription_figures(conn, start, end)
            if await _has_rows(conn, "subscription")
            else None
        ),
        "enterprise_users": (await enterprise_users(conn, start, end) if calls_recorded else None),
        "developers": (
            await developer_figures(conn, start, end)
            if await _has_rows(conn, "developer")
            else None
        ),
        "calls": await call_figures(conn, start, end, zone) if zone is not None else None,
    }
