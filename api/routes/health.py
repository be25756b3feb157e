"""GET /v1/health: is the API up and can it reach the store (no key needed)."""

from __future__ import annotations

import asyncio

import psycopg
from fastapi import APIRouter, Response, status
from psycopg_pool import PoolTimeout

from api.deps import Pool, SettingsDep
from api.schemas import HealthOut
from collector import __version__

router = APIRouter(tags=["health"])

STORE_PROBE_TIMEOUT = 2.0


@router.get("/v1/health", response_model=HealthOut)
async def health(request_pool: Pool, settings: SettingsDep, response: Response) -> HealthOut:
    """Report liveness; 503 when the store does not answer."""
    timeout = min(settings.connect_timeout, STORE_PROBE_TIMEOUT)
    try:
        async with asyncio.timeout(timeout), request_pool.connection(timeout=timeout) as conn:
            await conn.execute("SELECT 1")
    except (psycopg.Error, PoolTimeout, TimeoutError) as exc:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        detail = str(exc).strip() or type(exc).__name__
        return HealthOut(status="degraded", store="down", version=__version__, detail=detail)
    return HealthOut(status="ok", store="up", version=__version__)
