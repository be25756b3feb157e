"""/v1/reports: freeze an evaluation into a signed bundle; list, describe and download them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException, Path, Query, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

import criteria
from api.deps import AuditorCaller, Now, SettingsDep, Store
from api.reporting import make_report
from api.schemas import Out
from api.spot_check_schemas import SpotCheckOut
from api.window import WindowError, resolve_window
from collector.bundles.signing import SigningKeyError
from collector.store import reports
from collector.store.spot_checks import spot_check

router = APIRouter(prefix="/v1/reports", tags=["reports"])

MAX_SPOT_CHECKS = 20
"""Spot checks one bundle may carry."""

ReportId = Annotated[UUID, Path(description="The report's id, as POST /v1/reports returned it.")]


class ReportIn(BaseModel):
    """Which evaluation to freeze."""

    model_config = ConfigDict(extra="forbid")

    program: str = Field(description="Programme id, e.g. jiangxi-2022.")
    tier: str = Field(description="Tier id or Chinese name, e.g. enterprise or 企业级.")
    window: str = Field("30d", description="Whole days or hours ending now, e.g. 30d.")
    include_simulated: bool = Field(
        False, description="Count simulated devices too (the report then says it proves nothing)."
    )
    spot_checks: list[int] = Field(
        default_factory=list,
        max_length=MAX_SPOT_CHECKS,
        description="Ids of stored spot checks (POST /v1/spot-checks) to attach to the bundle, "
        "each as spot-checks/<id>.json, signed like every other file.",
    )


class ReportOut(Out):
    """A stored, signed report bundle."""

    id: UUID
    created_at: datetime
    created_by: str
    programme: str
    tier: str
    verdict: str
    window_start: datetime
    window_end: datetime
    window_spec: str | None
    include_simulated: bool
    manifest_sha256: str = Field(description="SHA-256 of manifest.json, which is signed.")
    bundle_sha256: str = Field(description="SHA-256 of the zip as stored and downloaded.")
    key_fingerprint: str = Field(description="SHA-256 of the signing public key (DER).")
    bundle_url: str

    @classmethod
    def of(cls, row: reports.ReportRow) -> ReportOut:
        """Describe a stored report."""
        return cls(
            **row.__dict__,
            bundle_url=f"/v1/reports/{row.id}/bundle",
        )


class ReportPage(Out):
    """Reports, newest first."""

    items: list[ReportOut]
    total: int
    limit: int
    offset: int
    next_offset: int | None


def spot_check_file(check_id: int) -> str:
    """Return the bundle member that holds an attached spot check."""
    return f"spot-checks/{check_id}.json"


@router.post("", response_model=ReportOut, status_code=status.HTTP_201_CREATED)
async def create_report(
    body: ReportIn, conn: Store, caller: AuditorCaller, settings: SettingsDep, now: Now
) -> ReportOut:
    """Evaluate a tier now and freeze it, with every drill-down, into a signed bundle.

    Stored spot checks named in `spot_checks` are attached as `spot-checks/<id>.json`
    (an unknown id: 422, no report made). The bundle is stored (a later download gives the
    same bytes) and the report is appended to the audit log. Verify it offline with
    `tally verify BUNDLE`.
    """
    try:
        ruleset = criteria.load_ruleset(body.program)
        tier = ruleset.tier(body.tier)
    except (criteria.RuleSetError, criteria.UnknownTierError) as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    try:
        window = resolve_window(body.window, None, None, now)
    except WindowError as exc:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "window"),
                    "msg": str(exc),
                    "input": body.window,
                }
            ]
        ) from None
    attached: dict[str, bytes] = {}
    for check_id in dict.fromkeys(body.spot_checks):
        found = await spot_check(conn, check_id)
        if found is None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"spot check {check_id} does not exist (GET /v1/spot-checks lists them); "
                "no report was made",
            )
        answer = SpotCheckOut.model_validate(found).model_dump(mode="json")
        attached[spot_check_file(check_id)] = (
            json.dumps(answer, indent=2, ensure_ascii=False) + "\n"
        ).encode()
    try:
        made = await make_report(
            conn,
            settings=settings,
            ruleset=ruleset,
            tier=tier,
            window=window,
            include_simulated=body.include_simulated,
            now=now,
            actor=f"key:{caller.prefix}",
            extra_files=attached,
        )
    except SigningKeyError as exc:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(exc)) from None
    return ReportOut.of(made.row)


@router.get("", response_model=ReportPage)
async def list_reports(
    conn: Store,
    caller: AuditorCaller,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ReportPage:
    """List stored reports, newest first."""
    total, rows = await reports.page(conn, limit, offset)
    return ReportPage(
        items=[ReportOut.of(r) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
        next_offset=offset + len(rows) if offset + len(rows) < total else None,
    )


@router.get("/{report_id}", response_model=ReportOut)
async def get_report(report_id: ReportId, conn: Store, caller: AuditorCaller) -> ReportOut:
    """Describe one stored report."""
    row = await reports.fetch(conn, report_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no report {report_id}")
    return ReportOut.of(row)


@router.get(
    "/{report_id}/bundle",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
)
async def download_bundle(report_id: ReportId, conn: Store, caller: AuditorCaller) -> Response:
    """Download the signed bundle (zip), byte for byte as it was signed."""
    data = await reports.bundle(conn, report_id)
    if data is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no report {report_id}")
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="tally-report-{report_id}.zip"'},
    )
