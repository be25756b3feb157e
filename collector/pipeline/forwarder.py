"""The forwarder: writes batches to the store, spools them while it is down, replays in order.

Ordering: while the spool holds anything, every new batch goes behind it (to the
spool, or waits in the inbox), and the spool is replayed oldest first, so each
device's data reaches the store in the order it was collected. A batch whose
write failed with the store's "unavailable" error is spooled and replayed; the
writer's ingest log turns a replay of a batch that had in fact committed into a
no-op. A batch the store refuses for any other reason would block the spool
forever, so it is moved to the spool's quarantine directory and counted.

Backlog: when the store can take several batches in one transaction
(``GroupStore.write_many``, as SampleWriter does), the forwarder hands it every batch
waiting in the inbox at once, and replays up to ``replay_group`` spooled batches at
once, oldest first: one commit for the group, while the store still logs and applies
each batch exactly once. If the store refuses a group, nothing of it was applied; the
oldest batch is then written alone, so a refused batch is found and quarantined by
itself.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from collector import metrics
from collector.batch import Batch
from collector.pipeline.codec import UnencodableRecord
from collector.pipeline.spool import Spool, SpoolCorrupt, SpoolEntry, SpoolFull

log = logging.getLogger(__name__)

WriteSource = Literal["live", "spool"]


class BatchStore(Protocol):
    """Where batches go; collector.store.writer.SampleWriter is the real one."""

    async def write(self, batch: Batch, source: WriteSource = "live") -> object:
        """Apply one batch exactly once (a replayed batch id is skipped)."""
        ...


@runtime_checkable
class GroupStore(BatchStore, Protocol):
    """A store that also applies several batches in one transaction, each exactly once."""

    async def write_many(self, batches: Sequence[Batch], source: WriteSource = "live") -> object:
        """Apply the batches together: all of them, or (on an error) none."""
        ...


class Outcome(enum.Enum):
    """What became of one write attempt."""

    STORED = "stored"
    UNAVAILABLE = "unavailable"
    REJECTED = "rejected"


@dataclass
class ForwarderStats:
    """Running totals of what the forwarder did.

    "Stored" includes batches the store skipped because it had already applied them.
    """

    batches_stored: int = 0
    samples_stored: int = 0
    batches_spooled: int = 0
    samples_spooled: int = 0
    batches_replayed: int = 0
    batches_rejected: int = 0
    samples_dropped: int = 0


class Forwarder:
    """Move batches from a small inbox to the store, through the spool when needed."""

    def __init__(
        self,
        store: BatchStore,
        spool: Spool,
        *,
        unavailable: tuple[type[BaseException], ...],
        replay_interval: float,
        inbox_size: int = 2,
        replay_group: int = 8,
    ) -> None:
        self._store = store
        self._group_store = store if isinstance(store, GroupStore) else None
        self._replay_group = max(1, replay_group)
        self._single_next = False  # after a refused group: write the oldest batch alone
        self._spool = spool
        self._unavailable = unavailable
        self._replay_interval = replay_interval
        self._inbox_size = inbox_size
        self._inbox: deque[Batch] = deque()
        self._arrived = asyncio.Event()
        self._space = asyncio.Event()
        self._finished = False
        self._store_up: bool | None = None
        self._next_probe = 0.0
        self._stuck_logged = False
        self._last_error = ""
        self.in_flight: Batch | None = None
        self.stats = ForwarderStats()

    @property
    def store_up(self) -> bool | None:
        """Return whether the last write reached the store (None before the first)."""
        return self._store_up

    def idle(self) -> bool:
        """Report whether nothing waits: inbox empty, no write in flight, spool empty."""
        return not self._inbox and self.in_flight is None and len(self._spool) == 0

    async def submit(self, batch: Batch) -> None:
        """Hand a batch over, waiting while the inbox is full (this is the backpressure)."""
        while len(self._inbox) >= self._inbox_size:
            self._space.clear()
            await self._space.wait()
        self._inbox.append(batch)
        self._arrived.set()

    def finish(self) -> None:
        """No more batches will come: `run` returns once the inbox is written or spooled."""
        self._finished = True
        self._arrived.set()

    def unsent(self) -> list[Batch]:
        """Return the batch in flight and the inbox, oldest first, and forget them."""
        batches = list(self._inbox)
        if self.in_flight is not None and not (batches and batches[0] is self.in_flight):
            batches.insert(0, self.in_flight)
        self.in_flight = None
        self._inbox.clear()
        return batches

    def _pop(self) -> None:
        self._inbox.popleft()
        self._space.set()

    async def _wait_arrival(self, delay: float | None) -> None:
        self._arrived.clear()
        if self._finished:
            return
        try:
            async with asyncio.timeout(delay):
                await self._arrived.wait()
        except TimeoutError:
            pass

    async def run(self) -> None:
        """Forward until `finish` was called and the inbox is empty."""
        while not (self._finished and not self._inbox):
            if len(self._spool):
                await self._catch_up()
            else:
                await self._live()

    async def _live(self) -> None:
        if not self._inbox:
            await self._wait_arrival(None)
            return
        if len(self._inbox) > 1 and self._group_store is not None and not self._single_next:
            group = list(self._inbox)  # a backlog: one transaction for all of it
            outcome = await self._write(group, "live")
            if outcome is Outcome.STORED:
                for _ in group:
                    self._pop()
                return
            if outcome is Outcome.REJECTED:
                self._single_next = True  # find the refused batch by writing one at a time
                return
        else:
            outcome = await self._write([self._inbox[0]], "live")
        self._single_next = False
        batch = self._inbox[0]
        if outcome is Outcome.REJECTED:
            await asyncio.to_thread(self._spool.reject, batch, self._last_error)
            self._count_rejected(batch)
        elif outcome is Outcome.UNAVAILABLE and not await self._spool_batch(batch):
            await asyncio.sleep(self._replay_interval)
            return
        self._pop()

    async def _catch_up(self) -> None:
        now = time.monotonic()
        store_down = self._store_up is False and now < self._next_probe
        if store_down or self._finished:
            while self._inbox and await self._spool_batch(self._inbox[0]):
                self._pop()
            if self._finished and not self._inbox:
                return
            if store_down:
                await self._wait_arrival(self._next_probe - now)
                return
        outcome = await self._replay_oldest()
        inbox_full = len(self._inbox) >= self._inbox_size
        if outcome is Outcome.STORED and inbox_full and await self._spool_batch(self._inbox[0]):
            self._pop()
        if outcome is not Outcome.UNAVAILABLE and len(self._spool) == 0:
            log.info("spool drained: %d batches replayed so far", self.stats.batches_replayed)

    async def _replay_oldest(self) -> Outcome:
        size = 1 if self._group_store is None or self._single_next else self._replay_group
        entries = self._spool.entries()[:size] if size > 1 else [self._spool.oldest()]
        read: list[tuple[SpoolEntry, Batch]] = []
        corrupt = False
        for entry in entries:
            if entry is None:
                break
            try:
                read.append((entry, await asyncio.to_thread(self._spool.read, entry)))
            except SpoolCorrupt:
                corrupt = True  # the spool quarantined and forgot it; the order holds
        if not read:
            return Outcome.REJECTED if corrupt else Outcome.STORED
        outcome = await self._write([batch for _, batch in read], "spool")
        if outcome is Outcome.REJECTED and len(read) > 1:
            self._single_next = True  # find the refused batch by replaying one at a time
            return outcome
        self._single_next = False
        if outcome is Outcome.STORED:
            for entry, _ in read:
                await asyncio.to_thread(self._spool.remove, entry)
            self.stats.batches_replayed += len(read)
        elif outcome is Outcome.REJECTED:
            entry, batch = read[0]
            await asyncio.to_thread(self._spool.quarantine, entry, self._last_error)
            self._count_rejected(batch)
        return outcome

    async def _write(self, batches: list[Batch], source: WriteSource) -> Outcome:
        self.in_flight = batches[0]
        try:
            if len(batches) > 1 and self._group_store is not None:
                await self._group_store.write_many(batches, source)
            else:
                await self._store.write(batches[0], source)
        except self._unavailable as exc:
            self.in_flight = None
            self._mark_down(exc)
            return Outcome.UNAVAILABLE
        except Exception as exc:
            self.in_flight = None
            self._last_error = f"{type(exc).__name__}: {exc}"
            return Outcome.REJECTED
        self.in_flight = None
        self._mark_up()
        self.stats.batches_stored += len(batches)
        self.stats.samples_stored += sum(b.sample_count for b in batches)
        return Outcome.STORED

    def _count_rejected(self, batch: Batch) -> None:
        samples = len(batch.samples)
        metrics.samples_dropped.labels(reason="store_rejected").inc(samples)
        self.stats.batches_rejected += 1
        self.stats.samples_dropped += samples

    def _mark_down(self, exc: BaseException) -> None:
        self._next_probe = time.monotonic() + self._replay_interval
        if self._store_up is not False:
            log.warning(
                "store unavailable (%s); spooling batches to %s, retrying every %.1f s",
                exc,
                self._spool.directory,
                self._replay_interval,
            )
            metrics.store_up.set(0)
        self._store_up = False

    def _mark_up(self) -> None:
        if self._store_up is not True:
            if self._store_up is False or len(self._spool):
                log.info(
                    "store available; %d spooled batches (%d samples) to replay",
                    len(self._spool),
                    self._spool.samples,
                )
            metrics.store_up.set(1)
        self._store_up = True

    async def _spool_batch(self, batch: Batch) -> bool:
        """Spool `batch`; return False if it must wait (spool full with block, disk error)."""
        try:
            result = await asyncio.to_thread(self._spool.append, batch)
        except UnencodableRecord as exc:
            samples = len(batch.samples)
            metrics.samples_dropped.labels(reason="unspoolable").inc(samples)
            self.stats.samples_dropped += samples
            log.error(
                "batch %s cannot be spooled and was dropped (%d samples): %s",
                batch.id,
                samples,
                exc,
                extra={"batch": str(batch.id), "reason": "unspoolable"},
            )
            return True
        except (SpoolFull, OSError) as exc:
            if not self._stuck_logged:
                if isinstance(exc, SpoolFull):
                    metrics.spool_full.inc()
                log.warning(
                    "cannot spool batch %s (%s); holding it and pausing intake until the "
                    "store takes spooled batches",
                    batch.id,
                    exc,
                    extra={"batch": str(batch.id), "reason": "spool_full"},
                )
                self._stuck_logged = True
            return False
        self._stuck_logged = False
        self.stats.samples_dropped += result.dropped_samples
        if result.entry is None:
            self.stats.samples_dropped += len(batch.samples)
        else:
            self.stats.batches_spooled += 1
            self.stats.samples_spooled += result.entry.samples
        return True
