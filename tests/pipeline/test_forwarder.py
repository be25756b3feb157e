"""The forwarder hands a backlog to a store that takes groups (SampleWriter.write_many)."""

import asyncio
from collections.abc import Sequence
from pathlib import Path

from adapters.base import Sample, utcnow
from collector.batch import Batch
from collector.config import PipelineConfig, SpoolConfig
from collector.metrics import REGISTRY
from collector.pipeline import Pipeline, Spool
from collector.pipeline.forwarder import GroupStore, WriteSource
from collector.pipeline.spool import QUARANTINE
from collector.store.writer import StoreUnavailable
from tests.pipeline.memstore import MemoryStore


class GroupMemoryStore(MemoryStore):
    """MemoryStore plus write_many: all batches of a group or (on an error) none."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(delay)
        self.groups: list[tuple[str, int]] = []

    async def write_many(self, batches: Sequence[Batch], source: WriteSource = "live") -> object:
        """Apply a group atomically, each batch once."""
        self.attempts += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down:
            raise StoreUnavailable("memory store is down")
        for batch in batches:
            if self.reject(batch):
                raise ValueError(f"batch {batch.id} refused")
        self.groups.append((source, len(batches)))
        for batch in batches:
            if batch.id in self.seen:
                self.duplicates += 1
                continue
            self.seen.add(batch.id)
            self.applied.append(batch)
            self.sources.append(source)
        return "applied"


def pipeline_for(store: MemoryStore, spool_dir: Path, batch_size: int = 10) -> Pipeline:
    return Pipeline(
        store,
        spool_dir,
        PipelineConfig(queue_size=200, batch_size=batch_size, batch_age=0.02, shutdown_timeout=10),
        SpoolConfig.model_validate(
            {"directory": spool_dir, "fsync": False, "replay_interval": 0.05}
        ),
    )


def spooled(spool_dir: Path, count: int, size: int = 10) -> list[Batch]:
    spool = Spool(spool_dir, max_bytes=1 << 30, fsync=False)
    spool.open()
    batches = [
        Batch(tuple(Sample("dev", "seq", utcnow(), b * size + i) for i in range(size)))
        for b in range(count)
    ]
    for batch in batches:
        spool.append(batch)
    return batches


def files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.batch"))


def values(store: MemoryStore) -> list[object]:
    return [s.value for s in store.samples]


def test_the_writer_is_a_group_store_and_the_memory_store_is_not() -> None:
    from collector.store.writer import SampleWriter

    assert isinstance(SampleWriter("postgresql://nobody@127.0.0.1:1/none"), GroupStore)
    assert not isinstance(MemoryStore(), GroupStore)


async def test_spooled_batches_replay_in_groups_in_order(tmp_path: Path) -> None:
    spooled(tmp_path, 20)
    store = GroupMemoryStore()
    async with pipeline_for(store, tmp_path) as pipeline:
        assert await pipeline.wait_idle(10.0)
        assert pipeline.stats.batches_replayed == 20
    assert values(store) == list(range(200))
    assert store.groups == [("spool", 8), ("spool", 8), ("spool", 4)]
    assert files(tmp_path) == []


async def test_a_refused_batch_in_a_spooled_group_is_found_and_quarantined_alone(
    tmp_path: Path,
) -> None:
    batches = spooled(tmp_path, 6)
    store = GroupMemoryStore()
    store.reject = lambda batch: batch.id == batches[2].id
    dropped = REGISTRY.get_sample_value("tally_samples_dropped_total", {"reason": "store_rejected"})
    async with pipeline_for(store, tmp_path) as pipeline:
        assert await pipeline.wait_idle(10.0)
    assert values(store) == [v for v in range(60) if not 20 <= v < 30]
    assert len(files(tmp_path / QUARANTINE)) == 1
    assert (
        REGISTRY.get_sample_value("tally_samples_dropped_total", {"reason": "store_rejected"})
        == (dropped or 0) + 10
    )
    assert len(store.seen) == 5  # every other batch applied once


async def test_a_live_backlog_is_written_as_one_group(tmp_path: Path) -> None:
    store = GroupMemoryStore(delay=0.05)  # slow: batches queue up in the inbox meanwhile
    async with pipeline_for(store, tmp_path) as pipeline:
        for i in range(400):
            await pipeline.put(Sample("dev", "seq", utcnow(), i))
        assert await pipeline.wait_idle(20.0)
    assert values(store) == list(range(400))
    assert store.groups, "the slow store never saw a backlog"
    assert {source for source, _ in store.groups} == {"live"}
    limit = PipelineConfig().group_batches  # the inbox holds this many batches
    assert all(2 <= size <= limit for _, size in store.groups)
    assert max(size for _, size in store.groups) > 2
    assert store.duplicates == 0
