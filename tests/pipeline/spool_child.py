"""A collector pipeline in its own process, for the kill-and-restart test.

Usage: python -m tests.pipeline.spool_child DSN SPOOL_DIR COUNT

Registers one device, puts COUNT samples (values 0..COUNT-1) into a real Pipeline
writing through SampleWriter to DSN, prints `spooled N` once the spool holds N
samples, then keeps running until it is killed.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters.base import DeviceEvent, DeviceEventKind, DeviceInfo, PointInfo, Sample
from collector.config import PipelineConfig, SpoolConfig
from collector.pipeline import Pipeline
from collector.store.writer import SampleWriter

DEVICE = "spool-child/1"
POINT = "seq"
START = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
INFO = DeviceInfo(DEVICE, "modbus", "127.0.0.1:1", points=(PointInfo(POINT, "40001", "int32"),))


def sample(i: int) -> Sample:
    """Return the i-th sample of the deterministic sequence."""
    return Sample(DEVICE, POINT, START + timedelta(milliseconds=i), i)


async def run(dsn: str, spool_dir: Path, count: int) -> None:
    """Produce `count` samples, report when all are spooled, then wait to be killed."""
    writer = SampleWriter(dsn, connect_timeout=1.0)
    pipeline = Pipeline(
        writer,
        spool_dir,
        PipelineConfig(queue_size=2000, batch_size=500, batch_age=0.05),
        SpoolConfig(replay_interval=0.2),
    )
    await pipeline.start()
    await pipeline.put(DeviceEvent(DeviceEventKind.REGISTERED, DEVICE, START, info=INFO))
    for i in range(count):
        await pipeline.put(sample(i))
    for _ in range(600):
        if pipeline.spool.samples >= count:
            break
        await asyncio.sleep(0.05)
    print(f"spooled {pipeline.spool.samples}", flush=True)
    await asyncio.sleep(3600)


def main(argv: list[str]) -> int:
    """Parse DSN SPOOL_DIR COUNT and run."""
    dsn, spool_dir, count = argv
    asyncio.run(run(dsn, Path(spool_dir), int(count)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
