import asyncio
from pathlib import Path

import pytest

from adapters.base import DeviceEvent, DeviceEventKind, DeviceInfo, Sample, Sink, utcnow
from collector.config import PipelineConfig, SpoolConfig
from collector.metrics import REGISTRY
from collector.pipeline import Pipeline, PipelineClosed
from collector.pipeline.spool import QUARANTINE
from tests.pipeline.memstore import MemoryStore, eventually

MIB = 1 << 20


def make(
    store: MemoryStore,
    spool_dir: Path,
    *,
    queue_size: int = 1000,
    batch_size: int = 50,
    batch_age: float = 0.02,
    max_bytes: int = 64 * MIB,
    on_full: str = "block",
) -> Pipeline:
    return Pipeline(
        store,
        spool_dir,
        PipelineConfig(
            queue_size=queue_size,
            batch_size=batch_size,
            batch_age=batch_age,
            group_batches=2,  # the bounds these tests reason about: queue + 2 batches in hand
            shutdown_timeout=10,
        ),
        SpoolConfig.model_validate(
            {
                "directory": spool_dir,
                "max_bytes": max_bytes,
                "on_full": on_full,
                "fsync": False,
                "replay_interval": 0.05,
            }
        ),
    )


def metric(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


async def produce(pipeline: Pipeline, values: range) -> None:
    for i in values:
        await pipeline.put(Sample("dev", "seq", utcnow(), i))


def files(directory: Path, pattern: str) -> list[Path]:
    return sorted(directory.glob(pattern))


def values(store: MemoryStore) -> list[object]:
    return [s.value for s in store.samples]


async def test_everything_reaches_the_store_in_order(tmp_path: Path) -> None:
    store = MemoryStore()
    info = DeviceInfo("dev", "modbus", "127.0.0.1:502")
    async with make(store, tmp_path) as pipeline:
        sink: Sink = pipeline  # what adapters are given
        assert sink is pipeline
        await pipeline.put(DeviceEvent(DeviceEventKind.REGISTERED, "dev", utcnow(), info=info))
        await produce(pipeline, range(1000))
        assert await pipeline.wait_idle(5.0)
    assert values(store) == list(range(1000))
    assert store.applied[0].events[0].info == info
    assert set(store.sources) == {"live"}
    assert metric("tally_store_up") == 1


async def test_slow_store_makes_put_wait_and_queue_stays_bounded(tmp_path: Path) -> None:
    store = MemoryStore(delay=0.05)
    pipeline = make(store, tmp_path, queue_size=50, batch_size=20)
    await pipeline.start()
    deepest = 0

    async def watch() -> None:
        nonlocal deepest
        while True:
            deepest = max(deepest, len(pipeline.queue))
            await asyncio.sleep(0.001)

    watcher = asyncio.create_task(watch())
    producer = asyncio.create_task(produce(pipeline, range(400)))
    await eventually(lambda: len(pipeline.queue) == 50)
    await asyncio.sleep(0.1)
    assert not producer.done(), "the producer should be held back by the slow store"
    assert metric("tally_queue_depth") == len(pipeline.queue)
    await asyncio.wait_for(producer, 10.0)
    assert await pipeline.wait_idle(10.0)
    watcher.cancel()
    await pipeline.stop()
    assert deepest <= 50
    assert values(store) == list(range(400))


async def test_outage_spools_then_replays_in_order_before_live(tmp_path: Path) -> None:
    store = MemoryStore()
    async with make(store, tmp_path) as pipeline:
        await produce(pipeline, range(100))
        assert await pipeline.wait_idle(5.0)
        store.down = True
        await produce(pipeline, range(100, 400))
        await eventually(lambda: pipeline.spool.samples == 300)
        assert metric("tally_store_up") == 0
        assert metric("tally_spool_batches") == len(pipeline.spool) > 0
        store.down = False
        await produce(pipeline, range(400, 600))
        assert await pipeline.wait_idle(5.0)
    assert values(store) == list(range(600))
    assert "spool" in store.sources
    first_spool = store.sources.index("spool")
    last_spool = len(store.sources) - 1 - store.sources[::-1].index("spool")
    assert set(store.sources[first_spool : last_spool + 1]) == {"spool"}
    assert metric("tally_store_up") == 1
    assert files(tmp_path, "*.batch") == []


async def test_batch_whose_commit_was_not_acknowledged_is_stored_once(tmp_path: Path) -> None:
    store = MemoryStore()
    store.lose_acks = 1
    async with make(store, tmp_path) as pipeline:
        await produce(pipeline, range(200))
        assert await pipeline.wait_idle(5.0)
    assert store.duplicates == 1
    assert values(store) == list(range(200))


async def test_refused_batch_is_quarantined_and_counted(tmp_path: Path) -> None:
    store = MemoryStore()
    store.reject = lambda batch: any(s.value == "poison" for s in batch.samples)
    before = metric("tally_samples_dropped_total", {"reason": "store_rejected"})
    async with make(store, tmp_path, batch_size=10) as pipeline:
        await produce(pipeline, range(20))
        assert await pipeline.wait_idle(5.0)
        await pipeline.put(Sample("dev", "seq", utcnow(), "poison"))
        assert await pipeline.wait_idle(5.0)
        await produce(pipeline, range(20, 40))
        assert await pipeline.wait_idle(5.0)
    assert values(store) == list(range(40))
    assert metric("tally_samples_dropped_total", {"reason": "store_rejected"}) == before + 1
    assert len(files(tmp_path / QUARANTINE, "rejected-*.batch")) == 1


async def test_drop_oldest_at_the_bound_counts_what_it_drops(tmp_path: Path) -> None:
    store = MemoryStore()
    store.down = True
    before = metric("tally_samples_dropped_total", {"reason": "spool_full"})
    pipeline = make(
        store, tmp_path, queue_size=5000, batch_size=5000, max_bytes=MIB, on_full="drop_oldest"
    )
    async with pipeline:
        await produce(pipeline, range(60_000))
        await eventually(lambda: pipeline.stats.batches_spooled == 12, within=20.0)
        assert pipeline.spool.size_bytes <= MIB
        lost = pipeline.stats.samples_dropped
        assert lost > 0
        assert metric("tally_samples_dropped_total", {"reason": "spool_full"}) == before + lost
        store.down = False
        assert await pipeline.wait_idle(20.0)
    assert values(store) == list(range(lost, 60_000))


async def test_block_at_the_bound_holds_back_adapters_and_loses_nothing(tmp_path: Path) -> None:
    store = MemoryStore()
    store.down = True
    pipeline = make(store, tmp_path, queue_size=5000, batch_size=5000, max_bytes=MIB)
    full_before = metric("tally_spool_full_total")
    async with pipeline:
        producer = asyncio.create_task(produce(pipeline, range(80_000)))
        batch_bytes = 140_000  # one 5000-sample batch is about 135 kB
        await eventually(
            lambda: len(pipeline.queue) == 5000 and pipeline.spool.size_bytes > MIB - batch_bytes,
            20.0,
        )
        spooled = pipeline.spool.samples
        await asyncio.sleep(0.3)
        assert not producer.done()
        assert pipeline.spool.samples == spooled and pipeline.spool.size_bytes <= MIB
        assert metric("tally_spool_full_total") == full_before + 1
        store.down = False
        await asyncio.wait_for(producer, 30.0)
        assert await pipeline.wait_idle(30.0)
    assert pipeline.stats.samples_dropped == 0
    assert values(store) == list(range(80_000))


async def test_stop_flushes_the_queue_to_the_store(tmp_path: Path) -> None:
    store = MemoryStore()
    pipeline = make(store, tmp_path, batch_size=1000, batch_age=30.0)
    await pipeline.start()
    await produce(pipeline, range(123))
    report = await pipeline.stop()
    assert values(store) == list(range(123))
    assert (report.timed_out, report.queued_at_stop, report.batches_stored) == (False, 123, 1)
    assert report.samples_dropped == 0 and report.spool_batches == 0
    assert asyncio.all_tasks() == {asyncio.current_task()}
    with pytest.raises(PipelineClosed):
        await pipeline.put(Sample("dev", "seq", utcnow(), 0))


async def test_stop_with_store_down_spools_and_the_next_run_replays_first(
    tmp_path: Path,
) -> None:
    down = MemoryStore()
    down.down = True
    first = make(down, tmp_path, batch_age=30.0)
    await first.start()
    await produce(first, range(250))
    report = await first.stop()
    assert report.spool_samples == 250 and report.batches_spooled == 5
    assert not report.timed_out and report.samples_dropped == 0

    store = MemoryStore()
    second = make(store, tmp_path)
    scan = await second.start()
    assert scan.samples == 250
    await produce(second, range(250, 300))
    assert await second.wait_idle(5.0)
    await second.stop()
    assert values(store) == list(range(300))
    assert store.sources[:5] == ["spool"] * 5


async def test_stop_out_of_time_spools_the_write_in_flight(tmp_path: Path) -> None:
    hanging = MemoryStore(delay=60.0)
    first = make(hanging, tmp_path, batch_size=40)
    await first.start()
    await produce(first, range(100))
    await eventually(lambda: first.forwarder.in_flight is not None)
    report = await first.stop(within=0.2)
    assert report.timed_out and report.samples_dropped == 0
    assert report.spool_samples == 100
    assert asyncio.all_tasks() == {asyncio.current_task()}

    store = MemoryStore()
    async with make(store, tmp_path) as second:
        assert await second.wait_idle(5.0)
    assert values(store) == list(range(100))
