from datetime import UTC, datetime, timedelta, timezone

import pytest

from api.window import WindowError, ceil_hour, floor_hour, resolve_window

NOW = datetime(2024, 5, 3, 14, 25, 7, tzinfo=UTC)


def test_default_is_30_days_ending_at_the_end_of_the_current_hour() -> None:
    w = resolve_window(None, None, None, NOW)
    assert w.end == datetime(2024, 5, 3, 15, tzinfo=UTC)
    assert w.start == w.end - timedelta(days=30)
    assert w.hours == 720
    assert w.spec == "30d"
    assert w.requested_end == NOW


@pytest.mark.parametrize(("spec", "hours"), [("24h", 24), ("7d", 168), ("1h", 1), ("365d", 8760)])
def test_relative_windows(spec: str, hours: int) -> None:
    w = resolve_window(spec, None, None, NOW)
    assert w.hours == hours
    assert w.end == datetime(2024, 5, 3, 15, tzinfo=UTC)


@pytest.mark.parametrize("spec", ["30", "d", "0d", "-1d", "1.5d", "30m", "2w", "9999999d", "4000d"])
def test_bad_relative_windows_are_refused(spec: str) -> None:
    with pytest.raises(WindowError) as info:
        resolve_window(spec, None, None, NOW)
    assert info.value.field == "window"
    assert spec in str(info.value)


def test_explicit_window_is_widened_to_whole_hours() -> None:
    start = datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
    end = datetime(2024, 5, 3, 5, 10, tzinfo=UTC)
    w = resolve_window(None, start, end, NOW)
    assert (w.start, w.end) == (
        datetime(2024, 5, 1, 10, tzinfo=UTC),
        datetime(2024, 5, 3, 6, tzinfo=UTC),
    )
    assert (w.requested_start, w.requested_end, w.spec) == (start, end, None)


def test_explicit_window_on_hour_boundaries_is_kept_and_offsets_are_converted() -> None:
    plus8 = timezone(timedelta(hours=8))
    w = resolve_window(
        None, datetime(2024, 5, 1, 8, tzinfo=plus8), datetime(2024, 5, 2, 8, tzinfo=plus8), NOW
    )
    assert w.start == datetime(2024, 5, 1, 0, tzinfo=UTC)
    assert w.end == datetime(2024, 5, 2, 0, tzinfo=UTC)
    assert w.hours == 24


def test_start_alone_ends_now() -> None:
    w = resolve_window(None, datetime(2024, 5, 3, 0, tzinfo=UTC), None, NOW)
    assert w.end == datetime(2024, 5, 3, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("window", "start", "end", "field", "words"),
    [
        ("7d", datetime(2024, 5, 1, tzinfo=UTC), None, "window", "not both"),
        (None, None, datetime(2024, 5, 1, tzinfo=UTC), "start", "without start"),
        (
            None,
            datetime(2024, 5, 2, tzinfo=UTC),
            datetime(2024, 5, 1, tzinfo=UTC),
            "end",
            "not after",
        ),
        (None, datetime(2024, 5, 1), datetime(2024, 5, 2, tzinfo=UTC), "start", "UTC offset"),
        (None, datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2), "end", "UTC offset"),
        (None, datetime(2000, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC), "end", "3660"),
    ],
)
def test_unusable_explicit_windows(
    window: str | None,
    start: datetime | None,
    end: datetime | None,
    field: str,
    words: str,
) -> None:
    with pytest.raises(WindowError, match=words) as info:
        resolve_window(window, start, end, NOW)
    assert info.value.field == field


def test_floor_and_ceil_hour() -> None:
    on = datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert floor_hour(on) == ceil_hour(on) == on
    inside = on + timedelta(microseconds=1)
    assert floor_hour(inside) == on
    assert ceil_hour(inside) == on + timedelta(hours=1)
