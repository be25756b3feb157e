"""POST /v1/devices/{id}/commands and GET /v1/control-ops: verified control operations.

Commands are performed by the collector's control service, which holds the device
sessions; it is reachable when the API runs in the collector's process (`tally run`,
`tally demo`). An API without a collector (`tally serve`) answers 503 and says where to
send the command instead. Listing operations only reads the store, so it works anywhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, status

from api.control_schemas import CommandIn, ControlOpOut, ControlOpPage
from api.deps import AuditorCaller, OperatorCaller, Store
from collector.control import records
from collector.control.outcome import ControlRequest, Kind, Outcome
from collector.control.service import ControlService, ControlStoreUnavailable, DeviceNotFound

router = APIRouter(prefix="/v1", tags=["control"])

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
NO_COLLECTOR = (
    "control requires the collector: this API runs without one (`tally serve`), and only the "
    "collector holds the device sessions. Send the command to the API of `tally run` "
    "(collector and API in one process) at the site of the device."
)

COMMAND_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No registered device with this id."},
    503: {"description": "No collector in this process, or the store is unreachable."},
}


def control_service(request: Request) -> ControlService:
    """Return the in-process control service; 503 when this API runs without a collector."""
    service: ControlService | None = getattr(request.app.state, "control", None)
    if service is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, NO_COLLECTOR)
    return service


def _kind(body: CommandIn) -> Kind:
    if body.method is not None:
        return Kind.METHOD
    return Kind.PROBE if body.probe else Kind.WRITE


@router.post(
    "/devices/{device_id}/commands", response_model=ControlOpOut, responses=COMMAND_RESPONSES
)
async def command(
    *,
    request: Request,
    caller: OperatorCaller,
    device_id: Annotated[int, Path(ge=1)],
    body: CommandIn,
) -> ControlOpOut:
    """Perform a write, probe or method call now; answer with the recorded operation.

    Writes go only to points that are writable and allowed, calls only to configured
    methods; the operation is never retried.
    `outcome` says how it ended: verified, rejected, mismatch, timeout, not_allowed, error.
    """
    service = control_service(request)
    try:
        target = await service.find_device(device_id=device_id)
        op = await service.execute(
            ControlRequest(
                device=target.key,
                point=body.point,
                kind=_kind(body),
                value=body.value,
                requested_by=f"api-key:{caller.prefix}",
                method=body.method,
            )
        )
    except DeviceNotFound:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no registered device with id {device_id}"
        ) from None
    except ControlStoreUnavailable as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": "5"}
        ) from None
    return ControlOpOut.of(op)


@router.get("/control-ops", response_model=ControlOpPage)
async def control_ops(
    *,
    conn: Store,
    caller: AuditorCaller,
    device_id: Annotated[int | None, Query(ge=1, description="Device id.")] = None,
    device: Annotated[str | None, Query(description="Device key.")] = None,
    point: Annotated[str | None, Query(description="Point key.")] = None,
    outcome: Annotated[Outcome | None, Query()] = None,
    kind: Annotated[Kind | None, Query()] = None,
    requested_by: Annotated[
        str | None, Query(description="`api-key:<prefix>` or `schedule`.")
    ] = None,
    start: Annotated[
        datetime | None, Query(description="Requested at or after (ISO 8601 with offset).")
    ] = None,
    end: Annotated[datetime | None, Query(description="Requested before.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ControlOpPage:
    """List recorded control operations, newest first."""
    for name, ts in (("start", start), ("end", end)):
        if ts is not None and ts.utcoffset() is None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_ENTITY,
                f"{name} {ts.isoformat()} has no UTC offset; give one, e.g. ...Z or +08:00",
            )
    filt = records.OpFilter(
        device_id=device_id,
        device=device,
        point=point,
        outcome=outcome,
        kind=kind,
        requested_by=requested_by,
        start=start,
        end=end,
    )
    total, ops = await records.list_ops(conn, filt, limit, offset)
    next_offset = offset + len(ops) if offset + len(ops) < total else None
    return ControlOpPage(
        items=[ControlOpOut.of(op) for op in ops],
        total=total,
        limit=limit,
        offset=offset,
        next_offset=next_offset,
    )
