"""/v1/drilldowns: the devices, points and apps behind every figure, paginated or as CSV.

A drill-down's ``total`` is the figure it explains: the lists use the predicates of
/v1/counts and of the evaluation's snapshot (collector/store/drilldowns.py). Every rule
verdict of an evaluation links here (``drilldown``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from api.csv_export import apps_csv, devices_csv, points_csv
from api.deps import AuditorCaller, IncludeSimulated, RequestWindow, SettingsDep, Store
from api.schemas import WindowOut
from api.schemas_drilldowns import (
    DrillAppOut,
    DrillAppPage,
    DrillDeviceOut,
    DrillDevicePage,
    DrillPointOut,
    DrillPointPage,
)
from collector.store import drilldowns, queries
from collector.store.calls import recorded_zone
from collector.store.drilldowns import AppFilter, DrillFilter, DrillStatus
from criteria.industries import IndustryKind

router = APIRouter(prefix="/v1/drilldowns", tags=["drilldowns"])

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
Format = Literal["json", "csv"]
_LIST = r"^[^,]+(,[^,]+)*$"

DEVICES_DEFINITION = (
    "connected: devices with at least one good live sample in the window (the "
    "connected_devices figure; device_types are the distinct device_type values of this list). "
    "managed: connected devices with a verified control operation requested in the window "
    "(managed_devices, managed_device_types). industry admits codes inside it (C26 admits "
    "C2614); industry_class admits the codes criteria/industries.yaml marks process or discrete."
)
POINTS_DEFINITION = (
    "Data collection points with at least one good live sample in the window, exact to the UTC "
    "hour (the points figure); industry_class=process gives the process_points figure."
)
APPS_DEFINITION = (
    "Registered models, algorithms, APPs, cloud software and dev tools as registered now (the "
    "registry figures), each with its calls in the full calendar months of the window from the "
    "call_monthly rollup: the sum of total_calls over the months is what monthly_calls averages."
)


def _split(value: str | None) -> tuple[str, ...] | None:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value is not None else None


async def drill_filter(
    *,
    include_simulated: IncludeSimulated = False,
    status: Annotated[
        DrillStatus,
        Query(description="connected (a good live sample in the window) or managed."),
    ] = "connected",
    industry: Annotated[
        str | None, Query(description="GB/T 4754-2017 code; codes inside it match (C26).")
    ] = None,
    industry_class: Annotated[
        IndustryKind | None, Query(description="process or discrete (criteria/industries.yaml).")
    ] = None,
    device_type: Annotated[
        str | None, Query(alias="type", description="Device type label.")
    ] = None,
    region: Annotated[
        str | None,
        Query(pattern=r"^\d{2,6}(,\d{2,6})*$", description="GB/T 2260 codes, comma-separated."),
    ] = None,
    park: Annotated[str | None, Query(pattern=_LIST, description="Parks, comma-separated.")] = None,
    protocol: Annotated[str | None, Query(description="modbus, opcua, mqtt, sparkplug.")] = None,
) -> DrillFilter:
    """Read the device filters of a drill-down from the query."""
    return DrillFilter(
        include_simulated=include_simulated,
        status=status,
        industry=industry,
        industry_class=industry_class,
        device_type=device_type,
        regions=_split(region),
        parks=_split(park),
        protocol=protocol,
    )


Filters = Annotated[DrillFilter, Depends(drill_filter)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (JSON only).")]
Offset = Annotated[int, Query(ge=0)]
FormatQuery = Annotated[Format, Query(description="json (a page) or csv (every row).")]


def _next(offset: int, shown: int, total: int) -> int | None:
    return offset + shown if offset + shown < total else None


def csv_response(text: str, name: str) -> Response:
    """Return CSV text as an attachment."""
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@router.get(
    "/devices", response_model=DrillDevicePage, responses={200: {"content": {"text/csv": {}}}}
)
async def drill_devices(
    *,
    conn: Store,
    caller: AuditorCaller,
    window: RequestWindow,
    filt: Filters,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
    format: FormatQuery = "json",
) -> DrillDevicePage | Response:
    """List the devices behind connected_devices, managed_devices and the device types."""
    async with queries.snapshot(conn):
        total, rows = await drilldowns.devices(
            conn,
            window.start,
            window.end,
            filt,
            limit=None if format == "csv" else limit,
            offset=0 if format == "csv" else offset,
        )
    items = [DrillDeviceOut.of(r) for r in rows]
    if format == "csv":
        return csv_response(devices_csv(items), f"devices-{filt.status}")
    return DrillDevicePage(
        items=items,
        total=total,
        limit=limit,
        offset=offset,
        next_offset=_next(offset, len(items), total),
        window=WindowOut.of(window),
        definition=DEVICES_DEFINITION,
        include_simulated=filt.include_simulated,
    )


@router.get(
    "/points", response_model=DrillPointPage, responses={200: {"content": {"text/csv": {}}}}
)
async def drill_points(
    *,
    conn: Store,
    caller: AuditorCaller,
    window: RequestWindow,
    filt: Filters,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
    format: FormatQuery = "json",
) -> DrillPointPage | Response:
    """List the data collection points behind points and process_points."""
    async with queries.snapshot(conn):
        total, rows = await drilldowns.points(
            conn,
            window.start,
            window.end,
            filt,
            limit=None if format == "csv" else limit,
            offset=0 if format == "csv" else offset,
        )
    items = [DrillPointOut.of(r) for r in rows]
    if format == "csv":
        return csv_response(points_csv(items), "points")
    return DrillPointPage(
        items=items,
        total=total,
        limit=limit,
        offset=offset,
        next_offset=_next(offset, len(items), total),
        window=WindowOut.of(window),
        definition=POINTS_DEFINITION,
        include_simulated=filt.include_simulated,
    )


@router.get("/apps", response_model=DrillAppPage, responses={200: {"content": {"text/csv": {}}}})
async def drill_apps(
    *,
    conn: Store,
    caller: AuditorCaller,
    settings: SettingsDep,
    window: RequestWindow,
    kind: Annotated[
        str | None,
        Query(
            pattern=r"^(mechanism_model|algorithm|industrial_app|cloud_software|dev_tool)"
            r"(,(mechanism_model|algorithm|industrial_app|cloud_software|dev_tool))*$",
            description="App kinds, comma-separated (e.g. mechanism_model,algorithm).",
        ),
    ] = None,
    category: str | None = None,
    industry: Annotated[str | None, Query(description="GB/T 4754-2017 code; inside it.")] = None,
    domain: str | None = None,
    cross_platform: Annotated[
        bool | None, Query(description="true: only items usable across platforms.")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
    format: FormatQuery = "json",
) -> DrillAppPage | Response:
    """List the apps behind the registry figures, with their calls per full month."""
    filt = AppFilter(
        kinds=_split(kind),
        category=category,
        industry=industry,
        domain=domain,
        cross_platform=cross_platform,
    )
    zone = await _zone(conn, settings.timezone)
    async with queries.snapshot(conn):
        total, months, rows = await drilldowns.apps(
            conn,
            window.start,
            window.end,
            zone,
            filt,
            limit=None if format == "csv" else limit,
            offset=0 if format == "csv" else offset,
        )
    items = [DrillAppOut.of(r) for r in rows]
    if format == "csv":
        return csv_response(apps_csv(items, months), "apps")
    return DrillAppPage(
        items=items,
        total=total,
        limit=limit,
        offset=offset,
        next_offset=_next(offset, len(items), total),
        window=WindowOut.of(window),
        definition=APPS_DEFINITION,
        months=list(months),
        zone=zone,
    )


async def _zone(conn: Store, configured: str) -> str:
    """Return the zone the call rollup counts in (the configured one before any call)."""
    return await recorded_zone(conn) or configured
