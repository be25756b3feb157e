"""The manageability probe schedule: prove control without changing anything.

Every `control.probe.interval` seconds each opted-in device with a writable point gets
one probe: read the point, write the same value back, read it again, record the outcome.
Devices without a usable writable point are passed over silently (nothing to prove).
After a restart, the last recorded probe of each device counts, so a restart does not
probe the whole fleet again at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from adapters.base import utcnow
from adapters.control import ControlError
from collector.control import records
from collector.control.config import ProbeConfig
from collector.control.outcome import SCHEDULE, ControlOp, ControlRequest, Kind
from collector.control.service import ControlService

log = logging.getLogger(__name__)

_MAX_SLEEP = 2.0  # new devices are probed within this many seconds of registering


async def _last_probes(conn: AsyncConnection[Any]) -> dict[str, datetime]:
    cur = await conn.execute(
        "SELECT d.key, max(o.requested_at) FROM control_op o JOIN device d ON d.id = o.device_id"
        " WHERE o.kind = 'probe' AND o.requested_by = %s GROUP BY d.key",
        (SCHEDULE,),
    )
    return {key: ts for key, ts in await cur.fetchall()}


class ProbeSchedule:
    """Runs the probe over the opted-in devices of a control service, on schedule."""

    def __init__(self, service: ControlService, config: ProbeConfig | None = None) -> None:
        self.service = service
        self.config = config if config is not None else service.config.probe
        self._last: dict[str, float] | None = None  # monotonic time of each device's probe
        self.passes = 0

    async def _eligible(self) -> list[str]:
        async with self.service.connection() as conn:
            targets = await records.probe_targets(conn)
            if self._last is None:
                now_wall, now = utcnow(), time.monotonic()
                recorded = await _last_probes(conn)
                self._last = {
                    key: now - (now_wall - ts).total_seconds() for key, ts in recorded.items()
                }
        out = []
        for target in targets:
            adapter = self.service.adapter_for(target.key)
            if adapter is None or not self.service.policy.probes(target.key):
                continue
            if self.service.probe_points(target, adapter):
                out.append(target.key)
        return out

    async def probe(self, devices: list[str]) -> list[ControlOp]:
        """Probe these devices now (at most `concurrency` at once); return the records."""
        limit = asyncio.Semaphore(self.config.concurrency)
        last = self._last if self._last is not None else {}

        async def one(device: str) -> ControlOp | None:
            async with limit:
                last[device] = time.monotonic()
                try:
                    return await self.service.execute(
                        ControlRequest(device, None, Kind.PROBE, requested_by=SCHEDULE)
                    )
                except ControlError as exc:
                    log.warning("probe of device %s not performed: %s", device, exc)
                    return None

        done = await asyncio.gather(*(one(d) for d in devices))
        return [op for op in done if op is not None]

    async def probe_due(self) -> list[ControlOp]:
        """Probe every eligible device whose last probe is at least `interval` old."""
        eligible = await self._eligible()
        now = time.monotonic()
        last = self._last or {}
        due = [d for d in eligible if d not in last or now - last[d] >= self.config.interval]
        self.passes += 1
        return await self.probe(due) if due else []

    async def probe_all(self) -> list[ControlOp]:
        """Probe every eligible device now, whatever its schedule (demo, tests, bench)."""
        return await self.probe(await self._eligible())

    def _next_due(self) -> float:
        if not self._last:
            return _MAX_SLEEP
        earliest = min(self._last.values()) + self.config.interval
        return min(_MAX_SLEEP, max(0.1, earliest - time.monotonic()))

    async def run(self, stopping: asyncio.Event) -> None:
        """Probe on schedule until `stopping` is set; a failed pass is logged and retried."""
        log.info(
            "manageability probe on: every %g s, devices %s (excluding %s)",
            self.config.interval, self.config.devices, self.config.exclude or "none",
        )  # fmt: skip
        while not stopping.is_set():
            try:
                await self.probe_due()
            except ControlError as exc:
                log.warning("probe pass skipped: %s", exc)
            except Exception:  # the schedule outlives any one pass; the next pass tries again
                log.exception("probe pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self._next_due())
