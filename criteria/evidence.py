"""Saved evidence: a metrics snapshot with the declarations in force, as one JSON file.

``tally snapshot`` writes this file and ``tally evaluate`` re-evaluates it offline.
The reader also accepts a bare ``MetricsSnapshot``, a report (``tally report
--format json``) and the API's evaluation answer, which all embed ``snapshot`` and
``declarations`` the same way, so an auditor can check any verdict without the
database.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from criteria.snapshot import Declaration, MetricsSnapshot

EVIDENCE_FORMAT: Literal["tally-evidence/1"] = "tally-evidence/1"


class EvidenceError(ValueError):
    """A file that holds no usable snapshot; the message says what was found."""


class EvidenceFile(BaseModel):
    """A snapshot and the operator's declarations, exactly as an evaluation read them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["tally-evidence/1"] = EVIDENCE_FORMAT
    software_version: str | None = None
    saved_at: AwareDatetime | None = None
    snapshot: MetricsSnapshot
    declarations: tuple[Declaration, ...] = Field(
        default=(), description="the declarations in force when the snapshot was taken"
    )


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
        for e in exc.errors()[:5]
    )


def read_evidence(text: str, origin: str) -> EvidenceFile:
    """Parse saved evidence from JSON text; ``origin`` names the file in errors."""
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EvidenceError(f"{origin}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise EvidenceError(f"{origin}: expected a JSON object with a snapshot")
    try:
        if "snapshot" not in data:
            if "window_start" in data:  # a bare MetricsSnapshot
                return EvidenceFile(snapshot=MetricsSnapshot.model_validate(data))
            raise EvidenceError(
                f"{origin}: no snapshot in it; save one with `tally snapshot -o FILE`, "
                "`tally report --format json` or the API's evaluation answer"
            )
        return EvidenceFile(
            software_version=data.get("software_version"),
            saved_at=data.get("saved_at") or data.get("generated_at"),
            snapshot=MetricsSnapshot.model_validate(data["snapshot"]),
            declarations=tuple(
                Declaration.model_validate(d) for d in data.get("declarations") or ()
            ),
        )
    except ValidationError as exc:
        raise EvidenceError(f"{origin}: not a valid snapshot: {_problems(exc)}") from None
