"""An in-memory BatchStore for unit tests: exactly once by batch id, can be down or slow."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

from adapters.base import Sample
from collector.batch import Batch
from collector.pipeline.forwarder import WriteSource
from collector.store.writer import StoreUnavailable


class MemoryStore:
    """Keep applied batches in order; skip a batch id seen before, like the real writer."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.down = False
        self.reject: Callable[[Batch], bool] = lambda batch: False
        self.applied: list[Batch] = []
        self.sources: list[str] = []
        self.seen: set[uuid.UUID] = set()
        self.attempts = 0
        self.duplicates = 0
        self.lose_acks = 0

    async def write(self, batch: Batch, source: WriteSource = "live") -> object:
        """Apply once; raise StoreUnavailable while down or after commit if lose_acks > 0."""
        self.attempts += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down:
            raise StoreUnavailable("memory store is down")
        if self.reject(batch):
            raise ValueError(f"batch {batch.id} refused")
        if batch.id in self.seen:
            self.duplicates += 1
            return "duplicate"
        self.seen.add(batch.id)
        self.applied.append(batch)
        self.sources.append(source)
        if self.lose_acks:
            self.lose_acks -= 1
            raise StoreUnavailable("connection broke after commit; outcome unknown to the caller")
        return "applied"

    @property
    def samples(self) -> list[Sample]:
        """Return every applied sample in applied order."""
        return [s for b in self.applied for s in b.samples]


async def eventually(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until `predicate()` holds, polling; fail the test after `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"condition not met within {within} s")
