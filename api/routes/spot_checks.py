"""POST /v1/spot-checks and GET /v1/spot-checks[/{id}]: live reads of seed-picked devices.

A spot check reads devices, so it needs the collector that holds their sessions: it runs
when the API is in the collector's process (`tally run`, `tally demo`); an API without one
(`tally serve`) answers 503 and says where to send it. Reading stored spot checks works
anywhere.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError

from api.deps import AuditorCaller, Now, Pool, Store
from api.spot_check_schemas import SpotCheckIn, SpotCheckOut, SpotCheckPage, SpotCheckSummaryOut
from api.window import WindowError, resolve_window
from collector.spotcheck.check import SpotCheckRequest, perform
from collector.spotcheck.reader import LiveReader
from collector.spotcheck.selection import RULE
from collector.store import spot_checks

router = APIRouter(prefix="/v1", tags=["spot checks"])

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
NO_COLLECTOR = (
    "spot checks read devices live and need the collector: this API runs without one "
    "(`tally serve`), and only the collector holds the device sessions. Send the spot check "
    "to the API of `tally run` (collector and API in one process) at the site of the devices."
)


def live_reader(request: Request) -> LiveReader:
    """Return the in-process live reader; 503 when this API runs without a collector."""
    reader: LiveReader | None = getattr(request.app.state, "spot_reader", None)
    if reader is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, NO_COLLECTOR)
    return reader


@router.post(
    "/spot-checks",
    response_model=SpotCheckOut,
    status_code=status.HTTP_201_CREATED,
    responses={503: {"description": "No collector in this process."}},
    description=(
        "Pick `sample_size` devices among those counted as connected in `window`, "
        "deterministically from `seed`, read one point of each live, now, and record the "
        f"outcome (also in the audit log). Selection: {RULE} The point read is the device's "
        "point whose latest sample was good and most recent. Each read is bounded by "
        "control.timeout; a reading that answers is also recorded as a sample."
    ),
)
async def create_spot_check(
    *, request: Request, pool: Pool, caller: AuditorCaller, now: Now, body: SpotCheckIn
) -> Any:
    """Run a spot check now and answer with the stored result."""
    reader = live_reader(request)
    try:
        window = resolve_window(body.window, None, None, now)
    except WindowError as exc:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("body", "window"), "msg": str(exc),
              "input": body.window}]
        ) from None  # fmt: skip
    return await perform(
        pool,
        reader,
        SpotCheckRequest(
            requested_by=f"api-key:{caller.prefix}",
            seed=body.seed,
            sample_size=body.sample_size,
            window_spec=window.spec or body.window,
            window_start=window.start,
            window_end=window.end,
            include_simulated=body.include_simulated,
        ),
    )


@router.get(
    "/spot-checks/{check_id}",
    response_model=SpotCheckOut,
    responses={404: {"description": "No spot check with this id."}},
)
async def get_spot_check(
    *, conn: Store, caller: AuditorCaller, check_id: Annotated[int, Path(ge=1)]
) -> Any:
    """Return a stored spot check with every device it read."""
    found = await spot_checks.spot_check(conn, check_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no spot check with id {check_id}")
    return found


@router.get("/spot-checks", response_model=SpotCheckPage)
async def list_spot_checks(
    *,
    conn: Store,
    caller: AuditorCaller,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> SpotCheckPage:
    """List stored spot checks, newest first, without their devices."""
    total, items = await spot_checks.spot_check_page(conn, limit, offset)
    next_offset = offset + len(items) if offset + len(items) < total else None
    return SpotCheckPage(
        items=[SpotCheckSummaryOut.model_validate(i) for i in items],
        total=total,
        limit=limit,
        offset=offset,
        next_offset=next_offset,
    )
