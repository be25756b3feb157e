"""Ingest benchmark: the store writer against raw binary COPY of the same rows.

Usage::

    python bench/ingest.py [--samples 2000000] [--batch-size 5000] [--devices 1000]
                           [--points-per-device 10] [--group 10 --group 20]
                           [--append docs/benchmarks.md] [--profile writer.prof]

Starts its own durable ThrowawayPostgres (fsync on, synchronous commit), migrates
it, registers the fleet, then measures one stage per function, each on emptied
tables and checked afterwards (sample count and rollup sums):

- ``stage_raw_copy``: binary COPY of the pre-built sample rows into ``sample``, one
  transaction per batch, formatted like the writer formats them: the ceiling;
- ``stage_writer``: ``SampleWriter.write`` on the same samples in the same batches,
  with the ingest log, point resolution and every rollup included;
- ``stage_writer_grouped``: ``SampleWriter.write_many`` on ``--group`` batches per
  transaction (group commit), once per ``--group`` given.

The fleet is polled once a second per point, so a batch holds about one sample per
point, and the run starts at 23:58:20 UTC so it crosses an hour and a day boundary.
Values are 80 % float, 10 % bool, 8 % int, 2 % str; qualities 95 % good, 4 %
uncertain, 1 % bad. The input is generated before timing and frozen out of the
garbage collector (``gc.freeze``): a running collector holds at most a queue of
records, not the whole input of a benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from adapters.base import (
    DeviceEvent,
    DeviceEventKind,
    DeviceInfo,
    PointInfo,
    Quality,
    Record,
    Sample,
    Value,
)
from collector.batch import Batch
from collector.config import PipelineConfig
from collector.embedded.postgres import ThrowawayPostgres
from collector.store.copyrows import write_rows
from collector.store.migrate import migrate
from collector.store.rollup import SAMPLE_COLUMNS, SAMPLE_TYPES
from collector.store.writer import SampleWriter

START = datetime(2024, 3, 31, 23, 58, 20, tzinfo=UTC)
TARGET_SAMPLES_PER_SECOND = 250_000

RawRow = tuple[datetime, int, Value, str | None, int, bool]


@dataclass(frozen=True)
class Fleet:
    """The simulated devices and the samples they produce."""

    devices: list[DeviceInfo]
    batches: list[Batch]

    @property
    def samples(self) -> int:
        """Return the number of samples over all batches."""
        return sum(len(b) for b in self.batches)


@dataclass(frozen=True)
class StageResult:
    """One measured stage."""

    name: str
    samples: int
    seconds: float

    @property
    def rate(self) -> float:
        """Return samples per second."""
        return self.samples / self.seconds


def _value(i: int) -> tuple[Value, Quality]:
    kind = i % 50
    value: Value
    if kind < 40:
        value = (i % 1000) * 0.25
    elif kind < 45:
        value = bool(i & 1)
    elif kind < 49:
        value = i % 65536
    else:
        value = f"state-{i % 7}"
    q = i % 100
    quality = Quality.GOOD if q < 95 else Quality.UNCERTAIN if q < 99 else Quality.BAD
    return value, quality


def build_fleet(samples: int, batch_size: int, devices: int, points_per_device: int) -> Fleet:
    """Generate the fleet and its samples, cut into batches (untimed)."""
    infos = [
        DeviceInfo(
            key=f"bench-{d:05d}",
            protocol="modbus",
            endpoint=f"10.0.{d // 250}.{d % 250}:502",
            device_type=f"type-{d % 7}",
            industry="C3511",
            points=tuple(
                PointInfo(key=f"p{k}", address=f"40{k:03d}", data_type="float32")
                for k in range(points_per_device)
            ),
        )
        for d in range(devices)
    ]
    keys = [(info.key, point.key) for info in infos for point in info.points]
    fleet_size = len(keys)
    step = timedelta(seconds=1) / fleet_size
    records: list[Record] = []
    for i in range(samples):
        device, point = keys[i % fleet_size]
        value, quality = _value(i)
        records.append(Sample(device, point, START + step * i, value, quality))
    batches = [
        Batch(tuple(records[i : i + batch_size])) for i in range(0, len(records), batch_size)
    ]
    return Fleet(infos, batches)


def registration_batch(fleet: Fleet) -> Batch:
    """Return one batch registering every device of the fleet with its points."""
    return Batch(
        tuple(DeviceEvent(DeviceEventKind.REGISTERED, d.key, START, d) for d in fleet.devices)
    )


def raw_rows(dsn: str, fleet: Fleet) -> list[list[RawRow]]:
    """Build the rows raw COPY writes: the writer's rows, with point ids looked up once."""
    with psycopg.connect(dsn) as conn:
        ids = {
            (d, p): int(i)
            for d, p, i in conn.execute(
                "SELECT d.key, p.key, p.id FROM point p JOIN device d ON d.id = p.device_id"
            )
        }
    out: list[list[RawRow]] = []
    for batch in fleet.batches:
        rows: list[RawRow] = []
        for s in batch.samples:
            text = s.value if isinstance(s.value, str) else None
            number = None if text is not None else s.value
            rows.append((s.ts, ids[s.device, s.point], number, text, s.quality, s.live))
        out.append(rows)
    return out


