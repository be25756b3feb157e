"""Control throughput: manageability probes per second over N devices, latency per protocol.

Serves N simulated devices per protocol (one writable setpoint and one read-only value
each) from a separate process (`python -m simulators --fleet ...`): Modbus, OPC UA, MQTT
JSON (command on `.../set`, confirmed by the device's ack) and MQTT Sparkplug B (DCMD,
confirmed by the device's next DDATA), the MQTT devices on the simulator's throwaway
Mosquitto. Runs the
collector (`CollectorService`) on them into a throwaway PostgreSQL started here, waits
until every device is registered, then probes every device of one protocol at a time
with `--concurrency` probes in flight: read the setpoint, write the same value back, read
it again, record the operation and its audit entry. Probes/s is end to end (recording
included); the latency percentiles are the recorded operations' own (read, write, read
back: what `control_op.latency_ms` says). Prints one JSON object and a summary.

    .venv/bin/python bench/control.py --devices 1000 --concurrency 16
    .venv/bin/python bench/control.py --protocols mqtt-json,mqtt-sparkplug
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import yaml

from adapters.mqtt.config import MqttConnection
from adapters.opcua.config import Control, OpcUaSource
from collector.config import parse_config
from collector.embedded.postgres import ThrowawayPostgres
from collector.service import CollectorService
from collector.store.migrate import migrate
from simulators.fleet import Manifest, device_configs, read_manifest

ROOT = Path(__file__).resolve().parents[1]
TARGET_PROBES_PER_S = 50
"""Probes per second (one protocol, 1,000 devices) the collector should sustain."""
PREFIXES = {"modbus": "mb-", "opcua": "ua-", "mqtt-json": "mj-", "mqtt-sparkplug": "ms-"}
"""Device id prefix of each measured protocol (MQTT: one per encoding)."""
LIVE_VALUE_NEEDED = {"mqtt-json", "mqtt-sparkplug"}
"""MQTT reads return the last value received live: wait for one before probing."""
MQTT_DATA_INTERVAL = 30
"""Seconds between MQTT data messages: the first ones (and Sparkplug births) precede the
collector; a later DDATA from an unknown edge node makes the collector ask for a rebirth."""
DEVICES_PER_EDGE_NODE = 50
"""Sparkplug B devices behind one simulated edge node."""


def fleet_spec(devices: int, protocols: list[str]) -> dict[str, Any]:
    """N devices per protocol: a writable uint16/float setpoint and a read-only value."""
    modbus_points = [
        {"key": "setpoint", "address": 0, "data_type": "uint16", "writable": True,
         "signal": {"value": 1480}},
        {"key": "value", "table": "input", "address": 0, "data_type": "float32",
         "signal": {"kind": "sine", "base": 50, "amplitude": 5, "period": 60}},
    ]  # fmt: skip
    opcua_points = [
        {"key": "Setpoint", "data_type": "float64", "writable": True,
         "signal": {"kind": "constant", "value": 185.5}},
        {"key": "Value", "data_type": "float32",
         "signal": {"kind": "sine", "base": 50, "amplitude": 5, "period": 60}},
    ]  # fmt: skip
    mqtt_points = [
        {"key": "setpoint", "data_type": "float64", "writable": True,
         "signal": {"value": 72.5}},
        {"key": "value", "data_type": "float64",
         "signal": {"kind": "sine", "base": 50, "amplitude": 5, "period": 60}},
    ]  # fmt: skip
    spec: dict[str, Any] = {
        "version": 1,
        "name": "bench-control",
        "protocols": {},
        "templates": {
            "modbus": {
                "protocol": "modbus",
                "type": "bench-modbus",
                "update_interval": 3600,
                "points": modbus_points,
            },
            "opcua": {
                "protocol": "opcua",
                "type": "bench-opcua",
                "update_interval": 3600,
                "points": opcua_points,
            },
            "mqtt-json": {
                "protocol": "mqtt",
                "encoding": "json",
                "type": "bench-json",
                "industry": "C26",
                "update_interval": MQTT_DATA_INTERVAL,
                "points": mqtt_points,
            },
            "mqtt-sparkplug": {
                "protocol": "mqtt",
                "encoding": "sparkplug",
                "group": "bench",
                "type": "bench-sparkplug",
                "update_interval": MQTT_DATA_INTERVAL,
                "points": mqtt_points,
            },
        },
        "devices": [],
    }
    if "modbus" in protocols:
        per_server = -(-devices // 10)
        spec["protocols"]["modbus"] = {"timeout": 2.0}
        spec["devices"] += [
            {"id": f"mb-{n:05d}", "template": "modbus", "server": f"m{n // per_server}",
             "device_id": n % per_server + 1}
            for n in range(devices)
        ]  # fmt: skip
    if "opcua" in protocols:
        per_server = -(-devices // 4)
        spec["devices"] += [
            {"id": f"ua-{n:05d}", "template": "opcua", "server": f"u{n // per_server}"}
            for n in range(devices)
        ]
    if "mqtt-json" in protocols or "mqtt-sparkplug" in protocols:
        spec["protocols"]["mqtt"] = {"broker": None, "command_timeout": 10.0}
    if "mqtt-json" in protocols:
        spec["devices"] += [{"id": f"mj-{n:05d}", "template": "mqtt-json"} for n in range(devices)]
    if "mqtt-sparkplug" in protocols:
        spec["devices"] += [
            {"id": f"ms-{n:05d}", "template": "mqtt-sparkplug",
             "edge_node": f"edge-{n // DEVICES_PER_EDGE_NODE}"}
            for n in range(devices)
        ]  # fmt: skip
    return spec


def collector_devices(manifest: Manifest) -> list[Any]:
    """Return the collector's devices: slow polling, OPC UA setpoints allowed for control."""
    out: list[Any] = []
    for configured in device_configs(manifest):
        if isinstance(configured, MqttConnection):
            limits = configured.limits.model_copy(
                update={"max_devices": max(configured.limits.max_devices, len(configured.devices))}
            )
            out.append(configured.model_copy(update={"limits": limits}))
        elif isinstance(configured, OpcUaSource):
            data = configured.data.model_copy(update={"mode": "poll", "poll_interval": 3600})
            control = Control(writable=["*/Setpoint"])
            out.append(configured.model_copy(update={"control": control, "data": data}))
        else:
            out.append(configured.model_copy(update={"poll_interval": 3600}))
    return out


