"""Registry records from files: CSV with a header row, a JSON array, or JSON lines.

CSV cells that are empty are left out (the field takes its default); ``languages``
is split on ``;``; booleans accept true/false, yes/no, 1/0. A JSON file holds an
array of objects (or ``{"items": [...]}``); a ``.jsonl``/``.ndjson`` file one object a
line. Every record is validated; the first bad one fails the file with its line.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from collector.registry.models import MODELS, Record, Resource

LIST_FIELDS = frozenset({"languages"})


class RecordFileError(ValueError):
    """A registry file that cannot be imported; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class RecordFile:
    """The records of a file and the SHA-256 of its bytes."""

    path: Path
    records: list[Record]
    sha256: str


def _rows(path: Path, text: str) -> list[tuple[int, Any]]:
    """Return (line, raw object) pairs for the file's format, chosen by its extension."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        out: list[tuple[int, Any]] = []
        for row in reader:
            if None in row:
                raise RecordFileError(f"{path}:{reader.line_num}: more cells than header columns")
            cells = {k.strip(): v.strip() for k, v in row.items() if v is not None and v.strip()}
            for name in LIST_FIELDS & cells.keys():
                cells[name] = [p.strip() for p in cells[name].split(";") if p.strip()]
            out.append((reader.line_num, cells))
        return out
    if suffix in {".jsonl", ".ndjson"}:
        out = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    out.append((number, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise RecordFileError(f"{path}:{number}: not JSON: {exc.msg}") from None
        return out
    if suffix == ".json":
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RecordFileError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
        items = parsed.get("items") if isinstance(parsed, dict) else parsed
        if not isinstance(items, list):
            raise RecordFileError(f'{path}: expected a JSON array of records or {{"items": [...]}}')
        return [(index + 1, item) for index, item in enumerate(items)]
    raise RecordFileError(f"{path}: unknown format {suffix!r}; use .csv, .json, .jsonl or .ndjson")


def read_records(resource: Resource, path: Path) -> RecordFile:
    """Read and validate every record of a file; raise RecordFileError naming the first bad one."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecordFileError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RecordFileError(f"{path}: not UTF-8 text") from None
    model = MODELS[resource]
    where = "record" if path.suffix.lower() == ".json" else "line"
    records: list[Record] = []
    for number, raw in _rows(path, text):
        try:
            records.append(model.model_validate(raw))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '<record>'}: {e['msg']}"
                for e in exc.errors()
            )
            raise RecordFileError(f"{path} {where} {number}: {problems}") from None
    return RecordFile(path, records, hashlib.sha256(data).hexdigest())
