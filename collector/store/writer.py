"""The store writer: applies batches by binary COPY, each exactly once, rollups included.

One transaction per call, exactly once: record the batch ids in ``ingest_log`` (a
replayed batch is found there and skipped), apply device events in order, resolve
each sample's point (cache, then database; unknown points are rejected and
reported), COPY the samples into ``sample``, COPY one row per (device, UTC hour) into
a temporary staging table and add them to ``device_activity``. The aggregation runs
in Python (collector/store/rollup.py) while the server is still ingesting the sample
stream. Every count (connected devices, samples, good samples) comes from rows
written in that transaction, so it is exact the moment the batch commits.

Per-point state is kept out of the per-batch cost (docs/benchmarks.md, "Ingest"):

- ``point_activity.good_hours`` (bit h: a good live sample in UTC hour h of the day)
  and the first-seen times of points and devices are idempotent merges (OR, LEAST).
  They are written in the batch's transaction, but only for what the writer does not
  know to be stored already (collector/store/known.py): a point's bit once per hour,
  its first-seen once. The cache learns only after the commit, so a failed or
  doubtful transaction leaves it as it was, and a new writer starts empty and
  re-sends once: a committed sample never lacks its good-hour bit.
- The latest value of each point (``point.last_seen``/``last_value``/
  ``last_value_text``/``last_quality``) and ``device.last_seen`` are coalesced across
  batches and written by ``flush`` in a short transaction of their own, at most every
  ``latest_interval`` seconds (default 5 s), guarded by time so they never move back
  (collector/store/latest.py). **They lag the stored samples by up to that interval**;
  ``close`` flushes. A crash before a flush loses only those latest values, which the
  points' next samples set again; nothing counted is affected.

``write`` applies one batch per transaction. ``write_many`` applies several in one
transaction (group commit), each still logged once in ``ingest_log`` with its own
result: a backlog (a busy pipeline, a spool replay) should be handed over together.

Errors: ``StoreUnavailable`` when the database cannot be reached or the connection
broke (nothing was applied, or the outcome is unknown: replaying is safe);
``BatchRefused`` when the database refused the content (replaying fails the same
way); ``ValueError`` before anything is sent when a record breaks the contract (naive
time stamp, unsupported value type, registration without its DeviceInfo). A failed
latest-value flush is logged and retried; it never fails a write.

Caveat: a point deleted behind the writer's back (only a device deletion cascades to
points, and that is caught by ``device_activity``'s foreign key) is noticed when its
next good-hour bit or first-seen time is written, not in every batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, compress
from types import TracebackType
from typing import Literal

import psycopg
from psycopg import AsyncConnection, errors, pq
from psycopg.rows import TupleRow

from adapters.base import DeviceEvent, Sample, Value
from collector import metrics
from collector.batch import Batch
from collector.store import registrations
from collector.store import statements as sql
from collector.store.copyrows import write_rows
from collector.store.known import KnownState, Plan
from collector.store.latest import LATEST_TYPES, PendingLatest
from collector.store.registrations import PointIds, PointsByDevice
from collector.store.rollup import (
    DEVICE_HOUR_TYPES,
    SAMPLE_TYPES,
    ResolvedSamples,
    Rollup,
    SampleColumns,
    check_values,
    sort_and_check,
)

log = logging.getLogger(__name__)

Source = Literal["live", "spool", "import"]

LATEST_INTERVAL = 5.0
"""Default seconds between latest-value flushes (how far point.last_value may lag)."""


class StoreUnavailable(Exception):
    """The store cannot be reached or broke mid-batch; the batch is safe to replay later."""


class BatchRefused(Exception):
    """The store refused a batch for its content; replaying it will fail the same way."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """A sample that was not stored, and why."""

    sample: Sample
    reason: Literal["unknown_point"]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What the writer did with one batch."""

    batch_id: uuid.UUID
    applied: bool
    """False when the batch id was already in the ingest log: nothing was written."""
    samples_stored: int
    events_applied: int
    rejected: tuple[Rejected, ...]
    seconds: float
    """Time of the whole write call (of the group, for write_many)."""

    @property
    def duplicate(self) -> bool:
        """Report whether the batch was skipped as already applied."""
        return not self.applied


