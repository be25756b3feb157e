from datetime import UTC, date, datetime

import pytest

from collector.store.queries import ALL_HOURS, HourMask


def _bits(mask: int) -> list[int]:
    return [h for h in range(24) if mask >> h & 1]


def test_hour_mask_of_a_window_within_one_day() -> None:
    mask = HourMask.of(datetime(2024, 5, 1, 3, tzinfo=UTC), datetime(2024, 5, 1, 7, tzinfo=UTC))
    assert mask.first_day == mask.last_day == date(2024, 5, 1)
    assert _bits(mask.first_mask & mask.last_mask) == [3, 4, 5, 6]


def test_hour_mask_across_days_covers_the_edges_exactly() -> None:
    mask = HourMask.of(datetime(2024, 5, 1, 22, tzinfo=UTC), datetime(2024, 5, 3, 1, tzinfo=UTC))
    assert (mask.first_day, mask.last_day) == (date(2024, 5, 1), date(2024, 5, 3))
    assert _bits(mask.first_mask) == [22, 23]
    assert _bits(mask.last_mask) == [0]


def test_window_ending_at_midnight_ends_on_the_previous_day() -> None:
    mask = HourMask.of(datetime(2024, 5, 1, 0, tzinfo=UTC), datetime(2024, 5, 2, 0, tzinfo=UTC))
    assert mask.first_day == mask.last_day == date(2024, 5, 1)
    assert mask.first_mask == mask.last_mask == ALL_HOURS


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2024, 5, 1, 0, 30, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC)),
        (datetime(2024, 5, 1), datetime(2024, 5, 2)),
        (datetime(2024, 5, 2, tzinfo=UTC), datetime(2024, 5, 1, tzinfo=UTC)),
    ],
)
def test_unaligned_or_empty_windows_are_refused(start: datetime, end: datetime) -> None:
    with pytest.raises(ValueError, match="window"):
        HourMask.of(start, end)
