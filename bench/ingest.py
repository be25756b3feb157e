"""Ingest benchmark: the store writer against raw binary COPY of the same rows.

Usage::

    python bench/ingest.py [--samples 2000000] [--batch-size 5000] [--devices 1000]
                           [--points-per-device 10] [--group 10] [--chunk 20]
                           [--pipeline] [--latest-interval 5]
                           [--append docs/benchmarks.md] [--profile writer.prof]

Starts its own durable ThrowawayPostgres (fsync on, synchronous commit), migrates
it, registers the fleet, then measures pairs of stages (``stage_pair``), each pair on
emptied tables and checked afterwards:

- raw binary COPY of the pre-built sample rows into a copy of the ``sample`` table,
  one transaction per batch, formatted by the writer's C-level row formatting: the
  ceiling;
- the writer on the same samples in the same batches, with the ingest log, point
  resolution and every rollup, and its final latest-value flush inside the clock:
  ``SampleWriter.write`` (one batch per transaction), then ``write_many`` with
  ``--group`` batches per transaction, once per ``--group`` given.

The two stages of a pair take turns every ``--chunk`` batches and each is timed on its
own, so a burst of load from other processes on the machine (or a checkpoint) falls
on both alike; the ratio is the writer's samples/s over its partner's. With
``--pipeline``, the same samples also go end to end through ``Pipeline.put``
(bench/pipeline.py's ``stage_pipeline``), compared with the first raw COPY.

The checks are exact, against an oracle computed from the generated samples: the
``sample`` row count, every ``device_activity`` row (samples, good samples, first and
last time stamps per device and hour), every ``point_activity.good_hours`` bit, and
each point's ``last_seen`` after the writer's flush.

The fleet is polled once a second per point, so a batch holds about one sample per
point (with 10,000 devices × 10 points, each batch touches points no batch before it
did), and the run is centred on midnight UTC so it crosses an hour and a day boundary.
Values are 80 % float, 10 % bool, 8 % int, 2 % str; qualities 95 % good, 4 %
uncertain, 1 % bad. The input is generated before timing and frozen out of the
garbage collector (``gc.freeze``): a running collector holds at most a queue of
records, not the whole input of a benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
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
from collector.store.copyrows import write_rows_sync
from collector.store.migrate import migrate
from collector.store.rollup import SAMPLE_COLUMNS, SAMPLE_TYPES
from collector.store.writer import LATEST_INTERVAL, SampleWriter

MIDNIGHT = datetime(2024, 4, 1, tzinfo=UTC)
START = datetime(2024, 3, 31, 23, 58, 20, tzinfo=UTC)  # the default run: 200 s around midnight
TARGET_SAMPLES_PER_SECOND = 250_000
DEFAULT_CHUNK = 20

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
    load: float | None = None
    """The 1-minute load average when the stage ended."""
    baseline: float | None = None
    """Samples/s of the raw COPY this stage is compared with (None: the first raw stage)."""

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
    start = MIDNIGHT - step * (samples // 2)
    records: list[Record] = []
    for i in range(samples):
        device, point = keys[i % fleet_size]
        value, quality = _value(i)
        records.append(Sample(device, point, start + step * i, value, quality))
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


RAW_TABLE = "sample_raw"


def raw_copy(conn: psycopg.Connection[Any], batches: Sequence[list[RawRow]]) -> None:
    """Binary COPY of pre-built rows into RAW_TABLE, one transaction per batch.

    Blocking on purpose: while it runs, nothing of the writer's (its flush timer) runs.
    """
    statement = f"COPY {RAW_TABLE} ({', '.join(SAMPLE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
    for rows in batches:
        with conn.transaction(), conn.cursor().copy(statement) as copy:
            copy.set_types(list(SAMPLE_TYPES))
            write_rows_sync(copy, rows)  # the writer's C-level row formatting: a fair ceiling


async def stage_pair(
    dsn: str,
    batches: Sequence[Batch],
    rows: Sequence[list[RawRow]],
    *,
    group: int,
    chunk: int,
    latest_interval: float = LATEST_INTERVAL,
) -> tuple[StageResult, StageResult]:
    """Raw COPY and the writer, alternating every `chunk` batches; each timed on its own.

    Alternating shares the machine's load (other processes, checkpoints) between the two
    fairly. The writer stage is `write` per batch (group 1) or `write_many` of `group`
    batches; its final latest-value flush is inside its clock.
    """
    raw_seconds = writer_seconds = 0.0
    stored = 0
    with psycopg.connect(dsn, autocommit=True) as raw_conn:
        async with SampleWriter(dsn, latest_interval=latest_interval) as writer:
            await writer.connect()
            for start in range(0, len(batches), chunk):
                started = time.perf_counter()
                raw_copy(raw_conn, rows[start : start + chunk])
                raw_seconds += time.perf_counter() - started
                started = time.perf_counter()
                mine = batches[start : start + chunk]
                for i in range(0, len(mine), group):
                    if group == 1:
                        stored += (await writer.write(mine[i])).samples_stored
                    else:
                        results = await writer.write_many(mine[i : i + group])
                        stored += sum(r.samples_stored for r in results)
                writer_seconds += time.perf_counter() - started
            started = time.perf_counter()
            await writer.flush()  # the last latest values are part of the work
            writer_seconds += time.perf_counter() - started
    raw = StageResult(f"raw binary COPY (paired with the next row, {chunk} batches at a time)",
                      sum(map(len, rows)), raw_seconds)  # fmt: skip
    name = (
        "SampleWriter.write, 1 batch per transaction"
        if group == 1
        else f"SampleWriter.write_many, {group} batches per transaction"
    )
    return raw, StageResult(name, stored, writer_seconds, baseline=raw.rate)


def reset_samples(dsn: str) -> None:
    """Empty the tables the stages fill and checkpoint, so each stage starts alike."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {RAW_TABLE} (LIKE sample INCLUDING ALL)")
        conn.execute(f"TRUNCATE sample, {RAW_TABLE}, device_activity, point_activity, ingest_log")
        conn.execute(
            "UPDATE point SET first_seen = NULL, last_seen = NULL, last_value = NULL,"
            " last_value_text = NULL, last_quality = NULL"
        )
        conn.execute("UPDATE device SET first_seen = NULL, last_seen = NULL")
        conn.execute("VACUUM ANALYZE point, device")
        conn.execute("CHECKPOINT")


