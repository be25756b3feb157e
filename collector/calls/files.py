"""Call events from access logs: JSON lines (one event a line) or CSV with a header row.

CSV columns are the event's fields (id, ts, app, enterprise, user, developer, outcome,
duration_ms); empty cells are left out. Lines are read lazily, so a large log is
streamed; a line that is not JSON is reported as rejected with its line number.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

# A line that could not be read as an object is handed on as this, so the ingest rejects it.
NOT_JSON = "not JSON"


def _csv(handle: IO[str]) -> Iterator[tuple[int, Any]]:
    reader = csv.DictReader(handle)
    for row in reader:
        cells = {k.strip(): v.strip() for k, v in row.items() if k is not None and v and v.strip()}
        yield reader.line_num, cells


def _jsonl(handle: IO[str]) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(handle, 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"{NOT_JSON}: {exc.msg}"


def read_events(path: Path) -> Iterator[tuple[int, Any]]:
    """Yield (line number, raw event) for every event of a .csv or JSON-lines file."""
    suffix = path.suffix.lower()
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if suffix == ".csv":
            yield from _csv(handle)
        else:
            yield from _jsonl(handle)
