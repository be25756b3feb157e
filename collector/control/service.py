"""The control service: verified control operations through the collector's adapters.

An operation is checked against the policy before anything is sent (writable point,
control.limits, the adapter's own checks, the per-device rate limit), then reads the
value, writes, reads it back (or takes the device's in-band confirmation) and records
the outcome with an audit entry in one transaction. Nothing is ever retried: a step that
fails or times out ends the operation, and the record says how.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from adapters.base import Quality, Sample, Sink, Value, utcnow
from adapters.control import (
    ControlError,
    Controllable,
    ControlNotAllowed,
    ControlRejected,
    ControlTargetUnknown,
    ControlTimeout,
    ControlUnavailable,
    MethodCallable,
)
from collector import metrics
from collector.control import records
from collector.control.config import ControlConfig
from collector.control.outcome import ControlOp, ControlRequest, Kind, Outcome
from collector.control.policy import ControlPolicy, values_match

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class DeviceNotFound(ControlTargetUnknown):
    """No registered device has this key or id; nothing was sent and nothing recorded."""


class ControlStoreUnavailable(ControlUnavailable):
    """The store cannot be reached: an operation that cannot be recorded is not performed."""


def controllable(adapters: Sequence[object]) -> list[Controllable]:
    """Return the adapters that implement the control contract (controls, read, write)."""
    out: list[Controllable] = []
    for adapter in adapters:
        if all(callable(getattr(adapter, name, None)) for name in ("controls", "read", "write")):
            out.append(adapter)  # type: ignore[arg-type]
    return out


def preflight(adapter: Controllable, device: str, point: str, value: Value) -> None:
    """Run the adapter's own checks of a write, when it offers them (`check_write`, no I/O)."""
    check = getattr(adapter, "check_write", None)
    if callable(check):
        check(device, point, value)


def point_preflight(adapter: Controllable, device: str, point: str, last: Value) -> bool:
    """Tell whether the adapter's own checks let some value be written to the point.

    Uses the adapter's `check_point` (no value needed) when offered, else its `check_write`
    with the point's last sampled value; an adapter with neither is taken at its word.
    """
    try:
        check_point = getattr(adapter, "check_point", None)
        if callable(check_point):
            check_point(device, point)
        elif last is not None:
            preflight(adapter, device, point, last)
    except ControlError:
        return False
    return True


@dataclass
class _Progress:
    """What an operation has done so far (what gets recorded however it ends)."""

    point: str | None
    requested: Value = None
    call: dict[str, Any] | None = None
    """What a method operation asked for ({"method": key, "arguments": [...]})."""
    before: Value = None
    read_back: Value = None
    step: str = "check"
    sent: bool = False


