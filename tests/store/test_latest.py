from datetime import UTC, datetime, timedelta

from adapters.base import Quality, Sample, Value
from collector.store import statements as sql
from collector.store.latest import PendingLatest
from collector.store.rollup import ResolvedSamples, Rollup

T0 = datetime(2024, 5, 1, 10, tzinfo=UTC)
DEVICE_OF = {1: 10, 2: 10, 3: 20}


def rollup(*spec: tuple[int, int, Value]) -> Rollup:
    samples = sorted(
        (Sample("d", str(p), T0 + timedelta(seconds=s), v) for p, s, v in spec),
        key=lambda s: s.ts,
    )
    return ResolvedSamples.of(
        samples, [int(s.point) for s in samples], [s.value for s in samples]
    ).rollup(DEVICE_OF)


def test_later_batches_replace_and_older_ones_do_not() -> None:
    pending = PendingLatest()
    assert not pending and not pending.due(0)
    pending.add(rollup((1, 10, 1.0), (3, 12, "on")))
    pending.add(rollup((1, 20, 2.0)))  # newer: replaces
    pending.add(rollup((1, 15, 9.0), (2, 16, 3.0)))  # older for 1, new for 2
    assert {p: s.value for p, s in pending.points.items()} == {1: 2.0, 2: 3.0, 3: "on"}
    assert pending.devices == {10: T0 + timedelta(seconds=20), 20: T0 + timedelta(seconds=12)}
    rows = sorted(pending.point_rows())
    assert rows == [
        (1, T0 + timedelta(seconds=20), 2.0, None, Quality.GOOD),
        (2, T0 + timedelta(seconds=16), 3.0, None, Quality.GOOD),
        (3, T0 + timedelta(seconds=12), None, "on", Quality.GOOD),
    ]
    assert sorted(pending.device_rows()) == [
        (sql.DEVICE_LAST, 10, T0 + timedelta(seconds=20)),
        (sql.DEVICE_LAST, 20, T0 + timedelta(seconds=12)),
    ]


def test_due_counts_from_the_oldest_pending_value() -> None:
    pending = PendingLatest()
    pending.add(rollup((1, 0, 1.0)))
    assert pending.since is not None
    assert not pending.due(5, now=pending.since + 4.9)
    assert pending.due(5, now=pending.since + 5)


def test_take_empties_and_put_back_keeps_the_newer_value() -> None:
    pending = PendingLatest()
    pending.add(rollup((1, 10, 1.0), (2, 10, 2.0)))
    taken = pending.take()
    assert not pending and len(taken.points) == 2
    pending.add(rollup((1, 30, 5.0)))  # arrived while the flush ran
    pending.put_back(taken)  # the flush failed
    assert {p: s.value for p, s in pending.points.items()} == {1: 5.0, 2: 2.0}
    assert pending.devices == {10: T0 + timedelta(seconds=30)}
    pending.add(rollup((2, 20, 7.0)))  # still merged by time after put_back
    assert pending.points[2].value == 7.0


def test_a_rollup_without_live_samples_adds_nothing() -> None:
    pending = PendingLatest()
    samples = [Sample("d", "1", T0, 1.0, live=False)]
    pending.add(ResolvedSamples.of(samples, [1], [1.0]).rollup(DEVICE_OF))
    assert not pending and pending.since is None
