"""Records: the hot-path constructors make exactly what the Sample constructor makes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.base import Quality, Sample, Value, new_sample, new_samples

TS = datetime(2026, 1, 1, tzinfo=UTC)


def test_new_sample_equals_the_constructor() -> None:
    made = new_sample("d", "p", TS, 1.5, Quality.UNCERTAIN, False)
    assert type(made) is Sample
    assert made == Sample("d", "p", TS, 1.5, Quality.UNCERTAIN, live=False)


def test_new_samples_equal_the_constructor_field_for_field() -> None:
    values: list[Value] = [1.5, 2, True, "text", None]
    made = new_samples("d", ["a", "b", "c", "d", "e"], TS, values, Quality.BAD, False)
    assert all(type(s) is Sample for s in made)
    assert made == [
        Sample("d", p, TS, v, Quality.BAD, live=False) for p, v in zip("abcde", values, strict=True)
    ]
    assert [hash(s) for s in made] == [
        hash(Sample("d", s.point, TS, s.value, Quality.BAD, False)) for s in made
    ]
    assert new_samples("d", [], TS, [], Quality.GOOD, True) == []


def test_new_samples_are_immutable_like_the_constructor_s() -> None:
    (made,) = new_samples("d", ["a"], TS, [1.0], Quality.GOOD, True)
    with pytest.raises(AttributeError):
        made.value = 2.0  # type: ignore[misc]


def test_new_samples_refuses_points_and_values_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="2 points but 1 values"):
        new_samples("d", ["a", "b"], TS, [1.0], Quality.GOOD, True)
