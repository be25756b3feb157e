import random
from datetime import UTC, datetime, timedelta, timezone
from itertools import repeat

import pytest

from adapters.base import Quality, Sample, Value
from collector.store.rollup import (
    HOUR,
    ResolvedSamples,
    Rollup,
    SampleColumns,
    check_values,
    hour_of,
    sort_and_check,
    split_values,
)

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
DEVICE_OF = {1: 10, 2: 10, 3: 20}
POINTS = {"a": 1, "b": 2, "c": 3}


def resolved(samples: list[Sample]) -> ResolvedSamples:
    ordered = sorted(samples, key=lambda s: s.ts)
    return ResolvedSamples.of(
        ordered, [POINTS[s.point] for s in ordered], [s.value for s in ordered]
    )


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


def test_rollup_counts_each_device_hour_exactly_and_lists_good_points() -> None:
    samples = [
        Sample("d", "a", T0 + timedelta(minutes=m), float(m), q)
        for m, q in ((50, Quality.GOOD), (10, Quality.BAD), (30, Quality.GOOD), (70, Quality.BAD))
    ] + [
        Sample("d", "b", T0 + timedelta(minutes=20), "on"),
        Sample("e", "c", T0 + timedelta(minutes=5), 1.0, Quality.UNCERTAIN),
    ]
    rollup = resolved(samples).rollup(DEVICE_OF)
    by_key = {(row[0], row[1]): row for row in rollup.device_hours}
    assert set(by_key) == {(10, T0), (10, T0 + HOUR), (20, T0)}
    # device 10 in hour 10: a@10 (bad), b@20, a@30, a@50 (good)
    assert by_key[10, T0][2:] == (
        4, 3, 0,
        T0 + timedelta(minutes=10), T0 + timedelta(minutes=50),
        T0 + timedelta(minutes=20), T0 + timedelta(minutes=50),
    )  # fmt: skip
    assert by_key[10, T0 + HOUR][2:] == (
        1, 0, 0, T0 + timedelta(minutes=70), T0 + timedelta(minutes=70), None, None
    )  # fmt: skip
    assert by_key[20, T0][2:5] == (1, 0, 0)
    assert {h: sorted(set(p)) for h, p in rollup.good_points.items()} == {
        T0: [1, 2],
        T0 + HOUR: [],
    }
    assert rollup.point_last[1].value == 70.0 and rollup.point_last[2].value == "on"
    assert rollup.point_first() == {
        1: T0 + timedelta(minutes=10),
        2: T0 + timedelta(minutes=20),
        3: T0 + timedelta(minutes=5),
    }
    assert rollup.device_first() == {10: T0 + timedelta(minutes=10), 20: T0 + timedelta(minutes=5)}
    assert rollup.device_last == {10: T0 + timedelta(minutes=70), 20: T0 + timedelta(minutes=5)}
    assert (rollup.live_first, rollup.live_last) == (
        T0 + timedelta(minutes=5),
        T0 + timedelta(minutes=70),
    )


def test_rollup_agrees_with_a_per_sample_oracle_over_random_batches() -> None:
    rng = random.Random(7)
    points = [(p, 1 + p % 3) for p in range(1, 10)]
    device_of = dict(points)
    for _ in range(50):
        samples, ids = [], []
        for _ in range(rng.randrange(1, 80)):
            point, _device = rng.choice(points)
            ts = T0 + timedelta(seconds=rng.randrange(0, 3 * 3600))
            quality = rng.choice([Quality.GOOD, Quality.GOOD, Quality.BAD])
            samples.append(Sample("d", str(point), ts, 1.0, quality, live=rng.random() > 0.1))
            ids.append(point)
        order = sorted(range(len(samples)), key=lambda i: samples[i].ts)
        ordered = [samples[i] for i in order]
        rollup = ResolvedSamples.of(ordered, [ids[i] for i in order], [1.0] * len(order)).rollup(
            device_of
        )
        expected: dict[tuple[int, datetime], list[int]] = {}
        for s in ordered:
            row = expected.setdefault((device_of[int(s.point)], hour_of(s.ts)), [0, 0, 0])
            row[0] += s.live
            row[1] += s.live and s.quality == Quality.GOOD
            row[2] += not s.live
        assert {(r[0], r[1]): list(r[2:5]) for r in rollup.device_hours} == expected
        good = {(int(s.point), hour_of(s.ts)) for s in ordered if s.live and not s.quality}
        assert {(p, h) for h, ps in rollup.good_points.items() for p in ps} == good
        live = [s for s in ordered if s.live]
        assert rollup.point_first() == {int(s.point): s.ts for s in reversed(live)}
        assert {p: s.ts for p, s in rollup.point_last.items()} == {int(s.point): s.ts for s in live}


def test_sample_columns_are_the_fields_of_the_samples_in_order() -> None:
    samples = [Sample("d", "a", T0, 1.5), Sample("e", "b", T0 + HOUR, "on", Quality.BAD, False)]
    columns = SampleColumns.of(samples)
    assert list(columns.devices) == ["d", "e"] and list(columns.points) == ["a", "b"]
    assert list(columns.times) == [T0, T0 + HOUR] and list(columns.values) == [1.5, "on"]
    assert list(columns.qualities) == [Quality.GOOD, Quality.BAD]
    assert list(columns.lives) == [True, False]
    assert SampleColumns.of([]) == ((), (), (), (), (), ())


