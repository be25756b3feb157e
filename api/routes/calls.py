"""/v1/calls: call event ingestion (operator) and monthly call figures (auditor)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import AuditorCaller, Now, OperatorCaller, RequestWindow, SettingsDep, Store
from api.schemas import WindowOut
from collector.calls.events import Outcome
from collector.registry.models import AppKind
from collector.store.call_months import DEFINITION, MonthlyGroup, monthly_calls
from collector.store.calls import MAX_BATCH, CallIngest, ZoneMismatch, recorded_zone

router = APIRouter(prefix="/v1/calls", tags=["calls"])


class CallEventIn(BaseModel):
    """One invocation (documentation of the wire form; events are checked one by one)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(max_length=200, description="Event id; an id already recorded is skipped.")
    ts: datetime = Field(description="When the call happened, ISO 8601 with offset.")
    app: str = Field(description="Key of the registered app that was called.")
    enterprise: str | None = Field(None, description="Key of the calling enterprise.")
    user: str | None = Field(None, description="Key of the calling user.")
    developer: str | None = Field(None, description="Key of the calling developer.")
    outcome: Outcome
    duration_ms: float | None = Field(None, ge=0)


class RejectionOut(BaseModel):
    """An event that was not stored."""

    index: int = Field(description="Position of the event in the batch, from 0.")
    event_id: str | None
    reason: str


class IngestOut(BaseModel):
    """What happened to a batch: stored, already recorded, or rejected (with why)."""

    received: int
    stored: int
    duplicates: int = Field(description="Events whose id was already recorded (not counted again).")
    rejected: list[RejectionOut]


class GroupOut(BaseModel):
    """Calls of one group per full month."""

    key: str | None
    calls: dict[str, int]
    ok_calls: dict[str, int]
    total: int
    monthly_average: float | None


class MonthlyOut(BaseModel):
    """Calls per full calendar month of the window, overall and per group."""

    window: WindowOut
    timezone: str
    months: list[str] = Field(description="Full calendar months inside the window, YYYY-MM.")
    group_by: MonthlyGroup | None
    kinds: list[AppKind] | None
    total: GroupOut
    groups: list[GroupOut]
    definition: str


async def call_ingest(request: Request, settings: SettingsDep) -> CallIngest:
    """Return the application's call ingest (one per app: it caches registry keys)."""
    ingest: CallIngest | None = getattr(request.app.state, "call_ingest", None)
    if ingest is None:
        ingest = CallIngest(settings.timezone, source="http")
        request.app.state.call_ingest = ingest
    return ingest


Ingest = Annotated[CallIngest, Depends(call_ingest)]


def _loads(body: bytes) -> Any:
    """Decode JSON with orjson; what it refuses, Python's decoder gets to decide.

    orjson refuses some valid JSON (integers beyond 64 bits) that the event checks then
    reject one event at a time, as they did before, instead of the whole batch.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def _events(body: bytes) -> list[Any]:
    try:
        parsed = _loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"the body is not JSON: {exc}"
        ) from None
    events = parsed.get("events") if isinstance(parsed, dict) else None
    if not isinstance(events, list):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            'expected a JSON object {"events": [...]} holding the call events',
        )
    if len(events) > MAX_BATCH:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"a batch holds at most {MAX_BATCH} events, got {len(events)}; split it",
        )
    return events


@router.post(
    "",
    response_model=IngestOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["events"],
                        "properties": {
                            "events": {
                                "type": "array",
                                "maxItems": MAX_BATCH,
                                "items": CallEventIn.model_json_schema(),
                            }
                        },
                    }
                }
            },
        }
    },
)
async def ingest_calls(
    request: Request, conn: Store, caller: OperatorCaller, ingest: Ingest, now: Now
) -> IngestOut:
    """Record a batch of call events; each is stored once, bad ones are rejected by index.

    Events are checked one by one: a bad event (missing field, no UTC offset, unknown
    app or caller key, time in the future) is rejected with its index and reason and
    the others are stored. An event id already recorded is not stored or counted again.
    """
    events = _events(await request.body())
    try:
        result = await ingest.ingest(conn, events, now)
    except ZoneMismatch as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return IngestOut(
        received=result.received,
        stored=result.stored,
        duplicates=result.duplicates,
        rejected=[
            RejectionOut(index=r.index, event_id=r.event_id, reason=r.reason)
            for r in result.rejected
        ],
    )


@router.get("/monthly", response_model=MonthlyOut)
async def monthly(
    *,
    conn: Store,
    caller: AuditorCaller,
    window: RequestWindow,
    settings: SettingsDep,
    group_by: Annotated[
        MonthlyGroup | None,
        Query(description="Break the calls down by app, kind, category, industry or domain."),
    ] = None,
    kind: Annotated[
        list[AppKind] | None,
        Query(description="Count only these kinds (repeat: kind=mechanism_model&kind=algorithm)."),
    ] = None,
) -> MonthlyOut:
    """Return calls per full calendar month of the window, from the monthly rollup."""
    zone = await recorded_zone(conn) or settings.timezone
    kinds = tuple(kind) if kind else None
    figures = await monthly_calls(
        conn, window.start, window.end, zone, group_by=group_by, kinds=kinds
    )

    def out(group: Any) -> GroupOut:
        average = group.average()
        return GroupOut(
            key=group.key,
            calls=group.calls,
            ok_calls=group.ok_calls,
            total=group.total,
            monthly_average=float(average) if average is not None else None,
        )

    return MonthlyOut(
        window=WindowOut.of(window),
        timezone=zone,
        months=list(figures.months),
        group_by=group_by,
        kinds=list(kinds) if kinds else None,
        total=out(figures.total),
        groups=[out(g) for g in figures.groups],
        definition=DEFINITION,
    )
