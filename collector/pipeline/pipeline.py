"""The collector pipeline: bounded queue → batcher → store, with the spool in between."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from adapters.base import Record
from collector import metrics
from collector.batch import Batch
from collector.config import PipelineConfig, SpoolConfig, TallyConfig
from collector.pipeline.batcher import Batcher
from collector.pipeline.codec import UnencodableRecord
from collector.pipeline.forwarder import BatchStore, Forwarder, ForwarderStats
from collector.pipeline.queue import RecordQueue
from collector.pipeline.spool import Spool, SpoolFull, SpoolScan
from collector.store.writer import StoreUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShutdownReport:
    """What `Pipeline.stop` did with the records it still held."""

    elapsed: float
    timed_out: bool
    queued_at_stop: int
    batches_stored: int
    batches_spooled: int
    samples_dropped: int
    spool_batches: int
    spool_samples: int

    def summary(self) -> str:
        """Return one line for the log."""
        how = "ran out of time" if self.timed_out else "flushed"
        return (
            f"pipeline stopped in {self.elapsed:.2f} s ({how}): {self.queued_at_stop} records "
            f"were queued; {self.batches_stored} batches stored, {self.batches_spooled} spooled, "
            f"{self.samples_dropped} samples dropped; spool holds {self.spool_batches} batches "
            f"({self.spool_samples} samples)"
        )


class Pipeline:
    """The adapters' Sink: queues records, batches them and stores or spools every batch.

    Use `async with Pipeline(...)` or `start()`/`stop()`. `stop()` flushes the
    queue within `shutdown_timeout`; what it could not store goes to the spool.
    """

    def __init__(
        self,
        store: BatchStore,
        spool_dir: Path,
        pipeline: PipelineConfig | None = None,
        spool: SpoolConfig | None = None,
        *,
        unavailable: tuple[type[BaseException], ...] = (StoreUnavailable,),
    ) -> None:
        self.config = pipeline or PipelineConfig()
        spool_config = spool or SpoolConfig()
        self.spool = Spool(
            spool_dir,
            max_bytes=spool_config.max_bytes,
            on_full=spool_config.on_full,
            fsync=spool_config.fsync,
        )
        self.queue = RecordQueue(self.config.queue_size)
        self.forwarder = Forwarder(
            store,
            self.spool,
            unavailable=unavailable,
            replay_interval=spool_config.replay_interval,
            inbox_size=self.config.group_batches,
            replay_group=self.config.group_batches,
        )
        self.batcher = Batcher(
            self.queue, self.forwarder.submit, self.config.batch_size, self.config.batch_age
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped: ShutdownReport | None = None

    @classmethod
    def from_config(cls, config: TallyConfig, store: BatchStore) -> Pipeline:
        """Build the pipeline a TallyConfig describes, writing to `store`."""
        return cls(store, config.spool_dir(), config.pipeline, config.spool)

    @property
    def stats(self) -> ForwarderStats:
        """Return the running totals of stored, spooled, replayed and dropped batches."""
        return self.forwarder.stats

    async def start(self) -> SpoolScan:
        """Open the spool (what a previous run left is replayed first) and start the tasks."""
        if self._tasks:
            raise RuntimeError("pipeline already started")
        scan = await asyncio.to_thread(self.spool.open)
        queue = self.queue
        metrics.queue_depth.set_function(lambda: len(queue))
        self._tasks = [
            asyncio.create_task(self._run_batcher(), name="tally-batcher"),
            asyncio.create_task(self.forwarder.run(), name="tally-forwarder"),
        ]
        for task in self._tasks:
            task.add_done_callback(self._task_ended)
        return scan

    async def _run_batcher(self) -> None:
        try:
            await self.batcher.run()
        finally:
            self.forwarder.finish()

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        log.critical(
            "pipeline task %s failed; refusing new records: %r",
            task.get_name(),
            task.exception(),
            exc_info=task.exception(),
        )
        self.queue.close()

    async def put(self, record: Record) -> None:
        """Put one record, waiting while the queue is full (backpressure)."""
        await self.queue.put(record)

    async def put_many(self, records: Sequence[Record]) -> None:
        """Put records in order, waiting for room while the queue is full (backpressure)."""
        await self.queue.put_many(records)

    def put_nowait(self, record: Record) -> bool:
        """Put one record if there is room; else count it as dropped and return False."""
        return self.queue.put_nowait(record)

    def idle(self) -> bool:
        """Report whether everything put so far is stored: nothing queued, batched or spooled."""
        return len(self.queue) == 0 and self.batcher.in_hand is None and self.forwarder.idle()

    async def wait_idle(self, within: float, poll: float = 0.05) -> bool:
        """Wait up to `within` seconds until `idle()`; return whether it became idle."""
        deadline = time.monotonic() + within
        while not self.idle():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(poll)
        return True

    async def stop(self, within: float | None = None) -> ShutdownReport:
        """Flush the queue to the store (or the spool) within `within` s (default: config)."""
        if self._stopped is not None:
            return self._stopped
        limit = self.config.shutdown_timeout if within is None else within
        started = time.monotonic()
        queued = len(self.queue)
        before = ForwarderStats(**vars(self.stats))
        self.queue.close()
        timed_out = False
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=limit)
            if pending:
                timed_out = True
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        salvaged_spooled, salvaged_dropped = await self._salvage()
        metrics.queue_depth.set_function(lambda: 0)
        after = self.stats
        report = ShutdownReport(
            elapsed=time.monotonic() - started,
            timed_out=timed_out,
            queued_at_stop=queued,
            batches_stored=after.batches_stored - before.batches_stored,
            batches_spooled=after.batches_spooled - before.batches_spooled + salvaged_spooled,
            samples_dropped=after.samples_dropped - before.samples_dropped + salvaged_dropped,
            spool_batches=len(self.spool),
            spool_samples=self.spool.samples,
        )
        level = logging.WARNING if timed_out or report.samples_dropped else logging.INFO
        log.log(level, report.summary())
        self._stopped = report
        return report

    async def _salvage(self) -> tuple[int, int]:
        """Spool whatever the tasks still held when shutdown ran out of time."""
        batches = self.forwarder.unsent()
        if self.batcher.in_hand is not None:
            batches.append(self.batcher.in_hand)
            self.batcher.in_hand = None
        leftover = self.queue.drain()
        size = self.config.batch_size
        batches += [Batch(tuple(leftover[i : i + size])) for i in range(0, len(leftover), size)]
        spooled = dropped = 0
        if batches and not self.spool.opened:
            await asyncio.to_thread(self.spool.open)
        for batch in batches:
            try:
                result = await asyncio.to_thread(self.spool.append, batch)
            except (SpoolFull, OSError, UnencodableRecord) as exc:
                samples = len(batch.samples)
                metrics.samples_dropped.labels(reason="shutdown").inc(samples)
                dropped += samples
                log.error(
                    "shutdown: batch %s (%d samples) could not be stored or spooled: %s",
                    batch.id,
                    samples,
                    exc,
                    extra={"batch": str(batch.id), "reason": "shutdown"},
                )
                continue
            dropped += result.dropped_samples
            if result.entry is not None:
                spooled += 1
            else:
                dropped += len(batch.samples)
        return spooled, dropped

    async def __aenter__(self) -> Pipeline:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
