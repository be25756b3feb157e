"""Monthly call figures from the ``call_monthly`` rollup (never from raw events).

A month is a calendar month in the zone the rollup counts in (``call_zone``, set from
the configured ``timezone``, Asia/Shanghai by default). Only the full months inside a
window count: a month whose first instant is at or after the window's start and whose
last instant is before its end. The monthly average is the calls in those months
divided by their number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction
from typing import Any, Literal
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection, sql

from collector.registry.models import AppKind

MonthlyGroup = Literal["app", "kind", "category", "industry", "domain"]

_GROUP_EXPR: dict[MonthlyGroup | None, sql.Composable] = {
    None: sql.SQL("NULL::text"),
    "app": sql.SQL("a.key"),
    "kind": sql.SQL("a.kind"),
    "category": sql.SQL("a.category"),
    "industry": sql.SQL("a.industry"),
    "domain": sql.SQL("a.domain"),
}

DEFINITION = (
    "A call is one recorded invocation of a model, algorithm, APP, cloud software or "
    "development tool, whatever its outcome (ok_calls counts those that succeeded). Months "
    "are calendar months in the zone stated; only full months inside the window count, and "
    "the monthly average is the calls in those months divided by their number. Figures come "
    "from the monthly rollup maintained at ingest and group by each app's current "
    "registration (kind, category, industry, domain)."
)


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def month_start(month: date, zone: str) -> datetime:
    """Return the first instant of a calendar month in a zone."""
    return datetime(month.year, month.month, 1, tzinfo=ZoneInfo(zone))


def full_months(start: datetime, end: datetime, zone: str) -> list[date]:
    """Return the first days of the calendar months lying wholly inside [start, end)."""
    local = start.astimezone(ZoneInfo(zone))
    month = date(local.year, local.month, 1)
    if month_start(month, zone) < start:
        month = _next_month(month)
    months: list[date] = []
    while month_start(_next_month(month), zone) <= end:
        months.append(month)
        month = _next_month(month)
    return months


def month_label(month: date) -> str:
    """Return YYYY-MM."""
    return f"{month.year:04d}-{month.month:02d}"


@dataclass(frozen=True, slots=True)
class GroupCalls:
    """Calls of one group in each full month."""

    key: str | None
    calls: dict[str, int]
    ok_calls: dict[str, int]

    @property
    def total(self) -> int:
        """Calls in all the full months."""
        return sum(self.calls.values())

    def average(self) -> Fraction | None:
        """Return calls per full month, or None without a full month."""
        return Fraction(self.total, len(self.calls)) if self.calls else None


@dataclass(frozen=True, slots=True)
class MonthlyCalls:
    """Calls per full calendar month of a window, overall and per group."""

    zone: str
    months: tuple[str, ...]
    group_by: MonthlyGroup | None
    groups: tuple[GroupCalls, ...]
    total: GroupCalls


async def monthly_calls(
    conn: AsyncConnection[Any],
    start: datetime,
    end: datetime,
    zone: str,
    *,
    group_by: MonthlyGroup | None = None,
    kinds: tuple[AppKind, ...] | None = None,
) -> MonthlyCalls:
    """Sum the rollup over the full months of [start, end), grouped and filtered by kind."""
    months = full_months(start, end, zone)
    labels = tuple(month_label(m) for m in months)
    rows: list[tuple[Any, ...]] = []
    if months:
        query = sql.SQL(
            "SELECT m.month, {group} AS key, sum(m.calls)::int8, sum(m.ok_calls)::int8"
            " FROM call_monthly m JOIN app a ON a.id = m.app_id"
            " WHERE m.month = ANY(%(months)s)"
            " AND (%(kinds)s::text[] IS NULL OR a.kind = ANY(%(kinds)s::text[]))"
            " GROUP BY 1, 2"
        ).format(group=_GROUP_EXPR[group_by])
        cur = await conn.execute(
            query, {"months": months, "kinds": list(kinds) if kinds is not None else None}
        )
        rows = await cur.fetchall()
    by_key: dict[str | None, tuple[dict[str, int], dict[str, int]]] = {}
    overall = ({m: 0 for m in labels}, {m: 0 for m in labels})
    for month, key, calls, ok in rows:
        label = month_label(month)
        calls_of, ok_of = by_key.setdefault(key, ({m: 0 for m in labels}, {m: 0 for m in labels}))
        calls_of[label] += int(calls)
        ok_of[label] += int(ok)
        overall[0][label] += int(calls)
        overall[1][label] += int(ok)
    groups = tuple(
        GroupCalls(key, calls_of, ok_of)
        for key, (calls_of, ok_of) in sorted(
            by_key.items(), key=lambda kv: (kv[0] is None, kv[0] or "")
        )
    )
    return MonthlyCalls(zone, labels, group_by, groups, GroupCalls(None, *overall))
