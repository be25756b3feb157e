"""The FastAPI application: `create_app(settings)` wires routes, pool, errors and metrics."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from api.deps import AUTH_RESPONSES
from api.middleware import RequestLatency
from api.routes import audit as audit_routes
from api.routes import (
    calls,
    counts,
    dashboard,
    declarations,
    devices,
    drilldowns,
    health,
    keys,
    metrics,
    programs,
    registry,
    reports,
    signing,
    spot_checks,
)
from api.routes import control as control_routes
from api.settings import Settings, get_settings
from collector import __version__
from collector.spotcheck.reader import LiveReader

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Counts of connected devices, device types and data collection points, computed from "
    "live evidence recorded by the Tally collector. Every endpoint except /v1/health needs "
    "`Authorization: Bearer <key>`; roles: auditor (read, reports, spot checks), operator "
    "(read and write), admin (also keys). Every figure of an evaluation links to the list "
    "behind it (/v1/drilldowns); POST /v1/reports freezes an evaluation into a signed bundle "
    "that `tally verify` checks offline (public key at /v1/keys/signing)."
)


class StoreUnavailable(RuntimeError):
    """The store could not be reached when the API started."""


def make_pool(settings: Settings) -> AsyncConnectionPool[AsyncConnection[Any]]:
    """Return an unopened pool of autocommit connections to the store."""
    return AsyncConnectionPool(
        settings.dsn,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        kwargs={"autocommit": True, "connect_timeout": max(1, round(settings.connect_timeout))},
        timeout=settings.connect_timeout,
        check=AsyncConnectionPool.check_connection,
        open=False,
        name="tally-api",
    )


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("store unavailable during %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": f"the store is unavailable, try again shortly ({type(exc).__name__})"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "5"},
    )


def create_app(
    settings: Settings | None = None,
    control: Any | None = None,
    spot_reader: LiveReader | None = None,
) -> FastAPI:
    """Build the API for these settings (default: get_settings()).

    `control`: the collector's in-process ControlService (`tally run`, `tally demo`); without
    one, POST /v1/devices/{id}/commands answers 503 and says where to send commands.
    `spot_reader`: the live reader of spot checks; by default one over `control`'s adapters
    (none without control: POST /v1/spot-checks then answers 503 likewise).
    """
    resolved = settings if settings is not None else get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = make_pool(resolved)
        try:
            await pool.open(wait=True, timeout=resolved.connect_timeout)
        except PoolTimeout as exc:
            await pool.close()
            raise StoreUnavailable(
                f"cannot connect to the store within {resolved.connect_timeout:g} s; check "
                "store.dsn and that PostgreSQL is running"
            ) from exc
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="Tally",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.settings = resolved
    app.state.control = control
    if spot_reader is None and control is not None:
        spot_reader = LiveReader.of_control(control)
    app.state.spot_reader = spot_reader
    app.add_middleware(RequestLatency)
    app.add_exception_handler(PoolTimeout, _store_unavailable)
    app.add_exception_handler(psycopg.OperationalError, _store_unavailable)
    app.include_router(health.router)
    app.include_router(dashboard.router)
    for module in (
        audit_routes,
        signing,
        reports,
        devices,
        counts,
        keys,
        metrics,
        registry,
        calls,
        programs,
        drilldowns,
        declarations,
        control_routes,
        spot_checks,
    ):
        app.include_router(module.router, responses=AUTH_RESPONSES)
    return app