def registered(dsn: str, prefix: str, *, live_value: bool = False) -> int:
    """Devices of one protocol registered with their points (and, if asked, a stored value)."""
    stored = " AND EXISTS (SELECT 1 FROM sample s WHERE s.point_id = p.id)" if live_value else ""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM device d WHERE d.key LIKE %s"
            " AND EXISTS (SELECT 1 FROM point p WHERE p.device_id = d.id AND p.writable"
            + stored
            + ")",
            (prefix + "%",),
        ).fetchone()
    return int(row[0]) if row else 0


def percentile(values: list[float], q: float) -> float:
    """Return the q-quantile (0..1) by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = (len(ordered) - 1) * q
    low, high = int(index), min(int(index) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (index - low)


async def measure(
    manifest: Manifest,
    dsn: str,
    data_dir: Path,
    *,
    protocols: list[str],
    devices: int,
    concurrency: int,
    rounds: int,
) -> dict[str, Any]:
    """Run the collector, wait for registration, probe each protocol's fleet `rounds` times."""
    config = parse_config(
        {
            "version": 1,
            "site": "bench",
            "data_dir": str(data_dir),
            "store": {"dsn": dsn, "pool_size": 8},
            "logging": {"level": "WARNING"},
            "control": {
                "timeout": 10.0,
                "rate_limit": {"operations": 1000, "period": 60},
                "probe": {"concurrency": concurrency},
            },
        },
        "<bench>",
        environ={},
    )
    results: dict[str, Any] = {}
    started = time.monotonic()
    async with CollectorService(config, collector_devices(manifest)) as service:
        for protocol, prefix in PREFIXES.items():
            if protocol not in protocols:
                continue
            deadline = time.monotonic() + 600
            live_value = protocol in LIVE_VALUE_NEEDED
            while await asyncio.to_thread(registered, dsn, prefix, live_value=live_value) < devices:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{protocol}: devices not registered within 600 s")
                await asyncio.sleep(0.5)
        results["registered_after_s"] = round(time.monotonic() - started, 1)
        for protocol, prefix in PREFIXES.items():
            if protocol not in protocols:
                continue
            keys = [d.id for d in manifest.devices if d.id.startswith(prefix)]
            walls, latencies, cpu = [], [], 0.0
            outcomes: Counter[str] = Counter()
            for _ in range(rounds):
                c0, w0 = time.process_time(), time.monotonic()
                ops = await service.probe.probe(keys)
                walls.append(time.monotonic() - w0)
                cpu += time.process_time() - c0
                latencies += [op.latency_ms for op in ops]
                outcomes.update(op.outcome.value for op in ops)
            total = len(keys) * rounds
            results[protocol] = {
                "devices": len(keys),
                "rounds": rounds,
                "probes": total,
                "outcomes": dict(outcomes),
                "probes_per_s": round(total / sum(walls), 1),
                "probes_per_s_per_round": [round(len(keys) / w, 1) for w in walls],
                "latency_ms_p50": round(percentile(latencies, 0.50), 2),
                "latency_ms_p99": round(percentile(latencies, 0.99), 2),
                "latency_ms_max": round(max(latencies), 2),
                "latency_ms_mean": round(statistics.fmean(latencies), 2),
                "collector_cores": round(cpu / sum(walls), 3),
                "collector_cpu_ms_per_probe": round(cpu / total * 1000, 2),
            }
    return results


