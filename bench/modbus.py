"""Modbus throughput: N simulated devices x M points polled every second.

The simulator runs in its own process (`python -m simulators.modbus`), so the CPU time
measured here is this process's alone. Two modes:

- `collector` (default): the whole collector — adapter, queue, batcher, writer — into a
  throwaway PostgreSQL started by the bench (its server processes are not counted);
  samples/s is what was committed, and the backlog (queue + spool) is reported at the end.
- `adapter`: the adapter alone into a counting Sink.

Prints one JSON object and a summary.

    .venv/bin/python bench/modbus.py --devices 1000 --points 10 --duration 30
    .venv/bin/python bench/modbus.py --mode adapter
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from adapters.base import Quality, Record, Sample
from adapters.modbus.adapter import ModbusAdapter
from simulators.fleet import read_manifest
from simulators.modbus.plugin import modbus_devices

ROOT = Path(__file__).resolve().parents[1]
TARGET_SAMPLES_PER_S = 10_000
TARGET_CORES = 0.5


class CountingSink:
    """Counts what the adapter emits (the collector's queue would take it from here)."""

    def __init__(self) -> None:
        self.samples = 0
        self.bad = 0
        self.events = 0

    async def put(self, record: Record) -> None:
        """Count one record."""
        if isinstance(record, Sample):
            self.samples += 1
            if record.quality is not Quality.GOOD:
                self.bad += 1
        else:
            self.events += 1

    async def put_many(self, records: Sequence[Record]) -> None:
        """Count records."""
        for record in records:
            await self.put(record)


def fleet_spec(devices: int, points: int, servers: int, interval: float) -> dict[str, Any]:
    """Devices spread over `servers` TCP servers; each device's points are contiguous."""
    kinds = ["float32", "uint16"]
    point_map = []
    address = 0
    for i in range(points):
        data_type = kinds[i % 2]
        point_map.append(
            {
                "key": f"p{i}",
                "table": "input",
                "address": address,
                "data_type": data_type,
                "signal": {"kind": "sine", "base": 100, "amplitude": 20, "period": 30 + i},
            }
        )
        address += 2 if data_type == "float32" else 1
    per_server = -(-devices // servers)
    return {
        "version": 1,
        "name": "bench",
        "templates": {"dev": {"protocol": "modbus", "type": "bench", "update_interval": interval}},
        "devices": [
            {
                "id": f"dev-{n:05d}",
                "template": "dev",
                "server": f"s{n // per_server}",
                "device_id": n % per_server + 1,
                "points": point_map,
            }
            for n in range(devices)
        ],
    }


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of another process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    manifest_path: Path, sim_pid: int, interval: float, warmup: float, duration: float
) -> dict[str, Any]:
    manifest = read_manifest(manifest_path)
    devices = [
        d.model_copy(update={"poll_interval": interval}) for d in modbus_devices(manifest.devices)
    ]
    sink = CountingSink()
    adapter = ModbusAdapter(devices, sink)
    task = asyncio.create_task(adapter.run())
    await asyncio.sleep(warmup)
    s0, r0, p0 = sink.samples, adapter.requests, sum(s.polls for s in adapter.sessions)
    c0, w0, sim0 = time.process_time(), time.monotonic(), process_cpu_seconds(sim_pid)
    await asyncio.sleep(duration)
    s1, r1, p1 = sink.samples, adapter.requests, sum(s.polls for s in adapter.sessions)
    c1, w1, sim1 = time.process_time(), time.monotonic(), process_cpu_seconds(sim_pid)
    await adapter.stop()
    await task
    wall, cpu, samples, requests = w1 - w0, c1 - c0, s1 - s0, r1 - r0
    device_polls = samples / max(1, len(devices[0].points))
    return {
        "mode": "adapter",
        "devices": len(devices),
        "points_per_device": len(devices[0].points),
        "poll_interval_s": interval,
        "connections": len(adapter.sessions),
        "measured_s": round(wall, 2),
        "samples_per_s": round(samples / wall, 1),
        "expected_samples_per_s": round(sum(len(d.points) for d in devices) / interval, 1),
        "bad_samples": sink.bad,
        "adapter_cpu_s": round(cpu, 3),
        "adapter_cores": round(cpu / wall, 3),
        "adapter_cpu_s_per_million_samples": round(cpu / samples * 1e6, 2) if samples else None,
        "requests_per_device_poll": round(requests / device_polls, 3) if device_polls else None,
        "requests_per_cycle": round(requests / wall * interval, 1),
        "loop_passes": p1 - p0,
        "simulator_cores": round((sim1 - sim0) / wall, 3),
    }


async def measure_collector(
    manifest_path: Path,
    *,
    sim_pid: int,
    interval: float,
    warmup: float,
    duration: float,
    dsn: str,
    data_dir: Path,
) -> dict[str, Any]:
    """Run the whole collector into PostgreSQL and measure what it commits and costs."""
    from collector import metrics
    from collector.config import parse_config
    from collector.service import CollectorService

    manifest = read_manifest(manifest_path)
    devices = [
        d.model_copy(update={"poll_interval": interval}) for d in modbus_devices(manifest.devices)
    ]
    raw = {"version": 1, "data_dir": str(data_dir), "store": {"dsn": dsn}}
    service = CollectorService(parse_config(raw, "<bench>", environ={}), devices)

    def stored() -> float:
        return metrics.REGISTRY.get_sample_value("tally_samples_stored_total") or 0.0

    await service.start()
    adapter = service.adapters[0]
    assert isinstance(adapter, ModbusAdapter)
    await asyncio.sleep(warmup)
    s0, r0 = stored(), adapter.requests
    c0, w0, sim0 = time.process_time(), time.monotonic(), process_cpu_seconds(sim_pid)
    await asyncio.sleep(duration)
    s1, r1 = stored(), adapter.requests
    c1, w1, sim1 = time.process_time(), time.monotonic(), process_cpu_seconds(sim_pid)
    backlog = len(service.pipeline.queue)
    spooled = service.pipeline.spool.samples
    await service.stop()
    wall, cpu, samples, requests = w1 - w0, c1 - c0, s1 - s0, r1 - r0
    device_polls = samples / max(1, len(devices[0].points))
    return {
        "mode": "collector",
        "devices": len(devices),
        "points_per_device": len(devices[0].points),
        "poll_interval_s": interval,
        "connections": len(adapter.sessions),
        "measured_s": round(wall, 2),
        "samples_per_s": round(samples / wall, 1),
        "expected_samples_per_s": round(sum(len(d.points) for d in devices) / interval, 1),
        "queue_backlog_at_end": backlog,
        "spooled_samples_at_end": spooled,
        "collector_cpu_s": round(cpu, 3),
        "collector_cores": round(cpu / wall, 3),
        "collector_cpu_s_per_million_samples": round(cpu / samples * 1e6, 2) if samples else None,
        "requests_per_device_poll": round(requests / device_polls, 3) if device_polls else None,
        "requests_per_cycle": round(requests / wall * interval, 1),
        "simulator_cores": round((sim1 - sim0) / wall, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["collector", "adapter"], default="collector")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--points", type=int, default=10)
    parser.add_argument("--servers", type=int, default=10)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=30.0)
    args = parser.parse_args()
    if -(-args.devices // args.servers) > 247:
        parser.error("at most 247 unit ids per server: raise --servers")
    with tempfile.TemporaryDirectory(prefix="tally-bench-") as tmp:
        fleet = Path(tmp) / "fleet.yaml"
        manifest = Path(tmp) / "manifest.json"
        spec = fleet_spec(args.devices, args.points, args.servers, args.interval)
        fleet.write_text(yaml.safe_dump(spec), encoding="utf-8")
        sim = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "simulators.modbus",
                "--fleet",
                str(fleet),
                "--manifest",
                str(manifest),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not manifest.exists():
                if sim.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        f"simulator did not start: {sim.stderr.read() if sim.stderr else ''}"
                    )
                time.sleep(0.1)
            if args.mode == "adapter":
                result = asyncio.run(
                    measure(manifest, sim.pid, args.interval, args.warmup, args.duration)
                )
            else:
                from collector.embedded.postgres import ThrowawayPostgres

                with ThrowawayPostgres(durable=True) as pg:
                    result = asyncio.run(
                        measure_collector(
                            manifest, sim_pid=sim.pid, interval=args.interval,
                            warmup=args.warmup, duration=args.duration, dsn=pg.dsn,
                            data_dir=Path(tmp) / "data",
                        )
                    )  # fmt: skip
        finally:
            sim.send_signal(signal.SIGINT)
            try:
                sim.wait(timeout=15)
            except subprocess.TimeoutExpired:
                sim.kill()
    who = args.mode
    result["meets_target"] = (
        result["samples_per_s"] >= 0.95 * result["expected_samples_per_s"]
        and result[f"{who}_cores"] <= TARGET_CORES
        and result.get("queue_backlog_at_end", 0) < result["expected_samples_per_s"]
    )
    print(json.dumps(result, indent=2))
    print(
        f"{result['samples_per_s']:.0f} samples/s of {result['expected_samples_per_s']:.0f} "
        f"expected; {who} {result[f'{who}_cores']:.2f} cores "
        f"({result[f'{who}_cpu_s_per_million_samples']} CPU-s per million samples); "
        f"{result['requests_per_device_poll']} request(s) per device poll; "
        f"simulator {result['simulator_cores']:.2f} cores",
        file=sys.stderr,
    )
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
