"""MQTT throughput through the whole collector: JSON (10 points a message) and Sparkplug B.

The bench starts a throwaway PostgreSQL (durable: fsync on) and a throwaway Mosquitto,
runs the collector (MQTT adapter → queue → batcher → store writer) in this process and
the publisher in another one (this script with `--publish`). Each phase publishes
`--messages` messages at QoS 1 as fast as the publisher can, then waits until every
sample is committed. Measured, per phase:

- messages/s and samples/s stored: from the first message received to the last sample
  committed;
- collector CPU-seconds per million messages and messages per collector core
  (= messages / collector CPU-seconds; the PostgreSQL and Mosquitto servers and the
  publisher are other processes and are not counted);
- lost = samples sent - samples stored (must be 0).

Prints one JSON object and a summary.

    .venv/bin/python bench/mqtt.py                      # = --messages 200000 --devices 100
    .venv/bin/python bench/mqtt.py --encoding json --profile /tmp/mqtt.prof
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

POINTS = 10
TARGET_PER_CORE = 20_000  # JSON messages per collector CPU-second, QoS 1, none lost
GROUP = "bench"
DEVICES_PER_NODE = 10
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
WINDOW = 1_000  # messages the publisher leaves unacknowledged at most


# --- publisher (a separate process) -------------------------------------------------------


def json_payloads(devices: int, messages: int) -> list[tuple[str, bytes]]:
    """Return `messages` JSON telemetry messages spread round-robin over `devices`."""
    out = []
    for i in range(messages):
        device = i % devices
        values = ",".join(f'"p{k}":{(i * 7 + k) % 1000 + 0.5}' for k in range(POINTS))
        body = f'{{"ts":{START_MS + i},"values":{{{values}}}}}'.encode()
        out.append((f"bench/dev-{device}/t", body))
    return out


def sparkplug_payloads(devices: int, messages: int) -> list[tuple[str, bytes]]:
    """Return births for every edge node and device, then `messages` DDATA with aliases."""
    from adapters.base import Value
    from adapters.mqtt.sparkplug.codec import DataType, build_payload, encode_payload, from_ms

    Metric = tuple[str | None, int | None, DataType, Value]

    nodes = -(-devices // DEVICES_PER_NODE)
    seq = dict.fromkeys(range(nodes), 0)
    out = []
    born = from_ms(START_MS)
    for node in range(nodes):
        birth = build_payload([("bdSeq", None, DataType.UINT64, 0)], timestamp=born, seq=0)
        out.append((f"spBv1.0/{GROUP}/NBIRTH/node-{node}", encode_payload(birth)))
    for device in range(devices):
        node = device // DEVICES_PER_NODE
        seq[node] = (seq[node] + 1) % 256
        births: list[Metric] = [(f"p{k}", k + 1, DataType.DOUBLE, 0.0) for k in range(POINTS)]
        dbirth = build_payload(births, timestamp=born, seq=seq[node])
        out.append((f"spBv1.0/{GROUP}/DBIRTH/node-{node}/dev-{device}", encode_payload(dbirth)))
    for i in range(messages):
        device = i % devices
        node = device // DEVICES_PER_NODE
        seq[node] = (seq[node] + 1) % 256
        metrics: list[Metric] = [
            (None, k + 1, DataType.DOUBLE, (i * 7 + k) % 1000 + 0.5) for k in range(POINTS)
        ]
        data = build_payload(metrics, timestamp=from_ms(START_MS + i), seq=seq[node])
        topic = f"spBv1.0/{GROUP}/DDATA/node-{node}/dev-{device}"
        out.append((topic, encode_payload(data)))
    return out


def _length(n: int) -> bytes:
    """MQTT remaining-length varint."""
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _publish_packet(topic: str, body: bytes, packet_id: int, qos: int) -> bytes:
    name = topic.encode()
    head = len(name).to_bytes(2, "big") + name
    if qos:
        head += packet_id.to_bytes(2, "big")
    return bytes([0x30 | (qos << 1)]) + _length(len(head) + len(body)) + head + body


def publish(url: str, encoding: str, devices: int, messages: int, qos: int) -> None:
    """Publish the phase's messages and print {"sent", "seconds"} once every one is acked.

    A minimal MQTT 3.1.1 publisher on a raw socket (pre-encoded PUBLISH packets, PUBACKs
    counted): the load generator must not be what limits the collector. At most WINDOW
    messages are unacknowledged at a time.
    """
    import socket

    build = json_payloads if encoding == "json" else sparkplug_payloads
    packets = [
        _publish_packet(topic, body, i % 65_535 + 1, qos)
        for i, (topic, body) in enumerate(build(devices, messages))
    ]
    host, port = url.removeprefix("mqtt://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client_id = b"bench-publisher"
    variable = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(client_id).to_bytes(2, "big") + client_id
    sock.sendall(b"\x10" + _length(len(variable)) + variable)
    if sock.recv(4) != b"\x20\x02\x00\x00":
        raise SystemExit("publisher: the broker refused the connection")
    started = time.monotonic()
    acked_bytes = 0
    sent = 0
    chunk = 200
    while sent < len(packets) or (qos and acked_bytes < 4 * len(packets)):
        if sent < len(packets) and (not qos or sent - acked_bytes // 4 < WINDOW):
            batch = packets[sent : sent + chunk]
            sock.sendall(b"".join(batch))
            sent += len(batch)
            continue
        data = sock.recv(1 << 16)  # PUBACKs: 4 bytes each, nothing else is sent to us
        if not data:
            raise SystemExit("publisher: the broker closed the connection")
        acked_bytes += len(data)
    seconds = time.monotonic() - started
    sock.sendall(b"\xe0\x00")
    sock.close()
    print(json.dumps({"sent": len(packets), "seconds": seconds}), flush=True)


# --- collector (this process) ----------------------------------------------------------


def samples_expected(encoding: str, devices: int, messages: int) -> int:
    """Return the samples one phase should store (Sparkplug DBIRTHs carry values too)."""
    return messages * POINTS + (devices * POINTS if encoding == "sparkplug" else 0)


class StoredSamples:
    """Counts committed samples from the writer's hourly rollup, on one connection."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: Any = None

    async def __call__(self) -> int:
        """Return the samples committed so far."""
        from psycopg import AsyncConnection

        if self._conn is None:
            self._conn = await AsyncConnection.connect(self.dsn, autocommit=True)
        cur = await self._conn.execute("SELECT coalesce(sum(samples), 0) FROM device_activity")
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            await self._conn.close()


