"""The pipeline against a real PostgreSQL that stops, restarts, and a collector that is killed."""

import asyncio
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from adapters.base import DeviceEvent, DeviceEventKind, DeviceInfo, PointInfo, Sample
from collector.batch import Batch
from collector.config import PipelineConfig, SpoolConfig
from collector.embedded.postgres import ThrowawayPostgres
from collector.metrics import REGISTRY
from collector.pipeline import Pipeline, Spool
from collector.store.migrate import migrate
from collector.store.writer import SampleWriter
from tests.pipeline import spool_child
from tests.pipeline.memstore import eventually

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
START = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
DEVICE = "outage/1"
INFO = DeviceInfo(DEVICE, "modbus", "127.0.0.1:1", points=(PointInfo("seq", "40001", "int32"),))


def stored(dsn: str) -> tuple[int, int, int, list[int]]:
    """Return sample rows, distinct values, the rollup's count and the sorted values."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT value),"
            " (SELECT coalesce(sum(samples), 0) FROM device_activity) FROM sample"
        ).fetchone()
        values = [int(v) for (v,) in conn.execute("SELECT value FROM sample ORDER BY value")]
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), values


def spool_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.batch"))


async def test_postgres_stops_and_restarts_while_samples_flow(
    private_postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    pg = private_postgres
    migrate(pg.dsn)
    count = 20_000
    spool_dir = tmp_path / "spool"
    writer = SampleWriter(pg.dsn, connect_timeout=1.0)
    pipeline = Pipeline(
        writer,
        spool_dir,
        PipelineConfig(queue_size=2000, batch_size=500, batch_age=0.05, shutdown_timeout=30),
        SpoolConfig(replay_interval=0.2),
    )
    await pipeline.start()
    await pipeline.put(DeviceEvent(DeviceEventKind.REGISTERED, DEVICE, START, info=INFO))

    async def produce() -> None:
        for i in range(count):
            await pipeline.put(Sample(DEVICE, "seq", START + timedelta(milliseconds=i), i))
            if i % 100 == 0:
                await asyncio.sleep(0.01)  # about 2 s of traffic in all

    producer = asyncio.create_task(produce())
    try:
        await eventually(lambda: pipeline.stats.batches_stored >= 3, within=20.0)
        await asyncio.to_thread(pg.stop, "immediate")
        await eventually(lambda: pipeline.stats.batches_spooled >= 3, within=20.0)
        assert not producer.done(), "samples should still be flowing while the store is down"
        await asyncio.to_thread(pg.start)
        await asyncio.wait_for(producer, 60.0)
        assert await pipeline.wait_idle(60.0), "the spool did not drain after the restart"
    finally:
        producer.cancel()
        report = await pipeline.stop()
        await writer.close()
    assert report.samples_dropped == 0
    rows, distinct, rolled_up, values = stored(pg.dsn)
    assert (rows, distinct, rolled_up) == (count, count, count)
    assert values == list(range(count))
    assert pipeline.stats.batches_replayed >= 3
    assert spool_files(spool_dir) == []
    with psycopg.connect(pg.dsn) as conn:
        sources: dict[str, int] = dict(
            conn.execute("SELECT source, count(*) FROM ingest_log GROUP BY source").fetchall()
        )
    assert sources.get("spool", 0) >= 3 and sources.get("live", 0) >= 3


async def test_killed_collector_leaves_a_spool_the_next_one_replays(
    private_postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    pg = private_postgres
    migrate(pg.dsn)
    await asyncio.to_thread(pg.stop)
    count = 5_000
    spool_dir = tmp_path / "spool"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tests.pipeline.spool_child", pg.dsn, str(spool_dir), str(count)),
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), 60.0)
        assert line.decode().strip() == f"spooled {count}", f"child said {line!r}"
        child.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(child.wait(), 10.0) == -signal.SIGKILL
    finally:
        if child.returncode is None:
            child.kill()
        _, errors = await asyncio.wait_for(child.communicate(), 10.0)
    assert spool_files(spool_dir), f"nothing spooled; child stderr:\n{errors.decode()}"

    await asyncio.to_thread(pg.start)
    started = time.monotonic()
    async with SampleWriter(pg.dsn) as writer:
        pipeline = Pipeline(writer, spool_dir, spool=SpoolConfig(replay_interval=0.2))
        scan = await pipeline.start()
        assert scan.samples == count and scan.quarantined == 0
        assert await pipeline.wait_idle(60.0)
        report = await pipeline.stop()
    assert report.spool_batches == 0 and report.samples_dropped == 0
    rows, distinct, rolled_up, values = stored(pg.dsn)
    assert (rows, distinct, rolled_up) == (count, count, count)
    assert values == [spool_child.sample(i).value for i in range(count)]
    assert spool_files(spool_dir) == []
    assert time.monotonic() - started < 60


async def test_replayed_batch_that_had_committed_is_stored_once(
    database_url: str, tmp_path: Path
) -> None:
    register = Batch((DeviceEvent(DeviceEventKind.REGISTERED, DEVICE, START, info=INFO),))
    batch = Batch(tuple(Sample(DEVICE, "seq", START + timedelta(seconds=i), i) for i in range(50)))
    spool = Spool(tmp_path, max_bytes=1 << 30)
    spool.open()
    async with SampleWriter(database_url) as writer:
        await writer.write(register)
        await writer.write(batch)  # committed; pretend the acknowledgement was lost
        spool.append(batch)
        duplicates = REGISTRY.get_sample_value("tally_batches_duplicate_total") or 0.0
        async with Pipeline(writer, tmp_path, spool=SpoolConfig(replay_interval=0.2)) as pipeline:
            assert await pipeline.wait_idle(20.0)
    assert REGISTRY.get_sample_value("tally_batches_duplicate_total") == duplicates + 1
    rows, distinct, rolled_up, values = stored(database_url)
    assert (rows, distinct, rolled_up) == (50, 50, 50)
    assert values == list(range(50))
    assert spool_files(tmp_path) == []
