"""Drill-down lists as CSV (RFC 4180: CRLF line ends, a header line, quotes where needed)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from api.schemas_drilldowns import DrillAppOut, DrillDeviceOut, DrillPointOut


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def write_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Render a header and rows as CSV text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return buffer.getvalue()


def devices_csv(items: Sequence[DrillDeviceOut]) -> str:
    """Render devices, one per line, in the order of the JSON fields."""
    header = list(DrillDeviceOut.model_fields)
    return write_csv(header, ([getattr(i, f) for f in header] for i in items))


def points_csv(items: Sequence[DrillPointOut]) -> str:
    """Render points, one per line, in the order of the JSON fields."""
    header = list(DrillPointOut.model_fields)
    return write_csv(header, ([getattr(i, f) for f in header] for i in items))


def apps_csv(items: Sequence[DrillAppOut], months: Sequence[str]) -> str:
    """Render apps, one per line, with one calls_YYYY-MM column per full month."""
    fields = [f for f in DrillAppOut.model_fields if f != "calls"]
    header = fields + [f"calls_{m}" for m in months]
    return write_csv(
        header, ([getattr(i, f) for f in fields] + [i.calls[m] for m in months] for i in items)
    )
