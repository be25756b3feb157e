"""Dependencies of the routes, as Annotated aliases: store, caller role, window, clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from adapters.base import utcnow
from api.auth import Caller, KeyRejected, Role, authenticate
from api.settings import Settings
from api.window import Window, WindowError, resolve_window

REALM = 'Bearer realm="tally"'

# Documented on every route that needs a key.
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing, malformed, unknown or revoked API key (WWW-Authenticate)."},
    403: {"description": "The key's role does not allow this."},
}

# Dependencies are `async def` even when they do no I/O: FastAPI runs a plain `def`
# dependency in a worker thread, a thread hand-off per dependency and request.


async def app_settings(request: Request) -> Settings:
    """Return the settings the application was created with."""
    settings: Settings = request.app.state.settings
    return settings


async def pool(request: Request) -> AsyncConnectionPool[AsyncConnection[Any]]:
    """Return the store's connection pool, opened by the application's lifespan."""
    opened: AsyncConnectionPool[AsyncConnection[Any]] = request.app.state.pool
    return opened


async def connection(
    opened: Annotated[AsyncConnectionPool[AsyncConnection[Any]], Depends(pool)],
) -> AsyncIterator[AsyncConnection[Any]]:
    """Yield one pooled store connection (autocommit) for the whole request."""
    async with opened.connection() as conn:
        yield conn


async def current_time() -> datetime:
    """Return the request's notion of now (tests override this to pin relative windows)."""
    return utcnow()


SettingsDep = Annotated[Settings, Depends(app_settings)]
Pool = Annotated[AsyncConnectionPool[AsyncConnection[Any]], Depends(pool)]
Store = Annotated[AsyncConnection[Any], Depends(connection)]
Now = Annotated[datetime, Depends(current_time)]

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key `tly_<prefix>_<secret>` (create one with `tally keys create`).",
)


async def current_caller(
    conn: Store,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Authenticate the request's bearer key; 401 with WWW-Authenticate when missing or bad."""
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key; send `Authorization: Bearer <key>`",
            headers={"WWW-Authenticate": REALM},
        )
    try:
        return await authenticate(conn, credentials.credentials)
    except KeyRejected as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            str(exc),
            headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
        ) from None


def require(role: Role) -> Callable[[Caller], Coroutine[Any, Any, Caller]]:
    """Return a dependency that admits callers whose role includes `role`, else 403."""

    async def check(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
        if not caller.role.allows(role):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this needs the {role.value} role; key {caller.prefix} has {caller.role.value}",
            )
        return caller

    check.__name__ = f"require_{role.value}"
    return check


AuditorCaller = Annotated[Caller, Depends(require(Role.AUDITOR))]
OperatorCaller = Annotated[Caller, Depends(require(Role.OPERATOR))]
AdminCaller = Annotated[Caller, Depends(require(Role.ADMIN))]


async def request_window(
    now: Now,
    window: Annotated[
        str | None,
        Query(description="Relative window: whole days or hours such as 30d or 24h (default 30d)."),
    ] = None,
    start: Annotated[
        datetime | None, Query(description="Explicit start (ISO 8601 with offset).")
    ] = None,
    end: Annotated[
        datetime | None, Query(description="Explicit end (ISO 8601 with offset; default now).")
    ] = None,
) -> Window:
    """Resolve the window query parameters; 422 naming the bad parameter when unusable."""
    try:
        return resolve_window(window, start, end, now)
    except WindowError as exc:
        given = {"window": window, "start": start, "end": end}[exc.field]
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("query", exc.field),
                    "msg": str(exc),
                    "input": given if not isinstance(given, datetime) else given.isoformat(),
                }
            ]
        ) from None


RequestWindow = Annotated[Window, Depends(request_window)]
IncludeSimulated = Annotated[
    bool,
    Query(description="Count devices served by the bundled simulators too (excluded by default)."),
]
