"""/v1/programs: the programmes, their tiers and rules, and a tier's evaluation over a window."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

import criteria
from api.deps import AuditorCaller, IncludeSimulated, Now, RequestWindow, SettingsDep, Store
from api.evaluating import evaluate_in
from api.schemas_criteria import EvaluationOut, ProgrammeOut
from collector import __version__
from collector.store import queries
from criteria import RuleSet
from criteria.report import Lang, build_report, render

router = APIRouter(prefix="/v1/programs", tags=["programs"])

ProgramId = Annotated[str, Path(description="Programme id, e.g. jiangxi-2022.")]
TierId = Annotated[str, Path(description="Tier id or Chinese name, e.g. enterprise or 企业级.")]


def _ruleset(program: str) -> RuleSet:
    try:
        return criteria.load_ruleset(program)
    except criteria.RuleSetError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


def _tier(ruleset: RuleSet, tier: str) -> criteria.Tier:
    try:
        return ruleset.tier(tier)
    except criteria.UnknownTierError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


@router.get("", response_model=list[ProgrammeOut])
async def list_programs(caller: AuditorCaller) -> list[ProgrammeOut]:
    """Every bundled programme with its tiers and rules (clause, text, gloss, check)."""
    return [ProgrammeOut.of(criteria.load_ruleset(p)) for p in criteria.list_programs()]


@router.get("/{program}", response_model=ProgrammeOut)
async def get_program(program: ProgramId, caller: AuditorCaller) -> ProgrammeOut:
    """One programme with its tiers and rules."""
    return ProgrammeOut.of(_ruleset(program))


async def _evaluate(
    *,
    program: str,
    tier: str,
    conn: Store,
    settings: SettingsDep,
    window: RequestWindow,
    now: Now,
    include_simulated: bool,
) -> EvaluationOut:
    ruleset = _ruleset(program)
    tier_obj = _tier(ruleset, tier)
    async with queries.snapshot(conn):
        out, _ = await evaluate_in(
            conn,
            settings=settings,
            ruleset=ruleset,
            tier=tier_obj,
            window=window,
            include_simulated=include_simulated,
            now=now,
        )
    return out


@router.get("/{program}/tiers/{tier}/evaluation", response_model=EvaluationOut)
async def evaluate_tier(
    *,
    program: ProgramId,
    tier: TierId,
    conn: Store,
    caller: AuditorCaller,
    settings: SettingsDep,
    window: RequestWindow,
    now: Now,
    include_simulated: IncludeSimulated = False,
) -> EvaluationOut:
    """Evaluate a tier over the window from the rollups and the declarations in force."""
    return await _evaluate(
        program=program,
        tier=tier,
        conn=conn,
        settings=settings,
        window=window,
        now=now,
        include_simulated=include_simulated,
    )


@router.get(
    "/{program}/tiers/{tier}/report",
    response_class=Response,
    responses={200: {"content": {"text/html": {}, "text/markdown": {}, "application/json": {}}}},
)
async def report_tier(
    *,
    program: ProgramId,
    tier: TierId,
    conn: Store,
    caller: AuditorCaller,
    settings: SettingsDep,
    window: RequestWindow,
    now: Now,
    include_simulated: IncludeSimulated = False,
    format: Annotated[str, Query(pattern="^(json|md|html)$")] = "html",
    lang: Annotated[Lang, Query(description="Label language: zh, en or both.")] = "both",
) -> Response:
    """Render the evaluation as a report (HTML by default, self-contained)."""
    out = await _evaluate(
        program=program,
        tier=tier,
        conn=conn,
        settings=settings,
        window=window,
        now=now,
        include_simulated=include_simulated,
    )
    report = build_report(
        out.evaluation,
        out.snapshot,
        out.declarations,
        software_version=__version__,
        generated_at=now,
    )
    if format == "html":
        return HTMLResponse(render(report, "html", lang))
    if format == "md":
        return PlainTextResponse(render(report, "md", lang), media_type="text/markdown")
    return Response(render(report, "json", lang), media_type="application/json")
