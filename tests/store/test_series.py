"""Steps of a series window (the SQL is exercised through the API in tests/api)."""

from datetime import timedelta

import pytest

from collector.store.series import Step, steps
from tests.api.apitest import utc

DAY = timedelta(days=1)


def test_steps_are_anchored_at_the_end_and_the_first_may_be_shorter() -> None:
    start, end = utc(2024, 5, 1, 10), utc(2024, 5, 3, 6)
    assert steps(start, end, DAY) == [
        Step(utc(2024, 5, 1, 10), utc(2024, 5, 2, 6)),
        Step(utc(2024, 5, 2, 6), utc(2024, 5, 3, 6)),
    ]
    assert steps(start, end, end - start) == [Step(start, end)]
    assert len(steps(utc(2024, 5, 1), utc(2024, 5, 31), DAY)) == 30


def test_steps_refuse_unaligned_windows_and_partial_hours() -> None:
    with pytest.raises(ValueError, match="UTC hour"):
        steps(utc(2024, 5, 1, 10, 30), utc(2024, 5, 2), DAY)
    with pytest.raises(ValueError, match="whole number of hours"):
        steps(utc(2024, 5, 1), utc(2024, 5, 2), timedelta(minutes=90))
