"""The batcher: cuts the record queue into batches on size or age and hands them on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from collector.batch import Batch
from collector.pipeline.queue import RecordQueue


class Batcher:
    """Forward a Batch when `size` records wait in the queue or the oldest is `age` s old.

    Runs until the queue is closed and drained. `in_hand` is the batch being
    forwarded (while the forwarder's inbox is full), so a shutdown that runs out of
    time can still spool it.
    """

    def __init__(
        self,
        queue: RecordQueue,
        forward: Callable[[Batch], Awaitable[None]],
        size: int,
        age: float,
    ) -> None:
        if size < 1 or age <= 0:
            raise ValueError(f"batch size must be >= 1 and age > 0, got size={size}, age={age}")
        self._queue = queue
        self._forward = forward
        self.size = size
        self.age = age
        self.in_hand: Batch | None = None
        self.batches = 0
        self.records = 0

    async def run(self) -> None:
        """Batch and forward until the queue is closed and empty."""
        while True:
            records = await self._queue.take(self.size, self.age)
            if not records:
                return
            batch = Batch(tuple(records))
            self.in_hand = batch
            await self._forward(batch)
            self.in_hand = None
            self.batches += 1
            self.records += len(records)
