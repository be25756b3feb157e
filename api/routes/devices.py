"""GET /v1/devices and /v1/devices/{device_id}: the device list behind every count."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from api.deps import AuditorCaller, IncludeSimulated, RequestWindow, Store
from api.industries import is_process_industry
from api.schemas import DeviceDetailOut, DeviceOut, DevicePage, PointOut, WindowOut
from collector.store import queries

router = APIRouter(prefix="/v1/devices", tags=["devices"])

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def device_out(row: queries.DeviceRow) -> DeviceOut:
    """Turn a stored device row into its response model."""
    return DeviceOut(
        id=row.id,
        key=row.key,
        name=row.name,
        protocol=row.protocol,
        endpoint=row.endpoint,
        device_type=row.device_type,
        industry=row.industry,
        process_industry=is_process_industry(row.industry),
        region=row.region,
        park=row.park,
        enterprise=row.enterprise,
        simulated=row.simulated,
        identity=row.identity,
        status=row.status,
        status_changed_at=row.status_changed_at,
        registered_at=row.registered_at,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        connected=row.good_samples > 0,
        samples=row.samples,
        good_samples=row.good_samples,
        imported_samples=row.imported_samples,
        first_sample=row.first_sample,
        last_sample=row.last_sample,
        first_good_sample=row.first_good_sample,
        last_good_sample=row.last_good_sample,
    )


@router.get("", response_model=DevicePage)
async def list_devices(
    *,
    conn: Store,
    caller: AuditorCaller,
    window: RequestWindow,
    include_simulated: IncludeSimulated = False,
    status_: Annotated[
        queries.DeviceStatusFilter | None,
        Query(
            alias="status",
            description="connected: a good live sample in the window; online/offline: the "
            "device's current status.",
        ),
    ] = None,
    industry: Annotated[str | None, Query(description="GB/T 4754-2017 code, exact.")] = None,
    device_type: Annotated[str | None, Query(alias="type", description="Device type.")] = None,
    protocol: Annotated[str | None, Query(description="modbus, opcua, mqtt, sparkplug.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DevicePage:
    """List devices ordered by key, with their activity in the window."""
    filt = queries.DeviceFilter(
        include_simulated=include_simulated,
        status=status_,
        industry=industry,
        device_type=device_type,
        protocol=protocol,
    )
    async with queries.snapshot(conn):
        total, rows = await queries.device_page(
            conn, start=window.start, end=window.end, filt=filt, limit=limit, offset=offset
        )
    next_offset = offset + len(rows) if offset + len(rows) < total else None
    return DevicePage(
        items=[device_out(r) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
        next_offset=next_offset,
        window=WindowOut.of(window),
        include_simulated=include_simulated,
    )


@router.get("/{device_id}", response_model=DeviceDetailOut)
async def get_device(
    *,
    conn: Store,
    caller: AuditorCaller,
    window: RequestWindow,
    device_id: Annotated[int, Path(ge=1)],
) -> DeviceDetailOut:
    """One device with its points, first/last sample and samples in the window."""
    async with queries.snapshot(conn):
        row = await queries.device_by_id(conn, device_id, window.start, window.end)
        points = (
            await queries.device_points(conn, device_id, window.start, window.end) if row else []
        )
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device with id {device_id}")
    point_out = [
        PointOut(
            id=p.id,
            key=p.key,
            address=p.address,
            data_type=p.data_type,
            unit=p.unit,
            writable=p.writable,
            description=p.description,
            first_seen=p.first_seen,
            last_seen=p.last_seen,
            last_value=p.last_value,
            last_value_text=p.last_value_text,
            last_quality=p.last_quality,
            good_hours=p.good_hours,
            active=p.good_hours > 0,
        )
        for p in points
    ]
    return DeviceDetailOut(
        **device_out(row).model_dump(), window=WindowOut.of(window), points=point_out
    )
