"""GET /: the dashboard page and its script and style (no key: the page asks for one)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter, HTTPException, Path, status
from fastapi.responses import HTMLResponse, Response

router = APIRouter(include_in_schema=False)

ASSETS = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}

# Everything comes from this server: no CDN, no inline script or style, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@cache
def asset(name: str) -> str:
    """Return one file of the dashboard, shipped as package data in api/dashboard/."""
    return (resources.files("api") / "dashboard" / name).read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse)
async def dashboard() -> HTMLResponse:
    """Serve the dashboard page."""
    return HTMLResponse(asset("index.html"), headers=HEADERS)


@router.get("/dashboard/{name}")
async def dashboard_asset(name: str = Path(description="app.js or style.css")) -> Response:
    """Serve the dashboard's script or style sheet."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dashboard file {name!r}")
    return Response(asset(name), media_type=media_type, headers=HEADERS)
