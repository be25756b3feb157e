"""Latest values of points and last-seen times of devices, coalesced between flushes.

Every batch moves the latest value of nearly every point it holds; writing each of
those rows in every batch's transaction would cost more than the COPY itself
(docs/benchmarks.md). Instead the writer keeps, per point, the latest live sample of
the batches it committed since the last flush (and per device its latest live time),
and writes them in a short transaction of its own at most every ``interval`` seconds.
The updates only move a value forward in time, so a repeated or late flush is
harmless.

What readers see: ``point.last_seen``/``last_value``/``last_value_text``/
``last_quality`` and ``device.last_seen`` lag the stored samples by up to the
interval (plus the time of one flush). Counts never read them. If the collector dies
between a commit and the next flush, the latest values of that interval are not
written; each point's next sample sets it again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from itertools import repeat

from adapters.base import Sample, Value
from collector.store.rollup import Rollup, sample_quality, sample_ts, sample_value, split_values
from collector.store.statements import DEVICE_LAST

LatestRow = tuple[int, datetime, Value, str | None, int]
LATEST_TYPES = ("int8", "timestamptz", "float8", "text", "int2")


class PendingLatest:
    """Per point the latest committed live sample not yet flushed; per device its time."""

    def __init__(self) -> None:
        self.points: dict[int, Sample] = {}
        self.devices: dict[int, datetime] = {}
        self.since: float | None = None
        """Monotonic time when the oldest pending value arrived (None: nothing pending)."""
        self._latest: datetime | None = None

    def __bool__(self) -> bool:
        return bool(self.points or self.devices)

    def add(self, rollup: Rollup) -> None:
        """Merge a committed batch: a point's later sample replaces an earlier one."""
        if rollup.live_first is None or rollup.live_last is None:
            return
        if self._latest is None or rollup.live_first >= self._latest:
            self.points.update(rollup.point_last)  # all newer: the usual case, in C
            self.devices.update(rollup.device_last)
        else:
            self._merge(rollup.point_last, rollup.device_last)
        if self._latest is None or rollup.live_last > self._latest:
            self._latest = rollup.live_last
        if self.since is None:
            self.since = time.monotonic()

    def _merge(self, points: dict[int, Sample], devices: dict[int, datetime]) -> None:
        mine = self.points
        for point_id, sample in points.items():
            held = mine.get(point_id)
            if held is None or sample.ts >= held.ts:
                mine[point_id] = sample
        seen = self.devices
        for device_id, ts in devices.items():
            held_ts = seen.get(device_id)
            if held_ts is None or ts >= held_ts:
                seen[device_id] = ts

    def due(self, interval: float, now: float | None = None) -> bool:
        """Report whether the oldest pending value has waited `interval` seconds."""
        if self.since is None:
            return False
        return (time.monotonic() if now is None else now) - self.since >= interval

    def take(self) -> PendingLatest:
        """Return what is pending and start empty."""
        taken = PendingLatest()
        taken.points, taken.devices, taken.since, taken._latest = (
            self.points,
            self.devices,
            self.since,
            self._latest,
        )
        self.points, self.devices, self.since, self._latest = {}, {}, None, None
        return taken

    def put_back(self, taken: PendingLatest) -> None:
        """Merge values whose flush failed back in (newer pending values win)."""
        points, devices = self.points, self.devices
        self.points, self.devices = taken.points, taken.devices
        self._merge(points, devices)
        if taken._latest is not None and (self._latest is None or taken._latest > self._latest):
            self._latest = taken._latest
        self.since = time.monotonic()  # try again one interval later

    def point_rows(self) -> Iterator[LatestRow]:
        """Return the rows of the latest-value staging table."""
        samples = list(self.points.values())
        numbers, texts = split_values(list(map(sample_value, samples)))
        return zip(
            self.points,
            map(sample_ts, samples),
            numbers,
            texts,
            map(sample_quality, samples),
            strict=False,
        )

    def device_rows(self) -> Iterator[tuple[int, int, datetime]]:
        """Return the devices' last-seen times as rows of the keys staging table."""
        return zip(repeat(DEVICE_LAST), self.devices, self.devices.values(), strict=False)
