import asyncio
import time

from adapters.base import Sample, utcnow
from collector.batch import Batch
from collector.pipeline.batcher import Batcher
from collector.pipeline.queue import RecordQueue


class Collected:
    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.at: list[float] = []
        self.changed = asyncio.Event()

    async def forward(self, batch: Batch) -> None:
        self.batches.append(batch)
        self.at.append(time.monotonic())
        self.changed.set()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(2.0):
            while len(self.batches) < count:
                self.changed.clear()
                await self.changed.wait()


async def test_flushes_on_size() -> None:
    queue, out = RecordQueue(1000), Collected()
    batcher = Batcher(queue, out.forward, size=10, age=30.0)
    task = asyncio.create_task(batcher.run())
    for i in range(25):
        await queue.put(Sample("d", "p", utcnow(), i))
    await out.wait_for(2)
    assert [len(b) for b in out.batches] == [10, 10]
    queue.close()
    await asyncio.wait_for(task, 2.0)
    assert [len(b) for b in out.batches] == [10, 10, 5]
    values = [s.value for b in out.batches for s in b.samples]
    assert values == list(range(25))


async def test_flushes_on_age() -> None:
    queue, out = RecordQueue(1000), Collected()
    batcher = Batcher(queue, out.forward, size=1000, age=0.2)
    task = asyncio.create_task(batcher.run())
    started = time.monotonic()
    for i in range(3):
        await queue.put(Sample("d", "p", utcnow(), i))
    await out.wait_for(1)
    assert len(out.batches[0]) == 3
    assert out.at[0] - started >= 0.15
    queue.close()
    await asyncio.wait_for(task, 2.0)
    assert batcher.batches == 1 and batcher.records == 3
