"""Call ingestion: each event stored once, with the monthly and caller rollups in step.

``CallIngest.ingest`` takes a list of raw events (JSON objects), checks each one
(collector/calls/events.py), resolves the app and caller keys to ids (cached; unknown
keys reject that event only) and hands the rows to a group commit
(collector/store/group_commit.py): the batches that arrive while others are being
stored are applied together, in one transaction per group. A group leaves out the ids
``call_event_seen`` already holds, binary-COPYs the rest into a temporary staging
table, then

1. inserts their ids into ``call_event_seen``, whose unique key makes each event count
   once, however often and however concurrently it is sent (a group that loses a race
   for an id to another process is tried again: see ``CallIngest._apply``);
2. inserts the new events into ``call_event``;
3. adds them, aggregated per (caller, UTC day), to ``call_caller_daily``: enterprises
   for any call, developers for calls of a development tool;
4. adds them, aggregated per (app, calendar month in the configured zone), to
   ``call_monthly``.

The monthly figures read only the rollups (collector/store/call_months.py). The zone of
the months is recorded in ``call_zone`` by the first ingest; an ingest with another
zone is refused (``ZoneMismatch``), since its months would not add up with those counted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from psycopg import AsyncConnection, AsyncCursor, errors
from psycopg.pq import TransactionStatus

from adapters.base import utcnow
from collector import metrics
from collector.calls.events import EventError, EventFields, parse_event, plain_event
from collector.store.copyrows import write_rows
from collector.store.group_commit import GroupCommit

MAX_BATCH: Final = 10_000
FUTURE_SLACK: Final = timedelta(minutes=5)
CACHE_SECONDS: Final = 60.0
_RETRIES: Final = 3
# Events checked between two turns of the event loop (≈1 ms of work).
_CHECK_SLICE: Final = 200
# Groups of concurrent batches applied at once: two keep two PostgreSQL backends busy.
LANES: Final = 2

_STAGE_COLUMNS = (
    "event_id", "ts", "app_id", "kind", "enterprise_id", "user_id", "developer_id",
    "outcome", "duration_ms",
)  # fmt: skip
_STAGE_TYPES = ("text", "timestamptz", "int8", "text", "int8", "int8", "int8", "text", "float8")

_CREATE_STAGE = (
    'CREATE TEMP TABLE IF NOT EXISTS call_stage (event_id text COLLATE "C", ts timestamptz,'
    " app_id int8, kind text, enterprise_id int8, user_id int8, developer_id int8, outcome text,"
    " duration_ms float8) ON COMMIT DELETE ROWS"
)
_COPY_STAGE = f"COPY call_stage ({', '.join(_STAGE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"

# Four statements in one transaction, each taking its row locks in key order, so that
# concurrent batches never deadlock; the shared rows of call_monthly (one per app and
# month, touched by nearly every batch) are locked last, just before the commit, so
# concurrent batches wait for each other only for that upsert and the commit.
# The staged ids already recorded leave the staging table (usually none is found), so
# that the others go in with a plain insert: a concurrent process that records one of
# them since makes it fail on the unique key, and the group is tried again. A scalar
# subquery, unlike a join, is never planned as a hash join over all of call_event_seen:
# it is one index probe per staged event whatever the statistics of the temporary table.
_SKIP_RECORDED = """
DELETE FROM call_stage s
WHERE (SELECT true FROM call_event_seen r WHERE r.event_id = s.event_id)
RETURNING s.event_id
"""
_RECORD = (
    "INSERT INTO call_event_seen (event_id, ts) SELECT event_id, ts FROM call_stage ORDER BY 1"
)
# The last attempt's dedupe: record what is new, drop the rest from the staging table.
_DEDUPE = """
WITH fresh AS (
    INSERT INTO call_event_seen (event_id, ts)
    SELECT event_id, ts FROM call_stage ORDER BY event_id
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
)
DELETE FROM call_stage s WHERE NOT EXISTS (SELECT 1 FROM fresh f WHERE f.event_id = s.event_id)
RETURNING s.event_id
"""
_STORE = """
INSERT INTO call_event (ts, event_id, app_id, enterprise_id, user_id, developer_id, outcome,
                        duration_ms)
