"""Pipeline benchmark: samples/s end to end from an in-process source into PostgreSQL.

Usage::

    python bench/pipeline.py [--samples 1000000] [--batch-size 5000] [--devices 1000]
                             [--points-per-device 10] [--append docs/benchmarks.md]

Uses the fleet, database set-up and count check of bench/ingest.py, then times
`stage_pipeline`: every sample goes through `Pipeline.put` (bounded queue, batcher,
forwarder) and `SampleWriter.write` with its rollups, on the default pipeline
configuration (queue 100,000, batch age 1 s, spool with fsync) unless told
otherwise. The clock stops when the last sample is committed. Then the pipeline's
own ceiling (the same run into a store that only counts what it is given) and the
spool itself: encode + write + fsync, then read + decode.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from ingest import (
    Fleet,
    StageResult,
    build_fleet,
    check_counts,
    peak_rss_mib,
    registration_batch,
    reset_samples,
)

from adapters.base import Record
from collector.batch import Batch
from collector.config import PipelineConfig, SpoolConfig
from collector.embedded.postgres import ThrowawayPostgres
from collector.pipeline import Pipeline, Spool
from collector.store.migrate import migrate
from collector.store.writer import SampleWriter


async def stage_pipeline(
    dsn: str,
    batches: Sequence[Batch],
    spool_dir: Path | None = None,
    config: PipelineConfig | None = None,
) -> StageResult:
    """Put every sample through Pipeline.put and time until the last one is committed."""
    if spool_dir is None:
        with tempfile.TemporaryDirectory(prefix="tally-bench-spool-") as scratch:
            return await stage_pipeline(dsn, batches, Path(scratch), config)
    config = config or PipelineConfig(batch_size=max(len(batches[0]), 1) if batches else 5000)
    records: list[Record] = [r for b in batches for r in b.records]
    async with SampleWriter(dsn) as writer:
        await writer.connect()
        pipeline = Pipeline(writer, spool_dir, config, SpoolConfig())
        await pipeline.start()
        started = time.perf_counter()
        put = pipeline.put
        for record in records:
            await put(record)
        report = await pipeline.stop()
        seconds = time.perf_counter() - started
    if report.spool_batches or report.samples_dropped or report.timed_out:
        raise SystemExit(f"pipeline did not store everything: {report.summary()}")
    return StageResult(
        f"Pipeline.put → SampleWriter (batch {config.batch_size})", len(records), seconds
    )


class CountingStore:
    """A store that only counts: measures what the pipeline itself costs per sample."""

    def __init__(self) -> None:
        self.samples = 0

    async def write(self, batch: Batch, source: str = "live") -> object:
        """Count the batch's samples."""
        self.samples += len(batch)
        return None


async def stage_pipeline_only(
    batches: Sequence[Batch], spool_dir: Path, config: PipelineConfig
) -> StageResult:
    """Put every sample through the pipeline into CountingStore: the pipeline's ceiling."""
    records: list[Record] = [r for b in batches for r in b.records]
    store = CountingStore()
    pipeline = Pipeline(store, spool_dir, config, SpoolConfig())
    await pipeline.start()
    started = time.perf_counter()
    put = pipeline.put
    for record in records:
        await put(record)
    await pipeline.stop()
    seconds = time.perf_counter() - started
    if store.samples != len(records):
        raise SystemExit(f"counting store got {store.samples} of {len(records)} samples")
    return StageResult("Pipeline.put → counting store (pipeline only)", len(records), seconds)


def stage_spool(batches: Sequence[Batch], spool_dir: Path) -> list[StageResult]:
    """Spool every batch (encode, write, fsync) and replay it (read, decode, remove)."""
    spool = Spool(spool_dir, max_bytes=1 << 40, fsync=True)
    spool.open()
    samples = sum(len(b) for b in batches)
    started = time.perf_counter()
    for batch in batches:
        spool.append(batch)
    appended = time.perf_counter() - started
    started = time.perf_counter()
    while (entry := spool.oldest()) is not None:
        spool.read(entry)
        spool.remove(entry)
    replayed = time.perf_counter() - started
    return [
        StageResult("spool append (encode + fsync)", samples, appended),
        StageResult("spool replay read (read + decode)", samples, replayed),
    ]


def render(args: argparse.Namespace, stages: Sequence[StageResult], rss: float) -> str:
    """Return the results as a markdown section."""
    version = getattr(args, "server_version", 0)
    lines = [
        f"### Pipeline run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"`python bench/pipeline.py --samples {args.samples} --batch-size {args.batch_size} "
        f"--devices {args.devices} --points-per-device {args.points_per_device}`  ",
        f"{platform.node()}, {platform.machine()}, {len(os.sched_getaffinity(0))} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at the end, Python "
        f"{platform.python_version()}, psycopg {psycopg.__version__}, PostgreSQL "
        f"{version // 10000}.{version % 10000}",
        "",
        "| stage | samples | seconds | samples/s |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {s.name} | {s.samples:,} | {s.seconds:.2f} | {s.rate:,.0f} |" for s in stages]
    end_to_end, ceiling = stages[0].rate, stages[1].rate
    lines += [
        "",
        f"End to end {end_to_end:,.0f} samples/s; the pipeline alone (queue, batcher, "
        f"forwarder) costs {1e6 / ceiling:.1f} µs per sample, so the store writer sets the pace. "
        f"Peak RSS {rss:.0f} MiB.",
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    defaults = PipelineConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--points-per-device", type=int, default=10)
    parser.add_argument(
        "--append", type=Path, help="append the results as a markdown section to this file"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the pipeline and spool stages, print a table, optionally append it."""
    args = parse_args(argv)
    config = PipelineConfig(batch_size=args.batch_size)
    fleet: Fleet = build_fleet(args.samples, args.batch_size, args.devices, args.points_per_device)
    server = ThrowawayPostgres(durable=True)
    server.start()
    with tempfile.TemporaryDirectory(prefix="tally-bench-spool-") as scratch:
        try:
            dsn = server.dsn
            migrate(dsn)
            with psycopg.connect(dsn) as conn:
                args.server_version = conn.info.server_version

            async def register() -> None:
                async with SampleWriter(dsn) as writer:
                    await writer.write(registration_batch(fleet))

            asyncio.run(register())
            gc.collect()
            gc.freeze()
            reset_samples(dsn)
            stages = [
                asyncio.run(stage_pipeline(dsn, fleet.batches, Path(scratch) / "live", config))
            ]
            check_counts(dsn, fleet.samples)
        finally:
            server.remove()
        only = stage_pipeline_only(fleet.batches, Path(scratch) / "only", config)
        stages.append(asyncio.run(only))
        stages += stage_spool(fleet.batches, Path(scratch) / "spool")
    section = render(args, stages, peak_rss_mib())
    print(section)
    if args.append is not None:
        with args.append.open("a", encoding="utf-8") as out:
            out.write("\n" + section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
