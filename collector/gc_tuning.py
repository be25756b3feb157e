"""Garbage-collector settings for a long-running collector or API process."""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
"""Container allocations between two young-generation collections (CPython's default: 700)."""


def tune_gc() -> None:
    """Freeze what start-up allocated and collect the young generation less often.

    Data collection allocates ~10–20 short-lived objects per sample (samples, tuples,
    time stamps) that die young and form no cycles. With CPython's default threshold
    (700) a collection ran every ~50 MQTT messages and the older generations walked the
    queued records again and again: 75–79 → 58–68 collector CPU-s per million JSON
    messages (bench/mqtt.py, docs/benchmarks.md). Cycles are still collected, at most
    YOUNG_THRESHOLD allocations later. The API's call ingest is alike (a batch of 1,000
    events is ~10,000 short-lived objects). Process-wide: call it from the process's
    entry point (`tally collect`, `tally serve`, the benchmarks), not from library code.
    """
    gc.freeze()  # modules, configuration, registries: never scanned again
    gc.set_threshold(YOUNG_THRESHOLD, 20, 100)
