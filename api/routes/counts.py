"""GET /v1/counts: connected devices, types, points and process points; and their series."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError

from api.counting import BASE_DEFINITIONS, compute_counts, simulated_definition
from api.deps import AuditorCaller, IncludeSimulated, Now, RequestWindow, Store
from api.schemas import CountsOut, CountsSeriesOut, SeriesPointOut, WindowOut
from api.window import HOUR, WindowError, parse_relative
from collector.store import queries
from collector.store.series import device_series

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


MAX_STEPS = 1000

SERIES_DEFINITION = (
    "Each point counts one step [start, end) of the window exactly as /v1/counts counts a "
    "window (connected_devices, device_types, managed_devices, managed_device_types as defined "
    "there), from the hourly device_activity rollup and control_op, never raw samples. Steps "
    "are anchored at the window's end, so the last point equals /v1/counts over "
    "[end - step, end); the first step is shorter when the window is not a whole number of "
    "steps. A device counts in every step in which it was connected."
)


def _step_error(step: str, message: str) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", "step"), "msg": message, "input": step}]
    )


@router.get("/counts/series", response_model=CountsSeriesOut)
async def counts_series(
    *,
    conn: Store,
    caller: AuditorCaller,
    window: RequestWindow,
    now: Now,
    include_simulated: IncludeSimulated = False,
    step: Annotated[
        str, Query(description="Length of each step: whole days or hours such as 1d or 6h.")
    ] = "1d",
) -> CountsSeriesOut:
    """Count connected and managed devices per step of the window, from the rollups."""
    try:
        span = parse_relative(step)
    except WindowError:
        raise _step_error(
            step, f"step {step!r} is not understood; use whole days or hours such as 1d or 6h"
        ) from None
    if span > window.end - window.start:
        raise _step_error(step, f"step {step} is longer than the window ({window.hours} h)")
    if (window.end - window.start) / span > MAX_STEPS:
        raise _step_error(
            step,
            f"step {step} makes more than {MAX_STEPS} points over this window; take a longer one",
        )
    async with queries.snapshot(conn):
        rows = await device_series(conn, window.start, window.end, span, include_simulated)
    definitions = {
        key: BASE_DEFINITIONS[key]
        for key in ("window", "connected_devices", "device_types", "managed_devices")
    }
    definitions["managed_device_types"] = BASE_DEFINITIONS["managed_device_types"]
    definitions["series"] = SERIES_DEFINITION
    definitions["simulated"] = simulated_definition(include_simulated)
    return CountsSeriesOut(
        window=WindowOut.of(window),
        step=step.strip(),
        step_hours=int(span / HOUR),
        include_simulated=include_simulated,
        points=[
            SeriesPointOut(
                start=r.start,
                end=r.end,
                connected_devices=r.connected_devices,
                device_types=r.device_types,
                managed_devices=r.managed_devices,
                managed_device_types=r.managed_device_types,
            )
            for r in rows
        ],
        definitions=definitions,
        generated_at=now,
    )