def test_resolved_samples_from_columns_equal_those_from_the_samples() -> None:
    # The writer passes the group's columns and value types; the result must not change.
    rng = random.Random(5)
    choices: list[Value] = [1.5, 2, True, None, "on", -0.0]
    for round_ in range(40):
        live = round_ % 2 == 0  # every other batch all live (the writer's usual case)
        samples = sorted(
            (
                Sample(
                    "d",
                    str(rng.randrange(1, 4)),
                    T0 + timedelta(seconds=rng.randrange(0, 2 * 3600)),
                    rng.choice(choices),
                    rng.choice(list(Quality)),
                    live or rng.random() > 0.2,
                )
                for _ in range(rng.randrange(1, 50))
            ),
            key=lambda s: s.ts,
        )
        ids = [int(s.point) for s in samples]
        values = [s.value for s in samples]
        plain = ResolvedSamples.of(samples, ids, values)
        columns = SampleColumns.of(samples)
        types = set(map(type, columns.values))
        check_values(samples, columns.values, types)
        fast = ResolvedSamples.of(samples, ids, columns.values, columns, types)
        assert list(fast.copy_rows()) == list(plain.copy_rows())
        assert facts(fast.rollup(DEVICE_OF)) == facts(plain.rollup(DEVICE_OF))


def facts(rollup: Rollup) -> tuple[object, ...]:
    """Everything a rollup tells, independent of the sequence types it holds."""
    return (
        rollup.device_hours,
        {hour: list(points) for hour, points in rollup.good_points.items()},
        rollup.point_last,
        rollup.device_last,
        rollup.live_first,
        rollup.live_last,
        rollup.point_first(),
        rollup.device_first(),
    )


def test_check_values_with_the_types_given_names_the_bad_sample() -> None:
    samples = [Sample("d", "a", T0, 1.0), Sample("lathe", "spindle", T0, [1])]  # type: ignore[arg-type]
    values = [s.value for s in samples]
    with pytest.raises(ValueError, match=r"device 'lathe' point 'spindle'.*list"):
        check_values(samples, values, set(map(type, values)))


def test_imported_samples_count_only_as_imported() -> None:
    samples = [
        Sample("d", "a", T0 + timedelta(minutes=5), 9.0, live=False),
        Sample("d", "a", T0 + timedelta(minutes=65), 9.0, live=False),
        Sample("d", "b", T0 + timedelta(minutes=6), 1.0),
    ]
    rollup = resolved(samples).rollup(DEVICE_OF)
    assert sorted(rollup.device_hours, key=lambda r: r[1]) == [
        (10, T0, 1, 1, 1, *[T0 + timedelta(minutes=6)] * 4),
        (10, T0 + HOUR, 0, 0, 1, None, None, None, None),
    ]
    assert list(rollup.point_last) == [2] and rollup.point_first() == {2: samples[2].ts}


def test_a_batch_of_only_imported_samples_has_no_live_range() -> None:
    rollup = resolved([Sample("d", "a", T0, 1.0, live=False)]).rollup(DEVICE_OF)
    assert rollup.device_hours == [(10, T0, 0, 0, 1, None, None, None, None)]
    assert rollup.live_first is None and rollup.good_points == {} and rollup.point_last == {}


@pytest.mark.parametrize("quality", [Quality.GOOD, Quality.BAD])
def test_rollup_of_one_quality_has_the_rows_of_a_per_sample_oracle(quality: Quality) -> None:
    rng = random.Random(11)
    points = [(p, 1 + p % 3) for p in range(1, 10)]
    device_of = dict(points)
    for _ in range(30):
        drawn = sorted(
            (T0 + timedelta(seconds=rng.randrange(0, 2 * 3600)), rng.choice(points)[0])
            for _ in range(rng.randrange(1, 60))
        )
        samples = [Sample("d", str(p), ts, 1.0, quality) for ts, p in drawn]
        rollup = ResolvedSamples.of(samples, [p for _, p in drawn], [1.0] * len(drawn)).rollup(
            device_of
        )
        expected: dict[tuple[int, datetime], tuple[object, ...]] = {}
        for ts, p in drawn:
            key = (device_of[p], hour_of(ts))
            mine = [t for t, q in drawn if (device_of[q], hour_of(t)) == key]
            good = quality is Quality.GOOD
            expected[key] = (
                len(mine),
                len(mine) if good else 0,
                0,
                min(mine),
                max(mine),
                min(mine) if good else None,
                max(mine) if good else None,
            )
        assert {(r[0], r[1]): r[2:] for r in rollup.device_hours} == expected
        good_points = {(p, hour_of(ts)) for ts, p in drawn} if quality is Quality.GOOD else set()
        assert {(p, h) for h, ps in rollup.good_points.items() for p in ps} == good_points
