from datetime import UTC, datetime, timedelta

from adapters.base import Quality, Sample
from collector.store import statements as sql
from collector.store.known import KnownState
from collector.store.rollup import HOUR, ResolvedSamples, Rollup

T0 = datetime(2024, 5, 1, 10, tzinfo=UTC)
DEVICE_OF = {1: 10, 2: 10, 3: 20}


def rollup(*spec: tuple[int, timedelta, Quality]) -> Rollup:
    samples = sorted(
        (Sample("d", str(p), T0 + dt, 1.0, q) for p, dt, q in spec), key=lambda s: s.ts
    )
    return ResolvedSamples.of(
        samples, [int(s.point) for s in samples], [1.0] * len(samples)
    ).rollup(DEVICE_OF)


GOOD, BAD = Quality.GOOD, Quality.BAD


def test_a_cold_cache_plans_everything_and_a_remembered_plan_nothing() -> None:
    known = KnownState()
    first = rollup((1, timedelta(0), GOOD), (2, timedelta(minutes=1), BAD), (3, timedelta(2), GOOD))
    plan = known.plan(first)
    assert plan.good_hours == {T0: {1}, T0 + timedelta(days=2): {3}}
    assert plan.point_first == {1: T0, 2: T0 + timedelta(minutes=1), 3: T0 + timedelta(days=2)}
    assert plan.device_first == {10: T0, 20: T0 + timedelta(days=2)}
    assert sorted(plan.key_rows()) == sorted(
        [
            (sql.GOOD_HOUR, 1, T0),
            (sql.GOOD_HOUR, 3, T0 + timedelta(days=2)),
            (sql.POINT_FIRST, 1, T0),
            (sql.POINT_FIRST, 2, T0 + timedelta(minutes=1)),
            (sql.POINT_FIRST, 3, T0 + timedelta(days=2)),
            (sql.DEVICE_FIRST, 10, T0),
            (sql.DEVICE_FIRST, 20, T0 + timedelta(days=2)),
        ]
    )
    known.remember(plan)
    again = known.plan(rollup((1, timedelta(days=2, minutes=5), GOOD)))
    # Point 1 is known, but its bit for the hour of day 2 is not.
    assert again.good_hours == {T0 + timedelta(days=2): {1}} and not again.point_first


def test_a_plan_that_is_not_remembered_is_planned_again() -> None:
    known = KnownState()
    batch = rollup((1, timedelta(0), GOOD))
    assert known.plan(batch)  # not remembered: its transaction did not commit
    assert known.plan(batch).good_hours == {T0: {1}}


def test_known_bits_and_first_seen_plan_nothing() -> None:
    known = KnownState()
    known.remember(known.plan(rollup((1, timedelta(0), GOOD), (2, timedelta(0), GOOD))))
    later = known.plan(rollup((1, timedelta(minutes=30), GOOD), (2, timedelta(minutes=40), BAD)))
    assert not later


def test_an_older_sample_of_a_known_point_plans_its_first_seen() -> None:
    known = KnownState()
    known.remember(known.plan(rollup((1, timedelta(minutes=30), GOOD), (3, timedelta(0), GOOD))))
    plan = known.plan(rollup((1, timedelta(minutes=10), GOOD), (3, timedelta(minutes=20), GOOD)))
    assert plan.point_first == {1: T0 + timedelta(minutes=10)}  # point 3 is not older
    assert plan.device_first == {10: T0 + timedelta(minutes=10)}
    assert not plan.good_hours


def test_only_the_latest_hours_are_kept() -> None:
    known = KnownState(hours_kept=2)
    for h in range(4):
        known.remember(known.plan(rollup((1, HOUR * h, GOOD))))
    assert known.plan(rollup((1, HOUR * 3, GOOD))).good_hours == {}
    assert known.plan(rollup((1, HOUR * 2, GOOD))).good_hours == {}
    assert known.plan(rollup((1, HOUR * 1, GOOD))).good_hours == {T0 + HOUR: {1}}


def test_forget_empties_the_cache() -> None:
    known = KnownState()
    batch = rollup((1, timedelta(0), GOOD))
    known.remember(known.plan(batch))
    known.forget()
    assert known.plan(batch).good_hours == {T0: {1}}
