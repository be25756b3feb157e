"""OPC UA through the whole collector: N simulated devices x M variables changing every second.

The simulated servers run in their own process (`python -m simulators --fleet ...`), the
collector (`CollectorService`: OPC UA adapter → queue → batcher → writer) runs in this
one, and it stores into a durable throwaway PostgreSQL started here. After a warm-up,
value changes stored per second are read from the ingest log (every committed sample,
exactly once) and the CPU of each side is measured separately: the collector process with
`time.process_time()`, the simulator and PostgreSQL from /proc. Prints one JSON object and
a summary.

    .venv/bin/python bench/opcua.py --devices 500 --points 10 --duration 30
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import yaml
from pydantic import BaseModel

from adapters.opcua.adapter import OpcUaAdapters
from adapters.opcua.config import OpcUaSource
from collector.config import parse_config
from collector.embedded.postgres import ThrowawayPostgres
from collector.service import CollectorService
from collector.store.migrate import migrate
from simulators.fleet import device_configs, read_manifest

ROOT = Path(__file__).resolve().parents[1]
TARGET_PER_CORE = 20_000
"""Value changes stored per second per collector core (= at most 50 CPU-s per million)."""
SIMULATOR_START_TIMEOUT = 300.0


def fleet_spec(devices: int, points: int, servers: int, interval: float) -> dict[str, Any]:
    """Devices over `servers` OPC UA servers; every variable is a float that moves each update."""
    point_map = [
        {
            "key": f"v{i}",
            "data_type": "float64" if i % 2 else "float32",
            "signal": {"kind": "sine", "base": 100, "amplitude": 20, "period": 30 + i},
        }
        for i in range(points)
    ]
    per_server = -(-devices // servers)
    return {
        "version": 1,
        "name": "bench-opcua",
        "protocols": {"opcua": {"publishing_interval": interval}},
        "templates": {
            "dev": {
                "protocol": "opcua",
                "type": "bench",
                "industry": "C2614",
                "update_interval": interval,
                "points": point_map,
            }
        },
        "devices": [
            {"id": f"dev-{n:05d}", "template": "dev", "server": f"s{n // per_server}"}
            for n in range(devices)
        ],
    }


def _ticks(pid: int) -> tuple[int, int]:
    """(own user+system, reaped children's user+system) clock ticks of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of another process (Linux /proc)."""
    own, _ = _ticks(pid)
    return own / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds(cluster: ThrowawayPostgres) -> float:
    """CPU seconds of a cluster: the postmaster, its live children and the ones it reaped."""
    postmaster = int((cluster.datadir / "postmaster.pid").read_text().split()[0])
    own, reaped = _ticks(postmaster)
    total = own + reaped
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[1]) == postmaster:
                total += int(stat[11]) + int(stat[12])
        except (OSError, IndexError, ValueError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def stored(dsn: str) -> tuple[int, int]:
    """Return (samples, batches) committed so far, from the ingest log."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT coalesce(sum(samples), 0), count(*) FROM ingest_log").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def changes_in(dsn: str, start: datetime, end: datetime, interval: float) -> tuple[int, int, int]:
    """Return (stored, gaps, late): samples whose source time is in [start, end) and the gaps.

    Counted by the simulator's source time once everything is flushed, so a backlog from
    before the window does not count in it. A gap between consecutive source times of a
    point longer than 1.5 intervals is an update the simulator skipped (it fell behind and
    never produced that change): what it could not produce, not what the collector lost.
    """
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*), count(gap), count(gap) FILTER (WHERE gap > %s) FROM ("
            " SELECT extract(epoch FROM ts - lag(ts) OVER (PARTITION BY point_id ORDER BY ts))"
            " AS gap FROM sample WHERE ts >= %s AND ts < %s) AS g",
            (1.5 * interval, start, end),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def bad_samples(dsn: str) -> int:
    """Count the stored samples that are not of good quality."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM sample WHERE quality <> 0").fetchone()
    assert row is not None
    return int(row[0])