class ControlService:
    """Performs and records control operations on the devices of the collector's adapters."""

    def __init__(
        self,
        config: ControlConfig,
        adapters: Sequence[object],
        dsn: str,
        *,
        connect_timeout: float = 5.0,
        pool_size: int = 4,
        sink: Sink | None = None,
    ) -> None:
        self.config = config
        self.sink = sink
        """Where the live readings a verification makes are recorded as samples."""
        self.policy = ControlPolicy(config)
        self.adapters = controllable(adapters)
        self.connect_timeout = connect_timeout
        self._pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            dsn,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "connect_timeout": max(1, round(connect_timeout))},
            timeout=connect_timeout,
            open=False,
            name="tally-control",
        )
        self._locks: dict[str, asyncio.Lock] = {}
        self._opened = False

    async def start(self) -> None:
        """Open the store connections (in the background: the store may be down now)."""
        if not self._opened:
            await self._pool.open(wait=False)
            self._opened = True

    async def stop(self) -> None:
        """Close the store connections."""
        if self._opened:
            await self._pool.close()
            self._opened = False

    async def __aenter__(self) -> ControlService:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """Yield a store connection; raise ControlStoreUnavailable when there is none."""
        try:
            async with self._pool.connection(timeout=self.connect_timeout) as conn:
                yield conn
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise ControlStoreUnavailable(
                f"the store is unreachable ({exc}); control operations are not performed while "
                "they cannot be recorded"
            ) from exc

    def adapter_for(self, device: str) -> Controllable | None:
        """Return the adapter that serves `device`, or None."""
        for adapter in self.adapters:
            if adapter.controls(device):
                return adapter
        return None

    async def find_device(
        self, *, key: str | None = None, device_id: int | None = None
    ) -> records.DeviceTarget:
        """Return a registered device; raise DeviceNotFound when there is none."""
        async with self.connection() as conn:
            target = await records.find_device(conn, key=key, device_id=device_id)
        if target is None:
            which = f"key {key!r}" if key is not None else f"id {device_id}"
            raise DeviceNotFound(f"no registered device with {which}")
        return target

    def probe_points(self, target: records.DeviceTarget, adapter: Controllable) -> list[str]:
        """Points the probe may use on a device, most preferred first.

        Points that the adapter's own configuration does not let the collector write are
        passed over (see point_preflight).
        """
        return [
            point
            for point in self.policy.probe_order(target.key, target.writable_points())
            if point_preflight(adapter, target.key, point, target.points[point].last_known())
        ]

    async def execute(self, request: ControlRequest) -> ControlOp:
        """Perform one operation and return its record (recorded whatever the outcome).

        Raises DeviceNotFound for an unregistered device and ControlStoreUnavailable when
        the store cannot be reached; neither sends anything.
        """
        requested_at = utcnow()
        started = time.perf_counter()
        target = await self.find_device(key=request.device)
        progress = _Progress(request.point)
        outcome, detail = await self._outcome(target, request, progress)
        latency = time.perf_counter() - started
        new = records.NewOp(
            device=target,
            point=progress.point,
            kind=request.kind,
            requested_value=progress.requested if progress.call is None else progress.call,
            value_before=progress.before,
            read_back=progress.read_back,
            requested_by=request.requested_by,
            requested_at=requested_at,
            completed_at=utcnow(),
            latency_ms=latency * 1000,
            outcome=outcome,
            detail=detail,
        )
        metrics.control_operations.labels(kind=request.kind.value, outcome=outcome.value).inc()
        if progress.sent:
            metrics.control_latency.labels(protocol=target.protocol).observe(latency)
        try:
            async with self.connection() as conn:
                op = await records.record(conn, new)
        except Exception:
            log.error(
                "control operation on device %s point %s ended %s but could not be recorded: %s",
                target.key, progress.point, outcome.value, new,
                extra={"device": target.key, "point": progress.point},
            )  # fmt: skip
            raise
        log.info(
            "control %s device %s point %s: %s%s",
            request.kind.value, target.key, op.point, outcome.value,
            f" ({detail})" if detail else "",
            extra={"device": target.key, "point": op.point},
        )  # fmt: skip
        return op

    async def _outcome(
        self, target: records.DeviceTarget, request: ControlRequest, p: _Progress
    ) -> tuple[Outcome, str | None]:
        try:
            return await self._perform(target, request, p)
        except ControlNotAllowed as exc:
            return Outcome.NOT_ALLOWED, str(exc)
        except (ControlTimeout, TimeoutError) as exc:
            said = str(exc) or f"no answer within {self.config.timeout:g} s (control.timeout)"
            effect = (
                f"; the {'call' if request.kind is Kind.METHOD else 'write'}'s effect is "
                "unknown; not retried"
                if p.step in {"write", "call", "read back"}
                else "; nothing was written"
            )
            return Outcome.TIMEOUT, f"{p.step}: {said}{effect}"
        except ControlRejected as exc:
            return Outcome.REJECTED, f"{p.step}: {exc}"
        except ControlError as exc:
            return Outcome.ERROR, f"{p.step}: {exc}"
        except Exception as exc:
            log.exception("control operation on device %s failed unexpectedly", target.key)
            return Outcome.ERROR, f"{p.step}: unexpected {exc!r}"

    async def _step(self, name: str, p: _Progress, call: Awaitable[_T]) -> _T:
        p.step = name
        p.sent = True
        async with asyncio.timeout(self.config.timeout):
            return await call

    async def _perform(
        self, target: records.DeviceTarget, request: ControlRequest, p: _Progress
    ) -> tuple[Outcome, str | None]:
        key = target.key
        adapter = self.adapter_for(key)
        if adapter is None:
            return Outcome.ERROR, (
                f"no adapter of this collector serves device {key!r} (is it configured and "
                "enabled here?); nothing was sent"
            )
        if request.kind is Kind.METHOD:
            return await self._method(target, request, adapter, p)
        if p.point is None:
            order = self.probe_points(target, adapter)
            if not order:
                return Outcome.NOT_ALLOWED, (
                    f"device {key!r} has no writable point the probe may use "
                    f"(writable: {', '.join(target.writable_points()) or 'none'}; see "
                    "control.probe.points and control.limits); nothing was sent"
                )
            p.point = order[0]
        point = target.points.get(p.point)
        if point is None:
            return Outcome.NOT_ALLOWED, (
                f"device {key!r} has no registered point {p.point!r} "
                f"(points: {', '.join(sorted(target.points)) or 'none'}); nothing was sent"
            )
        why = self.policy.point_refusal(key, p.point, point.writable)
        if why is None and request.kind is Kind.WRITE:
            p.requested = request.value
            why = self.policy.value_refusal(key, p.point, request.value)
            if why is None:
                preflight(adapter, key, p.point, request.value)
        if why is None:
            why = self.policy.rate.acquire(key)
        if why is not None:
            return Outcome.NOT_ALLOWED, f"{why}; nothing was sent"
        async with self._locks.setdefault(key, asyncio.Lock()):
            return await self._read_write_read(adapter, key, p.point, request.kind, p)

    async def _method(
        self,
        target: records.DeviceTarget,
        request: ControlRequest,
        adapter: Controllable,
        p: _Progress,
    ) -> tuple[Outcome, str | None]:
        """Call a configured method, read its verification point, compare."""
        key = target.key
        method = request.method or ""
        if not callable(getattr(adapter, "check_method", None)):
            return Outcome.NOT_ALLOWED, (
                f"device {key!r}: its adapter offers no method calls; nothing was sent"
            )
        callee: MethodCallable = adapter  # type: ignore[assignment]
        p.call = {"method": method, "arguments": []}
        if not self.config.enabled:
            return Outcome.NOT_ALLOWED, (
                "control operations are switched off (control.enabled: false); nothing was sent"
            )
        try:
            check = callee.check_method(key, method)
        except ControlTargetUnknown as exc:
            return Outcome.NOT_ALLOWED, str(exc)
        p.point = check.point
        p.call = {"method": check.method, "arguments": list(check.arguments)}
        if check.point not in target.points:
            return Outcome.NOT_ALLOWED, (
                f"device {key!r} has no registered point {check.point!r} to verify method "
                f"{method!r} with; nothing was sent"
            )
        why = self.policy.rate.acquire(key)
        if why is not None:
            return Outcome.NOT_ALLOWED, f"{why}; nothing was sent"
        async with self._locks.setdefault(key, asyncio.Lock()):
            await self._step("call", p, callee.call(key, method))
            if self.config.settle > 0:
                await asyncio.sleep(self.config.settle)
            after = await self._read("read back", p, adapter, key, check.point)
            p.read_back = after.value
        if after.quality is not Quality.GOOD:
            return Outcome.MISMATCH, (
                f"read back: {check.point} has quality {after.quality.name} (value "
                f"{after.value!r}); the effect of the call is not confirmed"
            )
        if values_match(check.equals, after.value, self.config.tolerance):
            return Outcome.VERIFIED, None
        return Outcome.MISMATCH, (
            f"called {method!r} but {check.point} reads {after.value!r}, expected {check.equals!r}"
        )

    async def _record_reading(self, sample: Sample) -> None:
        """Record a live reading made by a control operation as a sample, like any other."""
        if self.sink is not None and sample.live:
            await self.sink.put(sample)

    async def _read(
        self, step: str, p: _Progress, adapter: Controllable, key: str, point: str
    ) -> Sample:
        """Read a point as one step; record the reading when it is a new observation.

        A reading stamped before it was asked for (MQTT's last received value, an OPC UA
        value stamped when it last changed) was already collected: recording it again
        would store the same sample twice.
        """
        asked = utcnow()
        sample = await self._step(step, p, adapter.read(key, point))
        if sample.ts >= asked:
            await self._record_reading(sample)
        return sample

    async def _read_write_read(
        self, adapter: Controllable, key: str, point: str, kind: Kind, p: _Progress
    ) -> tuple[Outcome, str | None]:
        before = await self._read("read before", p, adapter, key, point)
        p.before = before.value
        if kind is Kind.PROBE:
            if before.quality is not Quality.GOOD:
                return Outcome.ERROR, (
                    f"read before: the value has quality {before.quality.name}; a probe writes "
                    "back only good values; nothing was written"
                )
            p.requested = before.value
            why = self.policy.value_refusal(key, point, before.value)
            if why is not None:
                return Outcome.NOT_ALLOWED, f"{why}; nothing was written"
            p.step = "check"
            preflight(adapter, key, point, before.value)
        confirmed = await self._step("write", p, adapter.write(key, point, p.requested))
        if confirmed is not None:
            p.read_back = confirmed
            source = "the device confirmed"
            await self._record_reading(Sample(key, point, utcnow(), confirmed, Quality.GOOD))
        else:
            if self.config.settle > 0:
                await asyncio.sleep(self.config.settle)
            after = await self._read("read back", p, adapter, key, point)
            p.read_back = after.value
            source = "read back"
            if after.quality is not Quality.GOOD:
                return Outcome.MISMATCH, (
                    f"read back: quality {after.quality.name} (value {after.value!r}); the "
                    "effect of the write is not confirmed"
                )
        if values_match(p.requested, p.read_back, self.config.tolerance):
            return Outcome.VERIFIED, None
        tol = self.config.tolerance
        return Outcome.MISMATCH, (
            f"wrote {p.requested!r} but {source} {p.read_back!r} (tolerance: relative "
            f"{tol.relative:g}, absolute {tol.absolute:g})"
        )
