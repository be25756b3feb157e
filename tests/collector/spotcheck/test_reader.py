"""The live reader: bounded reads, bounded concurrency, failures recorded, readings kept."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

import pytest

from adapters.base import Quality, Record, Sample, utcnow
from adapters.control import ControlUnavailable
from collector.spotcheck.reader import LiveReader, Target

pytestmark = pytest.mark.timeout(10)


class FakeAdapter:
    """Answers reads of its devices after `delay` s (unit test: no network)."""

    def __init__(self, devices: set[str], delay: float = 0.0) -> None:
        self.devices = devices
        self.delay = delay
        self.in_flight = 0
        self.most_in_flight = 0

    def controls(self, device: str) -> bool:
        return device in self.devices

    async def read(self, device: str, point: str) -> Sample:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            if device.startswith("down"):
                raise ControlUnavailable(f"device {device!r}: not connected")
            ts = utcnow() - timedelta(minutes=5) if device.startswith("stale") else utcnow()
            return Sample(device, point, ts, 42.5, Quality.GOOD)
        finally:
            self.in_flight -= 1


class ListSink:
    def __init__(self) -> None:
        self.records: list[Record] = []

    async def put(self, record: Record) -> None:
        self.records.append(record)

    async def put_many(self, records: Sequence[Record]) -> None:
        self.records.extend(records)


def _target(key: str, point: str | None = "flow") -> Target:
    return Target(1, key, "modbus", point, "00")


async def test_answers_failures_and_timeouts_are_readings_in_the_targets_order() -> None:
    fast = FakeAdapter({"ok-1", "down-1"})
    slow = FakeAdapter({"slow-1"}, delay=5.0)
    sink = ListSink()
    reader = LiveReader([fast, slow, object()], timeout=0.2, sink=sink)
    targets = [_target("ok-1"), _target("down-1"), _target("slow-1"), _target("elsewhere"),
               _target("ok-1", point=None)]  # fmt: skip
    ok, down, slow_r, elsewhere, no_point = await reader.read_all(targets)
    assert [r.target for r in (ok, down, slow_r, elsewhere, no_point)] == targets
    assert (ok.answered, ok.value, ok.quality, ok.error) == (True, 42.5, Quality.GOOD, None)
    assert ok.latency_ms is not None and ok.read_at is not None
    assert not down.answered and "not connected" in (down.error or "")
    assert not slow_r.answered and "no answer within 0.2 s" in (slow_r.error or "")
    assert slow_r.latency_ms is not None and slow_r.latency_ms >= 200
    assert not elsewhere.answered and "no adapter of this collector" in (elsewhere.error or "")
    assert not no_point.answered and "no registered point" in (no_point.error or "")
    assert [r.device for r in sink.records if isinstance(r, Sample)] == ["ok-1"]


async def test_no_more_reads_run_at_once_than_the_bound() -> None:
    adapter = FakeAdapter({f"d{i}" for i in range(12)}, delay=0.02)
    reader = LiveReader([adapter], timeout=2.0, concurrency=3)
    readings = await reader.read_all([_target(f"d{i}") for i in range(12)])
    assert all(r.answered for r in readings)
    assert adapter.most_in_flight == 3


async def test_a_value_stamped_before_the_read_is_reported_but_not_recorded_again() -> None:
    sink = ListSink()
    reader = LiveReader([FakeAdapter({"stale-1", "ok-1"})], timeout=1.0, sink=sink)
    stale, fresh = await reader.read_all([_target("stale-1"), _target("ok-1")])
    assert stale.answered and stale.value == 42.5
    assert stale.value_ts is not None and stale.read_at is not None
    assert stale.value_ts < stale.read_at - timedelta(minutes=4)
    assert fresh.value_ts is not None and fresh.read_at is not None
    assert fresh.value_ts <= fresh.read_at
    assert [r.device for r in sink.records if isinstance(r, Sample)] == ["ok-1"]


def test_a_reader_needs_a_positive_timeout_and_concurrency() -> None:
    with pytest.raises(ValueError, match="timeout"):
        LiveReader([], timeout=0)
    with pytest.raises(ValueError, match="concurrency"):
        LiveReader([], concurrency=0)