SELECT ts, event_id, app_id, enterprise_id, user_id, developer_id, outcome, duration_ms
FROM call_stage
"""
# The two parts never share a key (their caller differs), so no outer aggregate is needed.
_CALLERS = """
INSERT INTO call_caller_daily (caller, caller_id, day, calls, first_ts, last_ts)
SELECT 'enterprise', enterprise_id, (ts AT TIME ZONE 'UTC')::date, count(*), min(ts), max(ts)
FROM call_stage WHERE enterprise_id IS NOT NULL GROUP BY 2, 3
UNION ALL
SELECT 'dev_tool_developer', developer_id, (ts AT TIME ZONE 'UTC')::date, count(*), min(ts),
       max(ts)
FROM call_stage WHERE developer_id IS NOT NULL AND kind = 'dev_tool' GROUP BY 2, 3
ORDER BY 1, 2, 3
ON CONFLICT (caller, caller_id, day) DO UPDATE SET
    calls = call_caller_daily.calls + EXCLUDED.calls,
    first_ts = LEAST(call_caller_daily.first_ts, EXCLUDED.first_ts),
    last_ts = GREATEST(call_caller_daily.last_ts, EXCLUDED.last_ts)
"""
_MONTHLY = """
INSERT INTO call_monthly (app_id, month, calls, ok_calls)
SELECT app_id, date_trunc('month', ts AT TIME ZONE %(zone)s)::date, count(*),
       count(*) FILTER (WHERE outcome = 'ok')
FROM call_stage GROUP BY 1, 2 ORDER BY 1, 2
ON CONFLICT (app_id, month) DO UPDATE SET calls = call_monthly.calls + EXCLUDED.calls,
    ok_calls = call_monthly.ok_calls + EXCLUDED.ok_calls
"""


class ZoneMismatch(RuntimeError):
    """The monthly rollup counts months in another zone than the one configured."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """An event that was not stored: its position in the batch and why."""

    index: int
    reason: str
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one ingest did with a batch."""

    received: int
    stored: int
    duplicates: int
    rejected: tuple[Rejection, ...]
    seconds: float


@dataclass(slots=True)
class _Keys:
    """Registry keys resolved to ids (apps with their kind); refreshed every CACHE_SECONDS."""

    apps: dict[str, tuple[int, str]] = field(default_factory=dict)
    callers: dict[str, dict[str, int]] = field(
        default_factory=lambda: {"enterprise": {}, "user": {}, "developer": {}}
    )
    loaded: float = field(default_factory=time.monotonic)

    def expire(self) -> None:
        """Forget everything when older than CACHE_SECONDS (registrations may change)."""
        if time.monotonic() - self.loaded > CACHE_SECONDS:
            self.apps.clear()
            for cache in self.callers.values():
                cache.clear()
            self.loaded = time.monotonic()


# Position of each caller key in EventFields.
_CALLER_FIELDS: Final = {"enterprise": 3, "user": 4, "developer": 5}
_CALLER_TABLES: Final = {
    "enterprise": "enterprise",
    "user": "platform_user",
    "developer": "developer",
}


def check_zone(zone: str) -> str:
    """Return the zone name when the zone database knows it; raise ValueError otherwise."""
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"timezone {zone!r} is not an IANA zone name; use e.g. Asia/Shanghai"
        ) from None
    return zone


