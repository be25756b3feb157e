"""GET /v1/counts: connected devices, device types, points and process points in a window."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.counting import compute_counts
from api.deps import AuditorCaller, IncludeSimulated, Now, RequestWindow, Store
from api.schemas import CountsOut
from collector.store import queries

router = APIRouter(prefix="/v1", tags=["counts"])


@router.get("/counts", response_model=CountsOut)
async def counts(
    *,
    conn: Store,
    caller: AuditorCaller,
    window: RequestWindow,
    now: Now,
    include_simulated: IncludeSimulated = False,
    group_by: Annotated[
        queries.GroupBy | None,
        Query(description="Also break the counts down by industry, type, region or protocol."),
    ] = None,
) -> CountsOut:
    """Count from the hourly rollups (never raw samples), stating the definitions in force."""
    return await compute_counts(conn, window, include_simulated, group_by, now)