class CountingSink:
    """Counts samples (the `--mode adapter` sink: no queue, no store)."""

    def __init__(self) -> None:
        self.samples = 0

    async def put(self, record: Any) -> None:
        """Count one record."""
        if type(record).__name__ == "Sample":
            self.samples += 1

    async def put_many(self, records: Any) -> None:
        """Count records."""
        self.samples += sum(type(r).__name__ == "Sample" for r in records)


def thread_cpu() -> dict[str, float]:
    """CPU-seconds of this process's threads, by thread name (Linux /proc)."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path("/proc/self/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        if task.name == str(os.getpid()):
            kind = "event loop (adapter, pipeline, writer)"
        elif name.startswith("paho"):
            kind = "paho network thread"
        else:
            kind = "other threads (paho network thread, idle workers)"
        out[kind] = out.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


async def phase(  # noqa: PLR0917
    adapter: Any,
    stored_samples: Any,
    url: str,
    encoding: str,
    devices: int,
    messages: int,
    qos: int,
    profile: Path | None,
) -> dict[str, Any]:
    """Publish one phase from a separate process and measure the collector until stored."""
    before = await stored_samples()
    expected = samples_expected(encoding, devices, messages)
    received0 = adapter.stats.messages
    profiler = cProfile.Profile() if profile else None
    threads0 = thread_cpu()
    cpu0, wall0 = time.process_time(), time.monotonic()
    publisher = subprocess.Popen(  # noqa: ASYNC220 (returns at once; waited on below)
        [sys.executable, __file__, "--publish", url, "--encoding", encoding,
         "--devices", str(devices), "--messages", str(messages), "--qos", str(qos)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    if profiler:
        profiler.enable()
    first: float | None = None
    stored = before
    last_change, last_stored = time.monotonic(), before
    while stored - before < expected:
        await asyncio.sleep(0.01 if first is None else 0.25)
        if first is None and adapter.stats.messages > received0:
            first = time.monotonic()
        if first is not None:
            stored = await stored_samples()
            if stored != last_stored:
                last_change, last_stored = time.monotonic(), stored
            elif time.monotonic() - last_change > 30:
                break  # nothing committed for 30 s: report what was lost
    done, cpu1 = time.monotonic(), time.process_time()
    threads1 = thread_cpu()
    if profiler:
        profiler.disable()
        profiler.dump_stats(str(profile))
    out, _ = publisher.communicate(timeout=120)
    sent = json.loads(out.strip().splitlines()[-1])
    start = first or wall0
    cpu = cpu1 - cpu0
    got = stored - before
    return {
        "encoding": encoding,
        "qos": qos,
        "devices": devices,
        "messages_sent": sent["sent"],
        "samples_expected": expected,
        "samples_stored": got,
        "lost": expected - got,
        "publisher_seconds": round(sent["seconds"], 2),
        "seconds": round(done - start, 2),
        "messages_per_s": round(sent["sent"] / (done - start)),
        "samples_per_s": round(got / (done - start)),
        "collector_cpu_seconds": round(cpu, 2),
        "collector_cores": round(cpu / (done - wall0), 2),
        "cpu_seconds_per_million_messages": round(cpu / sent["sent"] * 1e6, 1),
        "messages_per_collector_core": round(sent["sent"] / cpu),
        "cpu_seconds_per_million_messages_by_thread": {
            k: round((threads1[k] - threads0.get(k, 0.0)) / sent["sent"] * 1e6, 1)
            for k in sorted(threads1)
        },
        "rejections": dict(adapter.rejections),
    }


def connection(url: str, qos: int) -> Any:
    """Return the collector's MQTT connection: JSON topics and Sparkplug group `bench`."""
    from adapters.mqtt.config import MqttConnection

    return MqttConnection.model_validate(
        {
            "id": "bench",
            "protocol": "mqtt",
            "url": url,
            "topics": [
                {
                    "topic": "bench/{device}/t",
                    "qos": qos,
                    "timestamp": {"path": "$.ts", "format": "epoch_ms"},
                    "point_object": "$.values",
                }
            ],
            "sparkplug": {"groups": [GROUP], "qos": min(qos, 1)},
            "limits": {"max_devices": 100_000},
        }
    )