class CallIngest:
    """Stores call events; one instance per process, shared by every connection it is given."""

    def __init__(self, zone: str, source: str = "http", lanes: int = LANES) -> None:
        self.zone = check_zone(zone)
        self.source = source
        self._keys = _Keys()
        self._zone_checked = False
        self._groups: GroupCommit[tuple[Any, ...], int] = GroupCommit(
            self._apply, lanes=lanes, max_items=MAX_BATCH
        )

    async def ingest(
        self, conn: AsyncConnection[Any], items: Sequence[object], now: datetime | None = None
    ) -> IngestResult:
        """Store the valid events of a batch once each; report the others by index."""
        started = time.perf_counter()
        if len(items) > MAX_BATCH:
            raise ValueError(f"a batch holds at most {MAX_BATCH} events, got {len(items)}")
        rejected: list[Rejection] = []
        events: list[tuple[int, EventFields]] = []
        latest = (now or utcnow()) + FUTURE_SLACK
        for index, raw in enumerate(items):
            if index % _CHECK_SLICE == _CHECK_SLICE - 1:
                await asyncio.sleep(0)  # let the groups being applied take their next step
            fields = plain_event(raw)
            if fields is None:
                try:
                    fields = parse_event(raw).fields()
                except EventError as exc:
                    event_id = raw.get("id") if isinstance(raw, dict) else None
                    rejected.append(Rejection(index, str(exc), _text(event_id)))
                    continue
            if fields[1] > latest:
                rejected.append(
                    Rejection(
                        index,
                        f"ts {fields[1].isoformat()} is in the future (now is "
                        f"{latest - FUTURE_SLACK:%Y-%m-%dT%H:%M:%SZ}); check the caller's clock",
                        fields[0],
                    )
                )
                continue
            events.append((index, fields))
        rows, duplicates = await self._rows(conn, events, rejected)
        stored = 0
        if rows:
            stored = await self._groups.submit(conn, rows)
        duplicates += len(rows) - stored
        rejected.sort(key=lambda r: r.index)
        if stored:
            metrics.calls_stored.labels(source=self.source).inc(stored)
        if duplicates:
            metrics.calls_duplicate.labels(source=self.source).inc(duplicates)
        for reason in {_reason(r) for r in rejected}:
            count = sum(1 for r in rejected if _reason(r) == reason)
            metrics.calls_rejected.labels(source=self.source, reason=reason).inc(count)
        return IngestResult(
            len(items), stored, duplicates, tuple(rejected), time.perf_counter() - started
        )

    async def _rows(
        self,
        conn: AsyncConnection[Any],
        events: list[tuple[int, EventFields]],
        rejected: list[Rejection],
    ) -> tuple[list[tuple[Any, ...]], int]:
        """Resolve keys and drop repeats within the batch; return staging rows and repeats."""
        await self._resolve(conn, events)
        apps = self._keys.apps
        enterprises = self._keys.callers["enterprise"]
        users = self._keys.callers["user"]
        developers = self._keys.callers["developer"]
        seen: set[str] = set()
        repeats = 0
        rows: list[tuple[Any, ...]] = []
        for index, fields in events:
            event_id, ts, app_key, enterprise, user, developer, outcome, duration = fields
            app = apps.get(app_key)
            problem = None
            if app is None:
                problem = f"app {app_key!r} is not registered (PUT /v1/apps/{app_key} first)"
            elif enterprise is not None and enterprise not in enterprises:
                problem = f"enterprise {enterprise!r} is not registered"
            elif user is not None and user not in users:
                problem = f"user {user!r} is not registered"
            elif developer is not None and developer not in developers:
                problem = f"developer {developer!r} is not registered"
            if problem is not None:
                rejected.append(Rejection(index, problem, event_id))
                continue
            assert app is not None
            if event_id in seen:
                repeats += 1
                continue
            seen.add(event_id)
            rows.append(
                (
                    event_id, ts, app[0], app[1],
                    None if enterprise is None else enterprises[enterprise],
                    None if user is None else users[user],
                    None if developer is None else developers[developer],
                    outcome, duration,
                )
            )  # fmt: skip
        return rows, repeats

    async def _resolve(
        self, conn: AsyncConnection[Any], events: list[tuple[int, EventFields]]
    ) -> None:
        """Look up the keys the cache does not hold, one query per registry."""
        self._keys.expire()
        apps = self._keys.apps
        missing = {f[2] for _, f in events if f[2] not in apps}
        if missing:
            cur = await conn.execute(
                "SELECT key, id, kind FROM app WHERE key = ANY(%s)", (list(missing),)
            )
            for key, id_, kind in await cur.fetchall():
                apps[key] = (int(id_), str(kind))
        for name, table in _CALLER_TABLES.items():
            cache = self._keys.callers[name]
            column = _CALLER_FIELDS[name]
            wanted = {
                f[column] for _, f in events if f[column] is not None and f[column] not in cache
            }
            if wanted:
                cur = await conn.execute(
                    f"SELECT key, id FROM {table} WHERE key = ANY(%s)",
                    (list(wanted),),
                )
                for key, id_ in await cur.fetchall():
                    cache[key] = int(id_)

    async def _apply(
        self, conn: AsyncConnection[Any], parts: list[Sequence[tuple[Any, ...]]]
    ) -> list[int]:
        """Stage and apply the rows of concurrent batches in one transaction.

        Return how many new events each batch held. An id in several batches of the
        group is new only in the first to arrive. The staged ids already recorded are
        looked up (one index probe each) and left out, so the dedupe is a plain insert
        into call_event_seen. If a concurrent process records one of the others in
        between, that insert fails on the unique key and the group is tried again; the
        last attempt dedupes with ON CONFLICT instead.
        """
        if not self._zone_checked:
            async with conn.transaction():
                await self._check_zone(conn)
            self._zone_checked = True  # committed: the zone is recorded
        for attempt in range(_RETRIES):
            last = attempt == _RETRIES - 1
            try:
                staged, owners = _first_arrivals(parts)
                known = await self._stage_and_apply(conn, staged, last)
                fresh = [0] * len(parts)
                for row, owner in zip(staged, owners, strict=True):
                    if row[0] not in known:
                        fresh[owner] += 1
                return fresh
            except (errors.UniqueViolation, errors.DeadlockDetected, errors.SerializationFailure):
                if last:
                    raise
        raise AssertionError("unreachable")

    async def _stage_and_apply(
        self, conn: AsyncConnection[Any], staged: list[tuple[Any, ...]], last: bool
    ) -> set[str]:
        """Run one group's transaction in three round trips; return the ids not new.

        BEGIN with the staging table, the COPY, then every statement and the COMMIT
        together: when the probe finds a staged id recorded, the statements after it go
        without that event. (Each round trip can wait for the event loop, which checks
        the next batch meanwhile; hence as few as the COPY allows.)
        """
        try:
            async with conn.pipeline():
                await conn.execute("BEGIN")
                await conn.execute(_CREATE_STAGE)
            async with conn.cursor().copy(_COPY_STAGE) as copy:
                copy.set_types(list(_STAGE_TYPES))
                await write_rows(copy, staged)
            async with conn.pipeline():
                probe = await (_dedupe(conn) if last else _skip_recorded(conn))
                if not last:
                    await conn.execute(_RECORD)
                await conn.execute(_STORE)
                await conn.execute(_CALLERS)
                await conn.execute(_MONTHLY, {"zone": self.zone})
                await conn.execute("COMMIT")
            return {str(r[0]) for r in await probe.fetchall()}
        except BaseException:
            if conn.info.transaction_status != TransactionStatus.IDLE and not conn.closed:
                await conn.execute("ROLLBACK")
            raise

    async def _check_zone(self, conn: AsyncConnection[Any]) -> None:
        await conn.execute(
            "INSERT INTO call_zone (timezone) VALUES (%s) ON CONFLICT DO NOTHING", (self.zone,)
        )
        cur = await conn.execute("SELECT timezone FROM call_zone")
        row = await cur.fetchone()
        assert row is not None
        if row[0] != self.zone:
            raise ZoneMismatch(
                f"call_monthly counts calendar months in {row[0]}, but timezone is {self.zone}; "
                f"set timezone: {row[0]} in the configuration (or TALLY_TIMEZONE) to keep "
                "the monthly figures consistent"
            )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _reason(rejection: Rejection) -> str:
    return "unknown_key" if "is not registered" in rejection.reason else "invalid"