def _with_queue(source: BaseModel, queue_size: int) -> BaseModel:
    """Let the server queue a few changes per item, so publishing jitter loses none."""
    assert isinstance(source, OpcUaSource)
    return source.model_copy(
        update={"data": source.data.model_copy(update={"queue_size": queue_size})}
    )


async def measure(
    manifest_path: Path,
    sim_pid: int,
    cluster: ThrowawayPostgres,
    data_dir: Path,
    *,
    warmup: float,
    duration: float,
    queue_size: int = 4,
    profile: Path | None = None,
) -> dict[str, Any]:
    """Run the collector on the served fleet; measure over `duration` after `warmup`."""
    manifest = read_manifest(manifest_path)
    expected_points = sum(len(d.points) for d in manifest.devices)
    config = parse_config(
        {
            "version": 1,
            "site": "bench",
            "data_dir": str(data_dir),
            "store": {"dsn": cluster.dsn},
            "logging": {"level": "WARNING"},
        },
        "<bench>",
        environ={},
    )
    started = time.monotonic()
    sources = [_with_queue(s, queue_size) for s in device_configs(manifest)]
    async with CollectorService(config, sources) as service:
        [opcua] = [a for a in service.adapters if isinstance(a, OpcUaAdapters)]
        for adapter in opcua.adapters:
            if not await adapter.wait_ready(300):
                raise SystemExit(f"{adapter.source.endpoint}: no session: {adapter.last_error}")
        connected_after = time.monotonic() - started
        await asyncio.sleep(warmup)
        s0, b0 = await asyncio.to_thread(stored, cluster.dsn)
        t0 = datetime.now(UTC)
        c0, w0 = time.process_time(), time.monotonic()
        sim0, pg0 = process_cpu_seconds(sim_pid), postgres_cpu_seconds(cluster)
        profiler = cProfile.Profile() if profile is not None else None
        if profiler is not None:
            profiler.enable()
        await asyncio.sleep(duration)
        if profiler is not None and profile is not None:
            profiler.disable()
            profiler.dump_stats(profile)
        s1, b1 = await asyncio.to_thread(stored, cluster.dsn)
        t1 = datetime.now(UTC)
        c1, w1 = time.process_time(), time.monotonic()
        sim1, pg1 = process_cpu_seconds(sim_pid), postgres_cpu_seconds(cluster)
        queue_depth = len(service.pipeline.queue)
        sessions = [a.sessions for a in opcua.adapters]
        rebuilds = sum(a.rebuilds for a in opcua.adapters)
    report = service.report
    bad = await asyncio.to_thread(bad_samples, cluster.dsn)
    wall, cpu, samples = w1 - w0, c1 - c0, s1 - s0
    interval = manifest.devices[0].update_interval
    produced, gaps, late = await asyncio.to_thread(changes_in, cluster.dsn, t0, t1, interval)
    rate = samples / wall
    return {
        "devices": len(manifest.devices),
        "variables_per_device": len(manifest.devices[0].points),
        "servers": len({d.endpoint for d in manifest.devices}),
        "update_interval_s": interval,
        "monitored_item_queue_size": queue_size,
        "connected_after_s": round(connected_after, 1),
        "measured_s": round(wall, 2),
        "value_changes_offered_per_s": round(expected_points / interval, 1),
        "value_changes_produced_and_stored_per_s": round(produced / (t1 - t0).total_seconds(), 1),
        "value_changes_stored_per_s": round(rate, 1),
        "batches_committed": b1 - b0,
        "bad_samples": bad,
        "collector_cpu_s": round(cpu, 3),
        "collector_cores": round(cpu / wall, 3),
        "collector_cpu_s_per_million": round(cpu / samples * 1e6, 1) if samples else None,
        "value_changes_per_collector_core_s": round(samples / cpu) if cpu else None,
        "simulator_cores": round((sim1 - sim0) / wall, 3),
        "simulator_skipped_update_share": round(late / gaps, 4) if gaps else None,
        "simulator_cpu_s_per_million": (
            round((sim1 - sim0) / samples * 1e6, 1) if samples else None
        ),
        "postgres_cores": round((pg1 - pg0) / wall, 3),
        "queue_depth_at_end": queue_depth,
        "sessions": sessions,
        "subscription_rebuilds": rebuilds,
        "pipeline_at_stop": report.summary() if report is not None else None,
    }