async def run_adapter(args: argparse.Namespace, url: str) -> dict[str, Any]:
    """`--mode adapter`: the MQTT adapter alone into a counting sink (no queue, no store)."""
    from adapters.mqtt.adapter import MqttAdapter

    sink = CountingSink()

    async def counted() -> int:
        return sink.samples

    results: dict[str, Any] = {}
    async with MqttAdapter(connection(url, args.qos), sink) as adapter:
        if not await adapter.wait_ready(15):
            raise SystemExit("the adapter did not subscribe")
        for encoding in args.encoding.split(","):
            await phase(adapter, counted, url, encoding, args.devices, args.warmup, args.qos, None)
            results[encoding] = await phase(
                adapter, counted, url, encoding, args.devices, args.messages, args.qos,
                args.profile if encoding == "json" else None,
            )  # fmt: skip
    return results


async def run(args: argparse.Namespace, dsn: str, url: str, data_dir: Path) -> dict[str, Any]:
    """Run the collector and every requested phase (each after a warm-up)."""
    from adapters.mqtt.adapter import MqttAdapters
    from collector.config import parse_config
    from collector.service import CollectorService

    config = parse_config(
        {
            "version": 1,
            "site": "bench",
            "data_dir": str(data_dir),
            "store": {"dsn": dsn},
            "pipeline": {"batch_size": args.batch_size, "batch_age": 0.5},
        },
        "<bench>",
        environ={},
    )
    results: dict[str, Any] = {}
    stored = StoredSamples(dsn)
    try:
        async with CollectorService(config, [connection(url, args.qos)]) as service:
            (adapters,) = service.adapters
            assert isinstance(adapters, MqttAdapters)
            if not await adapters.wait_ready(15):
                raise SystemExit("the collector did not subscribe")
            (adapter,) = adapters.adapters
            for encoding in args.encoding.split(","):
                await phase(
                    adapter, stored, url, encoding, args.devices, args.warmup, args.qos, None
                )
                results[encoding] = await phase(
                    adapter, stored, url, encoding, args.devices, args.messages, args.qos,
                    args.profile if encoding == "json" else None,
                )  # fmt: skip
    finally:
        await stored.close()
    return results


def main() -> int:
    """Parse arguments; publish (child) or run the bench (parent)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10_000)
    parser.add_argument("--encoding", default="json,sparkplug")
    parser.add_argument("--qos", type=int, choices=(0, 1), default=1)
    parser.add_argument(
        "--mode",
        choices=("collector", "adapter"),
        default="collector",
        help="collector: into PostgreSQL (default); adapter: the adapter into a counting sink",
    )
    parser.add_argument("--batch-size", type=int, default=5_000)
    parser.add_argument("--profile", type=Path, help="cProfile the collector's JSON phase")
    parser.add_argument("--publish", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument(
        "--gc",
        choices=("tuned", "default"),
        default="tuned",
        help="tuned: the collector's garbage-collector settings (collector/gc_tuning.py); "
        "default: CPython's",
    )
    args = parser.parse_args()
    if args.publish:
        publish(args.publish, args.encoding, args.devices, args.messages, args.qos)
        return 0
    if args.gc == "tuned":
        from collector.gc_tuning import tune_gc

        tune_gc()  # as `tally collect` does

    from collector.embedded.mosquitto import ThrowawayMosquitto
    from collector.embedded.postgres import ThrowawayPostgres
    from collector.store.migrate import migrate

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    data_dir = Path(tempfile.mkdtemp(prefix="tally-bench-mqtt-"))
    try:
        if args.mode == "adapter":
            with ThrowawayMosquitto() as broker:
                results = asyncio.run(run_adapter(args, broker.url))
        else:
            with ThrowawayPostgres(durable=True) as pg, ThrowawayMosquitto() as broker:
                migrate(pg.dsn)
                results = asyncio.run(run(args, pg.dsn, broker.url, data_dir))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    print(json.dumps(results, indent=2))
    for encoding, r in results.items():
        print(
            f"{encoding:>9}: {r['messages_per_s']:,} messages/s, {r['samples_per_s']:,} "
            f"samples/s stored; {r['cpu_seconds_per_million_messages']} collector CPU-s per "
            f"million messages = {r['messages_per_collector_core']:,} messages per core; "
            f"lost {r['lost']}"
        )
    json_result = results.get("json")
    if json_result is not None:
        met = json_result["messages_per_collector_core"] >= TARGET_PER_CORE
        met = met and json_result["lost"] == 0
        print(f"target >= {TARGET_PER_CORE:,} JSON messages per collector core, none lost: "
              f"{'met' if met else 'NOT met'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
