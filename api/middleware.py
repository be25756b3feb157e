"""ASGI middleware that records request latency by route template (not raw path)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collector.metrics import api_request_latency

UNMATCHED = "<unmatched>"


def route_template(scope: Scope) -> str:
    """Return the matched route's path template (e.g. /v1/devices/{device_id})."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class RequestLatency:
    """Observe tally_api_request_seconds{route, method, status} for every HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request and label it once the response status is known."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            api_request_latency.labels(
                route=route_template(scope), method=scope["method"], status=str(status)
            ).observe(time.perf_counter() - started)