@dataclass(frozen=True, slots=True)
class _Part:
    """One batch of a group, its records split once."""

    batch: Batch
    samples: list[Sample]
    events: list[DeviceEvent]

    @classmethod
    def of(cls, batch: Batch) -> _Part:
        """Split a batch's records (one pass when it holds only samples)."""
        samples = batch.samples
        return cls(batch, samples, batch.events if len(samples) != len(batch) else [])


@dataclass(slots=True)
class _Group:
    """Batches to apply in one transaction, checked, their samples sorted by time."""

    ids: list[uuid.UUID]
    """Every distinct batch id given, in order: one result each."""
    parts: list[_Part]
    """The batches still to apply (those not found in the ingest log)."""
    source: Source
    samples: list[Sample]
    columns: SampleColumns
    """The sorted samples' fields as columns (one transposition for every later pass)."""
    value_types: set[type]
    """The types of the samples' values (checked; `copy_rows` reuses it)."""

    @classmethod
    def check(cls, batches: Iterable[Batch], source: Source) -> _Group:
        """Check the contract of every record before anything is sent (ValueError)."""
        unique: dict[uuid.UUID, Batch] = {}
        for batch in batches:
            unique.setdefault(batch.id, batch)  # a repeated id is one batch
        parts = [_Part.of(b) for b in unique.values()]
        for part in parts:
            registrations.check_events(part.events)
        group = cls(list(unique), parts, source, [], SampleColumns.of(()), set())
        group._collect()
        check_values(group.samples, group.values, group.value_types)
        return group

    @property
    def values(self) -> Sequence[Value]:
        """Return the sorted samples' values."""
        return self.columns.values

    def _collect(self) -> None:
        if len(self.parts) == 1:
            self.samples = self.parts[0].samples.copy()
        else:
            self.samples = list(chain.from_iterable(p.samples for p in self.parts))
        sort_and_check(self.samples)
        self.columns = SampleColumns.of(self.samples)
        self.value_types = set(map(type, self.columns.values))

    def part(self, batch_id: uuid.UUID) -> _Part:
        """Return the part of a batch in the group."""
        return next(p for p in self.parts if p.batch.id == batch_id)

    def keep(self, fresh: set[uuid.UUID]) -> None:
        """Drop the batches already applied (rare: a replay)."""
        if len(fresh) != len(self.parts):
            self.parts = [p for p in self.parts if p.batch.id in fresh]
            self._collect()


@dataclass(slots=True)
class _Applied:
    """What a committed transaction leaves for the writer's memory."""

    rollup: Rollup | None = None
    plan: Plan | None = None


