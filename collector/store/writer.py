"""The store writer: applies batches by binary COPY, each exactly once, rollups included.

One transaction per call: record the batch ids in ``ingest_log`` (a replayed batch is
found there and skipped), apply device events in order, resolve each sample's point
(cache, then database; unknown points are rejected and reported), COPY the samples
into ``sample``, COPY one row per (point, UTC hour) into a temporary staging table,
and update the rollups from it: ``device_activity``, ``point_activity``, the points'
last values and the devices' first/last seen. The aggregation runs in Python
(collector/store/rollup.py) while the server is still ingesting the sample stream.

``write`` applies one batch per transaction. ``write_many`` applies several in one
transaction (group commit): the rollup rows of a point are then rewritten once per
transaction instead of once per batch, which is what bounds throughput when each
batch holds about one sample per point (docs/benchmarks.md). A pipeline with more
than one batch ready, or a spool replay, should hand them over together.

Errors: ``StoreUnavailable`` when the database cannot be reached or the connection
broke (nothing was applied, or the outcome is unknown: replaying is safe);
``BatchRefused`` when the database refused the content (replaying fails the same
way); ``ValueError`` before anything is sent when a record breaks the contract (naive
time stamp, unsupported value type, registration without its DeviceInfo).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import compress
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
from collector.store.registrations import PointIds, PointKey
from collector.store.rollup import (
    ACTIVITY_TYPES,
    SAMPLE_TYPES,
    ResolvedSamples,
    check_values,
    sample_key,
    sample_value,
    sort_and_check,
)

log = logging.getLogger(__name__)

Source = Literal["live", "spool", "import"]


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
    values: list[Value]

    @classmethod
    def check(cls, batches: Iterable[Batch], source: Source) -> _Group:
        """Check the contract of every record before anything is sent (ValueError)."""
        unique: dict[uuid.UUID, Batch] = {}
        for batch in batches:
            unique.setdefault(batch.id, batch)  # a repeated id is one batch
        parts = [_Part.of(b) for b in unique.values()]
        for part in parts:
            registrations.check_events(part.events)
        group = cls(list(unique), parts, source, [], [])
        group._collect()
        check_values(group.samples, group.values)
        return group

    def _collect(self) -> None:
        self.samples = [s for p in self.parts for s in p.samples]
        sort_and_check(self.samples)
        self.values = list(map(sample_value, self.samples))

    def part(self, batch_id: uuid.UUID) -> _Part:
        """Return the part of a batch in the group."""
        return next(p for p in self.parts if p.batch.id == batch_id)

    def keep(self, fresh: set[uuid.UUID]) -> None:
        """Drop the batches already applied (rare: a replay)."""
        if len(fresh) != len(self.parts):
            self.parts = [p for p in self.parts if p.batch.id in fresh]
            self._collect()


class SampleWriter:
    """Writes batches to PostgreSQL over one connection it owns, reconnecting after failures."""

    def __init__(self, dsn: str, *, connect_timeout: float = 5.0) -> None:
        self._dsn = dsn
        self._connect_timeout = connect_timeout
        self._conn: AsyncConnection[TupleRow] | None = None
        self._point_ids: dict[PointKey, int] = {}
        self._device_of: dict[int, int] = {}

    async def __aenter__(self) -> SampleWriter:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection (the next write opens a new one)."""
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

    async def write(self, batch: Batch, source: Source = "live") -> WriteResult:
        """Apply one batch in one transaction, exactly once; see the module docstring."""
        (result,) = await self.write_many([batch], source)
        return result

    async def write_many(
        self, batches: Sequence[Batch], source: Source = "live"
    ) -> list[WriteResult]:
        """Apply several batches in one transaction (group commit), each exactly once.

        Returns one result per distinct batch id, in order. A backlog (a busy pipeline,
        a spool replay) written this way touches each point's rollup rows once per
        transaction instead of once per batch.
        """
        started = time.perf_counter()
        group = _Group.check(batches, source)
        if not group.ids:
            return []
        try:
            try:
                results = await self._apply(group, started)
            except errors.ForeignKeyViolation:
                # A point or device was deleted since it was cached: forget and retry once.
                self._point_ids.clear()
                self._device_of.clear()
                results = await self._apply(group, started)
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
            await conn.execute(sql.CREATE_STAGE)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        return conn

    async def _apply(self, group: _Group, started: float) -> list[WriteResult]:
        conn = await self._connection()
        learnt = PointIds()
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
                    await _store(conn, resolved, device_of)
                for batch_id, samples in rejected.items():
                    stored = len(group.part(batch_id).samples) - len(samples)
                    await conn.execute(sql.CORRECT_LOGGED_SAMPLES, (stored, batch_id))
        except BaseException:
            if conn.info.transaction_status != pq.TransactionStatus.IDLE:
                await self._discard()  # e.g. cancelled mid-statement: state unknown
            raise
        if learnt:
            self._point_ids.update(learnt.by_key)
            self._device_of.update(learnt.device_of)
        seconds = time.perf_counter() - started
        applied = {p.batch.id: p for p in group.parts}
        results: list[WriteResult] = []
        for batch_id in group.ids:
            part = applied.get(batch_id)
            if part is None:
                results.append(WriteResult(batch_id, False, 0, 0, (), seconds))
                continue
            mine = tuple(Rejected(s, "unknown_point") for s in rejected.get(batch_id, ()))
            stored = len(part.samples) - len(mine)
            results.append(WriteResult(batch_id, True, stored, len(part.events), mine, seconds))
        return results

    async def _resolve(
        self, conn: AsyncConnection[TupleRow], group: _Group, learnt: PointIds
    ) -> tuple[ResolvedSamples, dict[uuid.UUID, list[Sample]]]:
        """Find each sample's point id (cache, then database); split off unknown points."""
        samples = group.samples
        known = self._point_ids | learnt.by_key if learnt else self._point_ids
        ids = list(map(known.get, map(sample_key, samples)))  # keys freed as they go
        if all(ids):  # ids are positive: only a missing point is falsy
            return ResolvedSamples(samples, ids, group.values), {}  # type: ignore[arg-type]
        keys = list(map(sample_key, samples))
        await registrations.lookup_points(
            conn, {k for k, i in zip(keys, ids, strict=True) if i is None}, learnt
        )
        known = self._point_ids | learnt.by_key
        ids = list(map(known.get, keys))
        found = [i is not None for i in ids]
        resolved = ResolvedSamples(
            list(compress(samples, found)),
            list(compress(ids, found)),  # type: ignore[arg-type]
            list(compress(group.values, found)),
        )
        unknown = {k for k, ok in zip(keys, found, strict=True) if not ok}
        rejected: dict[uuid.UUID, list[Sample]] = {}
        for part in group.parts:
            mine = [s for s in part.samples if (s.device, s.point) in unknown]
            if mine:
                rejected[part.batch.id] = mine
        return resolved, rejected

    async def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # closing a broken connection must not hide the real error
                log.debug("error closing a broken store connection", exc_info=True)


async def _store(
    conn: AsyncConnection[TupleRow], resolved: ResolvedSamples, device_of: dict[int, int]
) -> None:
    """COPY the samples, stage the activity rows and upsert the rollups from them."""
    cur = conn.cursor()
    async with cur.copy(sql.COPY_SAMPLES) as copy:
        copy.set_types(list(SAMPLE_TYPES))
        await write_rows(copy, resolved.copy_rows())
        # The server is still ingesting the stream; aggregate in the meantime.
        activity = resolved.activity(device_of)
    async with cur.copy(sql.COPY_STAGE) as copy:
        copy.set_types(list(ACTIVITY_TYPES))
        await write_rows(copy, activity.rows)
    rollups = sql.ONE_HOUR if activity.single_hour else sql.HOURS
    await conn.execute(rollups.device_activity, prepare=True)
    updated = await conn.execute(rollups.update_point_activity, prepare=True)
    if updated.rowcount < activity.point_days:  # new (point, day) rows: first of the day
        await conn.execute(rollups.insert_point_activity, prepare=True)
    await conn.execute(rollups.points, prepare=True)
    await conn.execute(rollups.devices, prepare=True)


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
