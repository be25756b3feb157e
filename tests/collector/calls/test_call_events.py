"""Checking one call event field by field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.calls.events import EventError, parse_event
from collector.calls.files import NOT_JSON, read_events

GOOD = {"id": "e1", "ts": "2026-01-31T23:59:59+08:00", "app": "m1", "outcome": "ok"}


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