class SampleWriter:
    """Writes batches to PostgreSQL over one connection it owns, reconnecting after failures."""

    def __init__(
        self,
        dsn: str,
        *,
        connect_timeout: float = 5.0,
        latest_interval: float = LATEST_INTERVAL,
    ) -> None:
        if latest_interval < 0:
            raise ValueError(f"latest_interval must be >= 0 seconds, got {latest_interval}")
        self._dsn = dsn
        self._connect_timeout = connect_timeout
        self._latest_interval = latest_interval
        self._conn: AsyncConnection[TupleRow] | None = None
        self._points: PointsByDevice = {}
        self._device_of: dict[int, int] = {}
        self._known = KnownState()
        self._latest = PendingLatest()
        self._lock = asyncio.Lock()  # one transaction at a time on the connection
        self._flusher: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SampleWriter:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def latest_interval(self) -> float:
        """Return the seconds between latest-value flushes."""
        return self._latest_interval

    @property
    def latest_pending(self) -> int:
        """Return how many points have a latest value waiting for the next flush."""
        return len(self._latest.points)

    async def close(self) -> None:
        """Flush pending latest values (best effort) and close the connection."""
        flusher, self._flusher = self._flusher, None
        if flusher is not None and flusher is not asyncio.current_task():
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
        if self._latest:
            async with self._lock:
                await self._flush_quietly(connect=True)
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def connect(self) -> None:
        """Open the connection now rather than on the first write."""
        try:
            await self._connection()
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            metrics.store_up.set(0)
            raise StoreUnavailable(f"cannot reach the store: {exc}") from exc

    async def flush(self) -> None:
        """Write the pending latest values now; raise StoreUnavailable if that fails."""
        async with self._lock:
            if not self._latest:
                return
            taken = self._latest.take()
            try:
                await self._write_latest(await self._connection(), taken)
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self._latest.put_back(taken)
                await self._discard()
                raise StoreUnavailable(f"latest values not written: {exc}") from exc
            except BaseException:
                self._latest.put_back(taken)
                raise

    async def write(self, batch: Batch, source: Source = "live") -> WriteResult:
        """Apply one batch in one transaction, exactly once; see the module docstring."""
        (result,) = await self.write_many([batch], source)
        return result

    async def write_many(
        self, batches: Sequence[Batch], source: Source = "live"
    ) -> list[WriteResult]:
        """Apply several batches in one transaction (group commit), each exactly once.

        Returns one result per distinct batch id, in order. A backlog (a busy pipeline,
        a spool replay) written this way commits once for the group and touches each
        device's hourly row once.
        """
        started = time.perf_counter()
        group = _Group.check(batches, source)
        if not group.ids:
            return []
        async with self._lock:
            results = await self._apply_checked(group, started)
            if self._latest.due(self._latest_interval):
                await self._flush_quietly(connect=False)
        if self._latest and self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_later(), name="tally-latest-flush")
        metrics.store_up.set(1)
        for result in results:
            if result.applied:
                metrics.samples_stored.inc(result.samples_stored)
                metrics.batch_latency.observe(result.seconds)
            else:
                metrics.batches_skipped.inc()
                log.info("batch %s already applied: skipped", result.batch_id)
            if result.rejected:
                metrics.samples_rejected.labels(reason="unknown_point").inc(len(result.rejected))
                _log_rejected(result.batch_id, result.rejected)
        return results

    async def _apply_checked(self, group: _Group, started: float) -> list[WriteResult]:
        try:
            try:
                return await self._apply(group, started)
            except errors.ForeignKeyViolation:
                # A point or device was deleted since it was cached: forget and retry once.
                self._points.clear()
                self._device_of.clear()
                self._known.forget()
                return await self._apply(group, started)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            await self._discard()
            metrics.store_up.set(0)
            raise StoreUnavailable(
                f"store unavailable while writing {_describe(group)}: {exc}. Nothing was "
                "applied, or the outcome is unknown; replaying is safe (the ingest log "
                "applies each batch once)"
            ) from exc
        except psycopg.Error as exc:
            raise BatchRefused(
                f"the store refused {_describe(group)}; nothing was applied: {exc}"
            ) from exc

    async def _connection(self) -> AsyncConnection[TupleRow]:
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        self._conn = None
        conn = await AsyncConnection.connect(
            self._dsn,
            autocommit=True,
            connect_timeout=max(1, round(self._connect_timeout)),
            application_name="tally-writer",
        )
        try:
            for statement in sql.CREATE_STAGES:
                await conn.execute(statement)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        return conn

    async def _apply(self, group: _Group, started: float) -> list[WriteResult]:
        conn = await self._connection()
        learnt = PointIds()
        applied = _Applied()
        ids = [p.batch.id for p in group.parts]  # fewer than group.ids after a retry
        try:
            async with conn.transaction():
                cur = await conn.execute(
                    sql.LOG_BATCHES,
                    (
                        group.source,
                        ids,
                        [len(p.samples) for p in group.parts],
                        [len(p.events) for p in group.parts],
                    ),
                    prepare=True,
                )
                group.keep({row[0] for row in await cur.fetchall()})
                events = [e for p in group.parts for e in p.events]
                await registrations.apply_events(conn, events, learnt)
                resolved, rejected = await self._resolve(conn, group, learnt)
                if resolved.samples:
                    device_of = self._device_of | learnt.device_of if learnt else self._device_of
                    await self._store(conn, resolved, device_of, applied)
                for batch_id, samples in rejected.items():
                    stored = len(group.part(batch_id).samples) - len(samples)
                    await conn.execute(sql.CORRECT_LOGGED_SAMPLES, (stored, batch_id))
        except BaseException:
            if conn.info.transaction_status != pq.TransactionStatus.IDLE:
                await self._discard()  # e.g. cancelled mid-statement: state unknown
            raise
        # Committed: only now may the caches learn from it.
        if learnt:
            learnt.merge_into(self._points)
            self._device_of.update(learnt.device_of)
        if applied.rollup is not None and applied.plan is not None:
            self._known.remember(applied.plan)
            self._latest.add(applied.rollup)
        seconds = time.perf_counter() - started
        by_id = {p.batch.id: p for p in group.parts}
        results: list[WriteResult] = []
        for batch_id in group.ids:
            part = by_id.get(batch_id)
            if part is None:
                results.append(WriteResult(batch_id, False, 0, 0, (), seconds))
                continue
            mine = tuple(Rejected(s, "unknown_point") for s in rejected.get(batch_id, ()))
            stored = len(part.samples) - len(mine)
            results.append(WriteResult(batch_id, True, stored, len(part.events), mine, seconds))
        return results

    async def _store(
        self,
        conn: AsyncConnection[TupleRow],
        resolved: ResolvedSamples,
        device_of: dict[int, int],
        applied: _Applied,
    ) -> None:
        """COPY the samples, add the device hours, and write what the cache lacks."""
        cur = conn.cursor()
        async with cur.copy(sql.COPY_SAMPLES) as copy:
            copy.set_types(list(SAMPLE_TYPES))
            await write_rows(copy, resolved.copy_rows())
            # The server is still ingesting the stream; aggregate in the meantime.
            rollup = resolved.rollup(device_of)
            plan = self._known.plan(rollup)
        async with cur.copy(sql.COPY_DEVICE_STAGE) as copy:
            copy.set_types(list(DEVICE_HOUR_TYPES))
            await write_rows(copy, rollup.device_hours)
        updated = await conn.execute(sql.UPDATE_DEVICE_ACTIVITY, prepare=True)
        if updated.rowcount < len(rollup.device_hours):  # a new hour of some device
            await conn.execute(sql.INSERT_DEVICE_ACTIVITY, prepare=True)
        if plan:  # rare: new hours, new points, a new writer
            async with cur.copy(sql.COPY_KEYS_STAGE) as copy:
                copy.set_types(list(sql.KEY_TYPES))
                await write_rows(copy, plan.key_rows())
            if plan.good_hours:
                await conn.execute(sql.ADD_GOOD_HOURS, prepare=True)
            if plan.point_first:
                await conn.execute(sql.POINT_FIRST_SEEN, prepare=True)
            if plan.device_first:
                await conn.execute(sql.DEVICE_FIRST_SEEN, prepare=True)
        applied.rollup, applied.plan = rollup, plan

    async def _resolve(
        self, conn: AsyncConnection[TupleRow], group: _Group, learnt: PointIds
    ) -> tuple[ResolvedSamples, dict[uuid.UUID, list[Sample]]]:
        """Find each sample's point id (cache, then database); split off unknown points."""
        samples, columns = group.samples, group.columns
        known = learnt.over(self._points)
        by_device = list(map(known.get, columns.devices))
        if all(by_device):  # every device known (a cached device has points)
            ids = list(map(dict.get, by_device, columns.points))  # type: ignore[arg-type]
            if all(ids):  # ids are positive: only a missing point is falsy
                resolved = ResolvedSamples.of(
                    samples,
                    ids,  # type: ignore[arg-type]
                    columns.values,
                    columns,
                    group.value_types,
                )
                return resolved, {}
        keys = list(zip(columns.devices, columns.points, strict=True))
        missing = {k for k in keys if k[1] not in known.get(k[0], {})}
        await registrations.lookup_points(conn, missing, learnt)
        known = learnt.over(self._points)
        ids = [known.get(d, {}).get(p) for d, p in keys]
        found = [i is not None for i in ids]
        resolved = ResolvedSamples.of(
            list(compress(samples, found)),
            list(compress(ids, found)),  # type: ignore[arg-type]
            list(compress(group.values, found)),
            value_types=group.value_types,
        )
        unknown = {k for k, ok in zip(keys, found, strict=True) if not ok}
        rejected: dict[uuid.UUID, list[Sample]] = {}
        for part in group.parts:
            mine = [s for s in part.samples if (s.device, s.point) in unknown]
            if mine:
                rejected[part.batch.id] = mine
        return resolved, rejected

    # --- latest values ------------------------------------------------------------------

    async def _write_latest(self, conn: AsyncConnection[TupleRow], taken: PendingLatest) -> None:
        """Write taken latest values and last-seen times in one short transaction."""
        async with conn.transaction():
            if taken.points:
                cur = conn.cursor()
                async with cur.copy(sql.COPY_LATEST_STAGE) as copy:
                    copy.set_types(list(LATEST_TYPES))
                    await write_rows(copy, taken.point_rows())
                await conn.execute(sql.POINT_LATEST, prepare=True)
            if taken.devices:
                cur = conn.cursor()
                async with cur.copy(sql.COPY_KEYS_STAGE) as copy:
                    copy.set_types(list(sql.KEY_TYPES))
                    await write_rows(copy, taken.device_rows())
                await conn.execute(sql.DEVICE_LAST_SEEN, prepare=True)

    async def _flush_quietly(self, *, connect: bool) -> bool:
        """Flush under the lock; log a failure and keep the values for the next try."""
        if not self._latest:
            return True
        conn = self._conn
        if not connect and (conn is None or conn.closed or conn.broken):
            return False  # the next write reconnects; flush after it
        taken = self._latest.take()
        try:
            await self._write_latest(await self._connection(), taken)
        except psycopg.Error as exc:
            self._latest.put_back(taken)
            if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
                await self._discard()
            log.warning(
                "latest values of %d points not written (%s); retrying in %.1f s",
                len(taken.points),
                exc,
                self._latest_interval,
            )
            return False
        return True

    async def _flush_later(self) -> None:
        """Flush when the oldest pending value is due; end when nothing is pending."""
        try:
            while self._latest and self._latest.since is not None:
                wait = self._latest.since + self._latest_interval - time.monotonic()
                await asyncio.sleep(max(wait, 0.0))
                async with self._lock:
                    if self._latest.due(self._latest_interval):
                        await self._flush_quietly(connect=False)
                        if self._latest.due(self._latest_interval):  # no connection now
                            self._latest.since = time.monotonic()
        finally:
            if self._flusher is asyncio.current_task():
                self._flusher = None

    async def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # closing a broken connection must not hide the real error
                log.debug("error closing a broken store connection", exc_info=True)


def _describe(group: _Group) -> str:
    samples = len(group.samples)
    if len(group.parts) == 1:
        return f"batch {group.parts[0].batch.id} ({samples} samples)"
    return f"{len(group.parts)} batches ({samples} samples)"


def _log_rejected(batch_id: uuid.UUID, rejected: tuple[Rejected, ...]) -> None:
    keys = sorted({(r.sample.device, r.sample.point) for r in rejected})
    shown = ", ".join(f"{d}/{p}" for d, p in keys[:5]) + (" …" if len(keys) > 5 else "")
    log.warning(
        "batch %s: %d samples rejected for %d unknown points (%s); register the devices "
        "and points before sending their samples",
        batch_id,
        len(rejected),
        len(keys),
        shown,
    )
