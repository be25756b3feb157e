"""One spot check from request to record: candidates, selection, live reads, stored result."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from adapters.base import utcnow
from collector.spotcheck.reader import LiveReader, Target
from collector.spotcheck.selection import select
from collector.store import spot_checks


@dataclass(frozen=True, slots=True)
class SpotCheckRequest:
    """What an auditor asked for, with the window already resolved to whole UTC hours."""

    requested_by: str
    seed: str
    sample_size: int
    window_spec: str
    window_start: datetime
    window_end: datetime
    include_simulated: bool = False


async def perform(
    pool: AsyncConnectionPool[AsyncConnection[Any]], reader: LiveReader, request: SpotCheckRequest
) -> dict[str, Any]:
    """Pick the devices, read them live, record everything; return the stored spot check.

    No store connection is held during the reads; the result is recorded (with its audit
    entry) only once every read has ended.
    """
    created = utcnow()
    async with pool.connection() as conn:
        found = await spot_checks.candidates(
            conn, request.window_start, request.window_end, request.include_simulated
        )
    selection = select(request.seed, (c.key for c in found), request.sample_size)
    by_key = {c.key: c for c in found}
    targets = []
    for pick in selection.picks:
        c = by_key[pick.key]
        targets.append(Target(c.device_id, c.key, c.protocol, c.point, pick.rank))
    readings = await reader.read_all(targets)
    new = spot_checks.NewSpotCheck(
        requested_by=request.requested_by,
        seed=request.seed,
        sample_size=request.sample_size,
        window_spec=request.window_spec,
        window_start=request.window_start,
        window_end=request.window_end,
        include_simulated=request.include_simulated,
        selection=selection,
        created_at=created,
        completed_at=utcnow(),
        readings=readings,
    )
    async with pool.connection() as conn:
        check_id = await spot_checks.record(conn, new)
        stored = await spot_checks.spot_check(conn, check_id)
    assert stored is not None
    return stored
