from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from itertools import repeat

import pytest

from adapters.base import Quality, Sample, Value
from collector.store.rollup import (
    HOUR,
    ResolvedSamples,
    _Segment,
    hour_of,
    sort_and_check,
    split_values,
)

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
DEVICE_OF = {1: 10, 2: 10, 3: 20}
POINTS = {"a": 1, "b": 2, "c": 3}


def resolved(samples: list[Sample]) -> ResolvedSamples:
    ordered = sorted(samples, key=lambda s: s.ts)
    return ResolvedSamples(ordered, [POINTS[s.point] for s in ordered], [s.value for s in ordered])


def test_sort_and_check_names_the_naive_sample_among_aware_ones() -> None:
    samples = [Sample("d", "a", T0, 1.0), Sample("lathe", "spindle", datetime(2024, 5, 1), 2.0)]
    with pytest.raises(ValueError, match=r"device 'lathe' point 'spindle'"):
        sort_and_check(samples)


def test_sort_and_check_refuses_a_batch_of_only_naive_time_stamps() -> None:
    with pytest.raises(ValueError, match="timezone-aware UTC"):
        sort_and_check([Sample("d", "a", datetime(2024, 5, 1, 1), 1.0)] * 3)


def test_sort_and_check_orders_by_instant_across_zones() -> None:
    plus8 = datetime(2024, 5, 1, 18, 30, tzinfo=timezone(timedelta(hours=8)))  # 10:30 UTC
    samples = [Sample("d", "a", plus8, 2.0), Sample("d", "a", T0, 1.0)]
    sort_and_check(samples)
    assert [s.value for s in samples] == [1.0, 2.0]


def test_split_values_moves_strings_to_the_text_column() -> None:
    values: list[Value] = [1.5, "on", True, None, 3]
    numbers, texts = split_values(values)
    assert list(numbers) == [1.5, None, True, None, 3]
    assert list(texts) == [None, "on", None, None, None]
    numbers, texts = split_values([1.0, 2.0])
    assert numbers == [1.0, 2.0] and isinstance(texts, repeat)


def test_hour_of_truncates_in_utc() -> None:
    assert hour_of(T0 + timedelta(minutes=59, seconds=59)) == T0
    assert hour_of(T0 + HOUR) == T0 + HOUR


def test_both_aggregation_paths_agree_when_each_point_appears_once() -> None:
    samples = [
        Sample("d", "a", T0 + timedelta(seconds=1), 1.0),
        Sample("d", "b", T0 + timedelta(seconds=2), "on", Quality.BAD),
        Sample("d", "c", T0 + timedelta(seconds=3), None, Quality.UNCERTAIN),
    ]
    r = resolved(samples)
    times = [s.ts for s in r.samples]
    seg = _Segment(T0, r.samples, r.point_ids, times, r.values)
    once = list(seg._rows_once_per_point(DEVICE_OF, Counter()))
    aggregated = list(seg._rows_aggregated(DEVICE_OF, Counter()))
    assert [tuple(row) for row in once] == [tuple(row) for row in aggregated]
    assert once[0][:10] == (1, 10, T0, 1, True, 0, times[0], times[0], times[0], times[0])
    assert once[1][4] == 0 and once[1][8] is None and once[1][11] == "on"


def test_activity_aggregates_per_point_and_hour_with_first_and_last() -> None:
    samples = [
        Sample("d", "a", T0 + timedelta(minutes=m), float(m), q)
        for m, q in ((50, Quality.GOOD), (10, Quality.BAD), (30, Quality.GOOD), (70, Quality.BAD))
    ] + [Sample("d", "b", T0 + timedelta(minutes=5), 9.0, live=False)]
    activity = resolved(samples).activity(DEVICE_OF)
    assert not activity.single_hour
    by_key = {(row[0], row[2]): row for row in activity.rows}
    a10 = by_key[1, T0]
    assert a10[3:10] == (
        3, 2, 0,
        T0 + timedelta(minutes=10), T0 + timedelta(minutes=50),
        T0 + timedelta(minutes=30), T0 + timedelta(minutes=50),
    )  # fmt: skip
    assert a10[10] == 50.0 and a10[13] is False  # not the point's latest hour
    a11 = by_key[1, T0 + HOUR]
    assert a11[3:6] == (1, 0, 0) and a11[13] is True and a11[14] == T0 + timedelta(minutes=10)
    b10 = by_key[2, T0]
    assert b10[3:7] == (0, 0, 1, None) and b10[13] is False


def test_activity_in_one_hour_leaves_the_cross_hour_columns_empty() -> None:
    samples = [Sample("d", "a", T0 + timedelta(seconds=s), 1.0) for s in (3, 1, 2)]
    activity = resolved(samples).activity(DEVICE_OF)
    assert activity.single_hour
    (row,) = list(activity.rows)
    assert row[3] == 3 and row[13] is None and row[14] is None