def check_counts(dsn: str, expected: int) -> None:
    """Fail loudly unless every sample is stored and counted in device_activity."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM sample), (SELECT sum(samples) FROM device_activity)"
        ).fetchone()
    assert row is not None
    if tuple(int(v or 0) for v in row) != (expected, expected):
        raise SystemExit(f"count check failed: sample/device_activity = {row}, {expected=}")


@dataclass(frozen=True)
class Oracle:
    """What the rollups must hold after the fleet's samples, computed in Python."""

    device_hours: dict[tuple[str, datetime], tuple[int, int, datetime, datetime]]
    good_hours: dict[tuple[str, str, date], int]
    last_seen: dict[tuple[str, str], datetime]

    @classmethod
    def of(cls, fleet: Fleet) -> Oracle:
        """Count per (device, hour), OR the good-hour bits, find each point's last sample."""
        device_hours: dict[tuple[str, datetime], list[Any]] = {}
        good_hours: dict[tuple[str, str, date], int] = {}
        last_seen: dict[tuple[str, str], datetime] = {}
        for batch in fleet.batches:
            for s in batch.samples:
                hour = s.ts.replace(minute=0, second=0, microsecond=0)
                good = s.quality == Quality.GOOD
                row = device_hours.get((s.device, hour))
                if row is None:
                    device_hours[s.device, hour] = [1, int(good), s.ts, s.ts]
                else:
                    row[0] += 1
                    row[1] += good
                    row[2] = min(row[2], s.ts)
                    row[3] = max(row[3], s.ts)
                key = (s.device, s.point, s.ts.date())
                good_hours[key] = good_hours.get(key, 0) | (1 << s.ts.hour if good else 0)
                if last_seen.get((s.device, s.point), s.ts) <= s.ts:
                    last_seen[s.device, s.point] = s.ts
        return cls(
            {k: (v[0], v[1], v[2], v[3]) for k, v in device_hours.items()},
            {k: v for k, v in good_hours.items() if v},
            last_seen,
        )

    def check(self, dsn: str) -> None:
        """Fail loudly unless the database holds exactly what the oracle says."""
        with psycopg.connect(dsn) as conn:
            device_hours = {
                (d, h): (int(n), int(g), f, la)
                for d, h, n, g, f, la in conn.execute(
                    "SELECT d.key, a.hour, a.samples, a.good_samples, a.first_ts, a.last_ts"
                    " FROM device_activity a JOIN device d ON d.id = a.device_id"
                )
            }
            good_hours = {
                (d, p, day): int(bits)
                for d, p, day, bits in conn.execute(
                    "SELECT d.key, p.key, a.day, a.good_hours FROM point_activity a"
                    " JOIN point p ON p.id = a.point_id JOIN device d ON d.id = p.device_id"
                    " WHERE a.good_hours <> 0"
                )
            }
            last_seen = {
                (d, p): ts
                for d, p, ts in conn.execute(
                    "SELECT d.key, p.key, p.last_seen FROM point p"
                    " JOIN device d ON d.id = p.device_id WHERE p.last_seen IS NOT NULL"
                )
            }
        _compare("device_activity", device_hours, self.device_hours)
        _compare("point_activity.good_hours", good_hours, self.good_hours)
        _compare("point.last_seen", last_seen, self.last_seen)


