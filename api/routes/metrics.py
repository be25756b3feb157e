"""GET /metrics: the process's Prometheus metrics in text format (needs a key)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import AuditorCaller
from collector.metrics import REGISTRY

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
async def metrics(caller: AuditorCaller) -> Response:
    """Prometheus exposition of collector and API metrics."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
