"""Prometheus metrics of the collector and API, shared by every component.

One registry per process (`REGISTRY`); names follow Prometheus conventions and the
project's domain words. Components import the metric they update; nothing else.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

samples_received = Counter(
    "tally_samples_received", "Samples accepted from adapters.", ["protocol"], registry=REGISTRY
)
samples_stored = Counter(
    "tally_samples_stored", "Samples committed to the store.", registry=REGISTRY
)
samples_rejected = Counter(
    "tally_samples_rejected",
    "Samples refused as invalid (e.g. unknown point, bad payload), by reason.",
    ["reason"],
    registry=REGISTRY,
)
samples_dropped = Counter(
    "tally_samples_dropped",
    "Samples discarded after being accepted (e.g. spool full with drop_oldest), by reason.",
    ["reason"],
    registry=REGISTRY,
)
batches_skipped = Counter(
    "tally_batches_duplicate",
    "Batches not applied because their id was already in the ingest log.",
    registry=REGISTRY,
)
queue_depth = Gauge(
    "tally_queue_depth", "Records waiting in the pipeline queue.", registry=REGISTRY
)
spool_bytes = Gauge("tally_spool_bytes", "Bytes held in the local spool.", registry=REGISTRY)
spool_batches = Gauge("tally_spool_batches", "Batches held in the local spool.", registry=REGISTRY)
store_up = Gauge("tally_store_up", "1 when the store accepts writes, else 0.", registry=REGISTRY)
batch_latency = Histogram(
    "tally_batch_write_seconds",
    "Time to apply one batch to the store.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
adapter_connected = Gauge(
    "tally_adapter_connected",
    "1 while an adapter's connection is up, else 0.",
    ["protocol", "endpoint"],
    registry=REGISTRY,
)
adapter_request_latency = Histogram(
    "tally_adapter_request_seconds",
    "Latency of one protocol request or poll cycle.",
    ["protocol", "kind"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=REGISTRY,
)
devices_available = Gauge(
    "tally_devices_available",
    "Devices currently answering, by protocol.",
    ["protocol"],
    registry=REGISTRY,
)
api_request_latency = Histogram(
    "tally_api_request_seconds",
    "HTTP API request latency by route and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
spool_quarantined = Counter(
    "tally_spool_quarantined",
    "Spool files moved to the spool's quarantine directory (corrupt, torn, refused by the store).",
    registry=REGISTRY,
)
spool_full = Counter(
    "tally_spool_full",
    "Times the spool reached max_bytes with on_full=block and intake paused until replay.",
    registry=REGISTRY,
)
calls_stored = Counter(
    "tally_calls_stored",
    "Call events committed to the store, by source (http, mqtt, file, workload).",
    ["source"],
    registry=REGISTRY,
)
calls_duplicate = Counter(
    "tally_calls_duplicate",
    "Call events not stored again because their event id was already recorded.",
    ["source"],
    registry=REGISTRY,
)
calls_rejected = Counter(
    "tally_calls_rejected",
    "Call events or messages refused, by source and reason (invalid, unknown_key, not_json).",
    ["source", "reason"],
    registry=REGISTRY,
)

control_operations = Counter(
    "tally_control_operations",
    "Control operations recorded, by kind (write, probe) and outcome.",
    ["kind", "outcome"],
    registry=REGISTRY,
)
control_latency = Histogram(
    "tally_control_latency_seconds",
    "Duration of control operations that reached a device (read, write, read back).",
    ["protocol"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
