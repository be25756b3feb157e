"""Batch: its samples and their count, whatever the mix of records."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.base import DeviceEvent, DeviceEventKind, Sample
from collector.batch import Batch

TS = datetime(2026, 1, 1, tzinfo=UTC)


def sample(point: str) -> Sample:
    return Sample("d", point, TS, 1.0)


def test_sample_count_counts_only_samples_before_and_after_samples_is_read() -> None:
    online = DeviceEvent(DeviceEventKind.ONLINE, "d", TS)
    records = (sample("a"), online, sample("b"), sample("c"))
    counted_first = Batch(records)
    assert counted_first.sample_count == 3
    assert counted_first.samples == [records[0], records[2], records[3]]
    listed_first = Batch(records)
    assert len(listed_first.samples) == 3
    assert listed_first.sample_count == 3
    assert Batch((online,)).sample_count == 0
    assert Batch(()).sample_count == 0


def test_the_cached_count_is_not_part_of_equality_or_the_repr() -> None:
    records = (sample("a"),)
    batch = Batch(records)
    same = Batch(records, batch.id, batch.created_at)
    assert batch.sample_count == 1
    assert batch == same
    assert "_sample_count" not in repr(batch)