def main() -> int:
    """Start simulator and database, run the collector, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--points", type=int, default=10)
    parser.add_argument("--servers", type=int, default=5)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument(
        "--queue-size",
        type=int,
        default=4,
        help="monitored-item queue size (the collector's default is 1: latest value only)",
    )
    parser.add_argument(
        "--profile", type=Path, help="cProfile the collector over the measured span into FILE"
    )
    parser.add_argument(
        "--gc",
        choices=("tuned", "default"),
        default="tuned",
        help="tuned: the collector's garbage-collector settings (collector/gc_tuning.py); "
        "default: CPython's",
    )
    args = parser.parse_args()
    if args.gc == "tuned":
        from collector.gc_tuning import tune_gc

        tune_gc()  # as `tally collect` does
    with tempfile.TemporaryDirectory(prefix="tally-bench-opcua-") as tmp:
        fleet = Path(tmp) / "fleet.yaml"
        manifest = Path(tmp) / "manifest.json"
        sim_log = Path(tmp) / "simulator.log"
        spec = fleet_spec(args.devices, args.points, args.servers, args.interval)
        fleet.write_text(yaml.safe_dump(spec), encoding="utf-8")
        cluster = ThrowawayPostgres(durable=True)
        cluster.start()
        command = [sys.executable, "-m", "simulators", "--fleet", str(fleet)]
        with sim_log.open("w") as log_file:  # a file, not a pipe: nobody has to drain it
            sim = subprocess.Popen(
                [*command, "--manifest", str(manifest)],
                cwd=ROOT,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        try:
            migrate(cluster.dsn)
            started = time.monotonic()
            while not manifest.exists():
                if sim.poll() is not None or time.monotonic() - started > SIMULATOR_START_TIMEOUT:
                    tail = sim_log.read_text(errors="replace")[-3000:]
                    raise SystemExit(f"the simulator did not start:\n{tail}")
                time.sleep(0.2)
            print(f"simulator serving after {time.monotonic() - started:.1f} s", file=sys.stderr)
            result = asyncio.run(
                measure(
                    manifest,
                    sim.pid,
                    cluster,
                    Path(tmp) / "data",
                    warmup=args.warmup,
                    duration=args.duration,
                    queue_size=args.queue_size,
                    profile=args.profile,
                )
            )
        finally:
            sim.send_signal(signal.SIGINT)
            try:
                sim.wait(timeout=30)
            except subprocess.TimeoutExpired:
                sim.kill()
                sim.wait(timeout=10)
            cluster.remove()
    result["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    per_core = result["value_changes_per_collector_core_s"] or 0
    result["meets_target"] = per_core >= TARGET_PER_CORE
    print(json.dumps(result, indent=2))
    print(
        f"{result['value_changes_produced_and_stored_per_s']:.0f} value changes/s produced and "
        f"stored of {result['value_changes_offered_per_s']:.0f} offered (simulator skipped "
        f"{result['simulator_skipped_update_share']:.1%} of updates); "
        f"{result['value_changes_stored_per_s']:.0f}/s committed in the window; collector "
        f"{result['collector_cores']:.2f} cores = {result['collector_cpu_s_per_million']} CPU-s "
        f"per million = {per_core} value changes/s per collector core (target "
        f"{TARGET_PER_CORE}); simulator {result['simulator_cores']:.2f} cores, PostgreSQL "
        f"{result['postgres_cores']:.2f} cores",
        file=sys.stderr,
    )
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