def _compare(name: str, got: Mapping[Any, Any], want: Mapping[Any, Any]) -> None:
    if got == want:
        return
    wrong = sorted(k for k in want.keys() | got.keys() if got.get(k) != want.get(k))
    raise SystemExit(
        f"{name} check failed for {len(wrong)} keys, e.g. {wrong[:3]}: stored "
        f"{[got.get(k) for k in wrong[:3]]}, expected {[want.get(k) for k in wrong[:3]]}"
    )


def peak_rss_mib() -> float:
    """Return this process's peak resident set size in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def render(args: argparse.Namespace, stages: Sequence[StageResult], rss: float) -> str:
    """Return the results as a markdown section."""
    lines = [
        f"### Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"`python bench/ingest.py --samples {args.samples} --batch-size {args.batch_size} "
        f"--devices {args.devices} --points-per-device {args.points_per_device}"
        + "".join(f" --group {g}" for g in args.group)
        + (f" --chunk {args.chunk}" if args.chunk != DEFAULT_CHUNK else "")
        + (" --pipeline" if args.pipeline else "")
        + "`  ",
        f"{platform.node()}, {platform.machine()}, {_cpus()} CPUs, Python "
        f"{platform.python_version()}, psycopg {psycopg.__version__} "
        f"({psycopg.pq.__impl__}), PostgreSQL {_server_version(args)}",
        "",
        f"Latest-value flush interval {args.latest_interval:g} s; raw COPY and each writer "
        f"stage alternate every {args.chunk} batches.",
        "",
        "| stage | samples | seconds | samples/s | vs raw COPY | load at end |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in stages:
        ratio = s.rate / (s.baseline or s.rate)
        load = f"{s.load:.2f}" if s.load is not None else "?"
        lines.append(
            f"| {s.name} | {s.samples:,} | {s.seconds:.2f} | {s.rate:,.0f} | {ratio:.2f} | {load} |"
        )
    lines.append("")
    for s in stages:
        if s.baseline is None:
            continue
        verdict = "meets" if s.rate >= TARGET_SAMPLES_PER_SECOND else "misses"
        lines.append(f"- {s.name}: {verdict} the {TARGET_SAMPLES_PER_SECOND:,} samples/s target.")
    lines += [f"- Peak RSS of the benchmark process: {rss:.0f} MiB.", ""]
    return "\n".join(lines)


def _cpus() -> int:
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
        "(default: 10; 0 alone skips them)",
    )
    parser.add_argument(
        "--chunk",
        type=int,
        default=DEFAULT_CHUNK,
        help="batches raw COPY and the writer take in turn (they alternate, sharing the load)",
    )
    parser.add_argument(
        "--latest-interval",
        type=float,
        default=LATEST_INTERVAL,
        help="seconds between the writer's latest-value flushes",
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
    args.group = [g for g in (args.group or [10]) if g > 0]
    return args


def _run(
    stage: Callable[[], Coroutine[Any, Any, tuple[StageResult, StageResult]]],
    profile: Path | None,
) -> tuple[StageResult, StageResult]:
    if profile is None:
        return asyncio.run(stage())
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    result = asyncio.run(stage())
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
        oracle = Oracle.of(fleet)
        gc.collect()
        gc.freeze()
        stages: list[StageResult] = []

        def checked(results: Sequence[StageResult]) -> None:
            load = os.getloadavg()[0]
            stages.extend(replace(r, load=load) for r in results)
            check_counts(dsn, fleet.samples)
            oracle.check(dsn)

        for group in [1, *args.group]:
            reset_samples(dsn)
            pair = partial(
                stage_pair,
                dsn,
                fleet.batches,
                rows,
                group=group,
                chunk=args.chunk,
                latest_interval=args.latest_interval,
            )
            checked(_run(pair, args.profile if group == 1 else None))
        if args.pipeline:
            from pipeline import stage_pipeline  # bench/pipeline.py

            reset_samples(dsn)
            result = asyncio.run(stage_pipeline(dsn, fleet.batches))
            checked([replace(result, baseline=stages[0].rate)])
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