async def stage_raw_copy(dsn: str, batches: Sequence[list[RawRow]]) -> StageResult:
    """Binary COPY of pre-built rows, one transaction per batch: the baseline."""
    statement = f"COPY sample ({', '.join(SAMPLE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        started = time.perf_counter()
        for rows in batches:
            async with conn.transaction():
                cur = conn.cursor()
                async with cur.copy(statement) as copy:
                    copy.set_types(list(SAMPLE_TYPES))
                    # The same C-level row formatting as the writer: a fair ceiling.
                    await write_rows(copy, rows)
        seconds = time.perf_counter() - started
    return StageResult("raw binary COPY", sum(map(len, batches)), seconds)


async def stage_writer(dsn: str, batches: Sequence[Batch]) -> StageResult:
    """SampleWriter.write on every batch: one transaction per batch, rollups included."""
    async with SampleWriter(dsn) as writer:
        await writer.connect()
        stored = 0
        started = time.perf_counter()
        for batch in batches:
            result = await writer.write(batch)
            stored += result.samples_stored
        seconds = time.perf_counter() - started
    return StageResult("SampleWriter.write, 1 batch per transaction", stored, seconds)


async def stage_writer_grouped(dsn: str, batches: Sequence[Batch], group: int) -> StageResult:
    """SampleWriter.write_many on `group` batches at a time: a backlog, group-committed."""
    async with SampleWriter(dsn) as writer:
        await writer.connect()
        stored = 0
        started = time.perf_counter()
        for i in range(0, len(batches), group):
            results = await writer.write_many(batches[i : i + group])
            stored += sum(r.samples_stored for r in results)
        seconds = time.perf_counter() - started
    return StageResult(f"SampleWriter.write_many, {group} batches per transaction", stored, seconds)


def reset_samples(dsn: str) -> None:
    """Empty the tables the stages fill and checkpoint, so each stage starts alike."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE sample, device_activity, point_activity, ingest_log")
        conn.execute("UPDATE point SET first_seen = NULL, last_seen = NULL, last_value = NULL")
        conn.execute("VACUUM ANALYZE point")
        conn.execute("CHECKPOINT")


def check_counts(dsn: str, expected: int) -> None:
    """Fail loudly unless the writer stored every sample and counted it in the rollups."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM sample), (SELECT sum(samples) FROM device_activity),"
            " (SELECT sum(samples) FROM point_activity)"
        ).fetchone()
    assert row is not None
    if tuple(int(v or 0) for v in row) != (expected, expected, expected):
        raise SystemExit(f"count check failed: sample/device/point activity = {row}, {expected=}")