def main() -> int:
    """Start simulators and database, run the collector, probe, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000, help="devices per protocol")
    parser.add_argument("--concurrency", type=int, default=16, help="probes in flight")
    parser.add_argument("--rounds", type=int, default=3, help="probe passes per protocol")
    parser.add_argument(
        "--protocols", default=",".join(PREFIXES), help=f"comma-separated of {', '.join(PREFIXES)}"
    )
    args = parser.parse_args()
    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    unknown = sorted(set(protocols) - set(PREFIXES))
    if unknown:
        parser.error(f"unknown protocols {unknown}; expected some of {', '.join(PREFIXES)}")
    with tempfile.TemporaryDirectory(prefix="tally-bench-control-") as tmp:
        fleet = Path(tmp) / "fleet.yaml"
        manifest_path = Path(tmp) / "manifest.json"
        fleet.write_text(yaml.safe_dump(fleet_spec(args.devices, protocols)), encoding="utf-8")
        cluster = ThrowawayPostgres(durable=False)
        cluster.start()
        sim_log_path = Path(tmp) / "simulator.log"
        sim_log = sim_log_path.open("w", encoding="utf-8")  # a pipe would fill and block it
        sim = subprocess.Popen(
            [sys.executable, "-m", "simulators", "--fleet", str(fleet),
             "--manifest", str(manifest_path)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=sim_log,
            start_new_session=True,  # its own group: a kill also ends its Mosquitto
        )  # fmt: skip
        try:
            migrate(cluster.dsn)
            deadline = time.monotonic() + 300
            while not manifest_path.exists():
                if sim.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"simulator did not start: {sim_log_path.read_text()[-2000:]}")
                time.sleep(0.2)
            result = asyncio.run(
                measure(
                    read_manifest(manifest_path),
                    cluster.dsn,
                    Path(tmp) / "data",
                    protocols=protocols,
                    devices=args.devices,
                    concurrency=args.concurrency,
                    rounds=args.rounds,
                )
            )
        finally:
            sim.send_signal(signal.SIGINT)
            try:
                sim.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(sim.pid, signal.SIGKILL)
                sim.wait(timeout=30)
            sim_log.close()
            cluster.remove()
    result["concurrency"] = args.concurrency
    result["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))
    ok = True
    for protocol in protocols:
        r = result[protocol]
        ok = ok and r["probes_per_s"] >= TARGET_PROBES_PER_S
        print(
            f"{protocol}: {r['probes_per_s']} probes/s over {r['devices']} devices "
            f"(target {TARGET_PROBES_PER_S}); latency p50 {r['latency_ms_p50']} ms, "
            f"p99 {r['latency_ms_p99']} ms; outcomes {r['outcomes']}",
            file=sys.stderr,
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