async def _skip_recorded(conn: AsyncConnection[Any]) -> AsyncCursor[Any]:
    """Drop the staged events whose id is recorded already; the cursor yields their ids."""
    return await conn.execute(_SKIP_RECORDED)


async def _dedupe(conn: AsyncConnection[Any]) -> AsyncCursor[Any]:
    """Record the staged ids not recorded yet, drop the other events; yield their ids."""
    return await conn.execute(_DEDUPE)


def _first_arrivals(
    parts: list[Sequence[tuple[Any, ...]]],
) -> tuple[list[tuple[Any, ...]], list[int]]:
    """Return the rows to stage (the first of each id) and the part each came from."""
    if len(parts) == 1:
        rows = list(parts[0])  # ids within one batch are distinct already
        return rows, [0] * len(rows)
    seen: set[str] = set()
    staged: list[tuple[Any, ...]] = []
    owners: list[int] = []
    for owner, part in enumerate(parts):
        for row in part:
            if row[0] not in seen:
                seen.add(row[0])
                staged.append(row)
                owners.append(owner)
    return staged, owners


async def recorded_zone(conn: AsyncConnection[Any]) -> str | None:
    """Return the zone the monthly rollup counts in, or None before the first ingest."""
    cur = await conn.execute("SELECT timezone FROM call_zone")
    row = await cur.fetchone()
    return None if row is None else str(row[0])