def peak_rss_mib() -> float:
    """Return this process's peak resident set size in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def render(args: argparse.Namespace, stages: Sequence[StageResult], rss: float) -> str:
    """Return the results as a markdown section."""
    baseline = stages[0].rate
    lines = [
        f"### Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"`python bench/ingest.py --samples {args.samples} --batch-size {args.batch_size} "
        f"--devices {args.devices} --points-per-device {args.points_per_device}"
        + "".join(f" --group {g}" for g in args.group)
        + "`  ",
        f"{platform.node()}, {platform.machine()}, {_cpus()} CPUs, Python "
        f"{platform.python_version()}, psycopg {psycopg.__version__} "
        f"({psycopg.pq.__impl__}), PostgreSQL {_server_version(args)}",
        "",
        "| stage | samples | seconds | samples/s | vs raw COPY |",
        "|---|---:|---:|---:|---:|",
    ]
    for s in stages:
        ratio = s.rate / baseline
        lines.append(
            f"| {s.name} | {s.samples:,} | {s.seconds:.2f} | {s.rate:,.0f} | {ratio:.2f} |"
        )
    lines.append("")
    for s in stages[1:]:
        verdict = "meets" if s.rate >= TARGET_SAMPLES_PER_SECOND else "misses"
        lines.append(f"- {s.name}: {verdict} the {TARGET_SAMPLES_PER_SECOND:,} samples/s target.")
    lines += [f"- Peak RSS of the benchmark process: {rss:.0f} MiB.", ""]
    return "\n".join(lines)


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def _server_version(args: argparse.Namespace) -> str:
    version = getattr(args, "server_version", 0)
    return f"{version // 10000}.{version % 10000}" if version else "?"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    default_batch = PipelineConfig.model_fields["batch_size"].default
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2_000_000)
    parser.add_argument("--batch-size", type=int, default=default_batch)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--points-per-device", type=int, default=10)
    parser.add_argument(
        "--group",
        type=int,
        action="append",
        help="batches per transaction of a write_many stage; repeat for several stages "
        "(default: 10 and 20; 0 alone skips them)",
    )
    parser.add_argument(
        "--append", type=Path, help="append the results as a markdown section to this file"
    )
    parser.add_argument(
        "--profile", type=Path, help="write a cProfile of the writer stage to this file"
    )
    parser.add_argument(
        "--pipeline",
        action="store_true",
        help="also time the same samples end to end through Pipeline.put (bench/pipeline.py)",
    )
    args = parser.parse_args(argv)
    args.group = [g for g in (args.group or [10, 20]) if g > 0]
    return args


def _run(coro_factory: Callable[[], Any], profile: Path | None) -> StageResult:
    if profile is None:
        result: StageResult = asyncio.run(coro_factory())
        return result
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    result = asyncio.run(coro_factory())
    profiler.disable()
    profiler.dump_stats(profile)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run every stage, print a table, optionally append it to a markdown file."""
    args = parse_args(argv)
    fleet = build_fleet(args.samples, args.batch_size, args.devices, args.points_per_device)
    server = ThrowawayPostgres(durable=True)
    server.start()
    try:
        dsn = server.dsn
        migrate(dsn)
        with psycopg.connect(dsn) as conn:
            args.server_version = conn.info.server_version

        async def register() -> None:
            async with SampleWriter(dsn) as writer:
                await writer.write(registration_batch(fleet))

        asyncio.run(register())
        rows = raw_rows(dsn, fleet)
        gc.collect()
        gc.freeze()
        stages: list[StageResult] = []
        reset_samples(dsn)
        stages.append(asyncio.run(stage_raw_copy(dsn, rows)))
        del rows
        if args.pipeline:
            from pipeline import stage_pipeline  # bench/pipeline.py

            reset_samples(dsn)
            stages.append(asyncio.run(stage_pipeline(dsn, fleet.batches)))
            check_counts(dsn, fleet.samples)
        reset_samples(dsn)
        stages.append(_run(lambda: stage_writer(dsn, fleet.batches), args.profile))
        check_counts(dsn, fleet.samples)
        for group in args.group:
            reset_samples(dsn)
            stages.append(asyncio.run(stage_writer_grouped(dsn, fleet.batches, group)))
            check_counts(dsn, fleet.samples)
    finally:
        server.remove()
    section = render(args, stages, peak_rss_mib())
    print(section)
    if args.append is not None:
        with args.append.open("a", encoding="utf-8") as out:
            out.write("\n" + section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
