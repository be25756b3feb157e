"""Checking one call event field by field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.calls.events import MAX_ID, EventError, parse_event, plain_event
from collector.calls.files import NOT_JSON, read_events

GOOD: dict[str, object] = {
    "id": "e1",
    "ts": "2026-01-31T23:59:59+08:00",
    "app": "m1",
    "outcome": "ok",
}


def test_a_good_event_is_normalised_to_utc() -> None:
    event = parse_event({**GOOD, "duration_ms": "12.5", "enterprise": " acme "})
    assert event.ts == datetime(2026, 1, 31, 15, 59, 59, tzinfo=UTC)
    assert (event.duration_ms, event.enterprise, event.user) == (12.5, "acme", None)
    assert parse_event({**GOOD, "ts": 0}).ts == datetime(1970, 1, 1, tzinfo=UTC)
    assert parse_event(event.as_json()) == event


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": None}, "id is missing"),
        ({"ts": "2026-01-31 23:59"}, "no UTC offset"),
        ({"ts": "yesterday"}, "not ISO 8601"),
        ({"ts": True}, "ISO 8601 text or epoch"),
        ({"app": 7}, "app must be a string key"),
        ({"app": "two words"}, "is not a key"),
        ({"outcome": "fine"}, "outcome 'fine' is not one of"),
        ({"duration_ms": -1}, "finite number >= 0"),
        ({"duration_ms": "fast"}, "not a number"),
        ({"colour": "red"}, "unknown field(s) colour"),
    ],
)
def test_each_bad_field_is_named(change: dict[str, object], message: str) -> None:
    raw = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(EventError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_event(raw)


def test_access_logs_are_read_with_line_numbers(tmp_path: Path) -> None:
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"id": "1"}\n\n{oops\n', encoding="utf-8")
    rows = list(read_events(jsonl))
    assert rows[0] == (1, {"id": "1"})
    assert rows[1][0] == 3 and rows[1][1].startswith(NOT_JSON)
    csv = tmp_path / "a.csv"
    csv.write_text("id,ts,app,outcome,user\n1,2026-01-01T00:00:00Z,m1,ok,\n", encoding="utf-8")
    assert list(read_events(csv)) == [
        (2, {"id": "1", "ts": "2026-01-01T00:00:00Z", "app": "m1", "outcome": "ok"})
    ]


PLAIN_SHAPES: list[dict[str, object]] = [
    GOOD,
    {**GOOD, "ts": "2026-01-31T15:59:59Z", "duration_ms": 12.5, "enterprise": "acme"},
    {**GOOD, "duration_ms": 0, "user": "u1", "developer": "d1", "outcome": "denied"},
    {**GOOD, "duration_ms": None, "enterprise": None, "user": ""},
    {**GOOD, "id": "x" * MAX_ID, "ts": "2026-01-31T23:59:59.123456-05:30"},
]
GOOD_OTHER_SHAPES: list[dict[str, object]] = [
    {**GOOD, "enterprise": " acme "},  # stripped
    {**GOOD, "duration_ms": "12.5"},  # a number as text (CSV)
    {**GOOD, "ts": 1_700_000_000},  # epoch seconds
    {**GOOD, "duration_ms": 2**60},  # an integer beyond float's exact range
]
BAD_SHAPES: list[object] = [
    {**GOOD, "id": "x" * (MAX_ID + 1)},
    {**GOOD, "id": ""},
    {**GOOD, "id": 5},
    {**GOOD, "app": "two words"},
    {**GOOD, "ts": "2026-01-31 23:59"},
    {**GOOD, "ts": "yesterday"},
    {**GOOD, "ts": None},
    {**GOOD, "outcome": "fine"},
    {**GOOD, "outcome": ["ok"]},
    {**GOOD, "outcome": {"ok": 1}},
    {**GOOD, "duration_ms": -1},
    {**GOOD, "duration_ms": float("nan")},
    {**GOOD, "duration_ms": float("inf")},
    {**GOOD, "duration_ms": True},
    {**GOOD, "duration_ms": 10**400},
    {**GOOD, "duration_ms": []},
    {**GOOD, "user": 7},
    {**GOOD, "developer": "a b"},
    {**GOOD, "colour": "red"},
    {k: v for k, v in GOOD.items() if k != "ts"},
    {k: v for k, v in GOOD.items() if k != "outcome"},
    ["not", "an", "object"],
    "text",
    None,
]


@pytest.mark.parametrize("raw", PLAIN_SHAPES)
def test_the_fast_path_gives_what_parse_event_gives(raw: dict[str, object]) -> None:
    assert plain_event(raw) == parse_event(raw).fields()
    fields = plain_event(raw)
    assert fields is not None and fields[1].tzinfo == UTC


@pytest.mark.parametrize("raw", GOOD_OTHER_SHAPES)
def test_good_events_in_rarer_shapes_are_left_to_parse_event(raw: dict[str, object]) -> None:
    assert plain_event(raw) is None
    parse_event(raw)


@pytest.mark.parametrize("raw", BAD_SHAPES)
def test_bad_events_leave_the_fast_path_and_get_a_reason(raw: object) -> None:
    assert plain_event(raw) is None
    with pytest.raises(EventError):  # never another exception (a 500 for the whole batch)
        parse_event(raw)


def test_an_unhashable_outcome_or_a_huge_duration_is_a_clear_error() -> None:
    with pytest.raises(EventError, match=r"outcome \['ok'\] is not one of"):
        parse_event({**GOOD, "outcome": ["ok"]})
    with pytest.raises(EventError, match="must be a finite number >= 0"):
        parse_event({**GOOD, "duration_ms": 10**400})
    assert parse_event({**GOOD, "duration_ms": 2**60}).duration_ms == float(2**60)
