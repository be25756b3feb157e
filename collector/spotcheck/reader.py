"""Live reads of a spot check: one point of each picked device, now, through the adapters.

A read is not a control operation: nothing is written, no control_op is recorded, the
control policy (control.enabled, rate limits) does not apply. Each read is bounded by a
timeout and at most `concurrency` run at once. A reading that comes back is recorded as a
sample through the collector's pipeline, like the readings a control operation makes —
unless its time stamp predates the read (an MQTT adapter reports the last value it
received, an OPC UA server may stamp a value with the time it last changed): that value
is no new observation, and is not recorded twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from adapters.base import Quality, Sample, Sink, Value, utcnow
from adapters.control import ControlError
from collector.control.service import ControlService

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
DEFAULT_CONCURRENCY = 8


class Readable(Protocol):
    """An adapter that can read one point of a device it serves, now."""

    def controls(self, device: str) -> bool:
        """Report whether `device` is served by this adapter."""
        ...

    async def read(self, device: str, point: str) -> Sample:
        """Read the point's current value from the device."""
        ...


def readable(adapters: Sequence[object]) -> list[Readable]:
    """Return the adapters that can read points on demand (controls, read)."""
    return [
        adapter  # type: ignore[misc]
        for adapter in adapters
        if all(callable(getattr(adapter, name, None)) for name in ("controls", "read"))
    ]


@dataclass(frozen=True, slots=True)
class Target:
    """A picked device and the point to read of it."""

    device_id: int
    key: str
    protocol: str
    point: str | None
    """Its point with the most recent good sample (None: the device has no point)."""
    rank: str
    """The selection rank digest (hex) that picked it."""


@dataclass(frozen=True, slots=True)
class Reading:
    """The outcome of one live read."""

    target: Target
    answered: bool
    value: Value = None
    quality: Quality | None = None
    read_at: datetime | None = None
    """When the answer arrived (the collector's clock)."""
    value_ts: datetime | None = None
    """The sample's own time stamp (the device's or server's, when the protocol gives one)."""
    latency_ms: float | None = None
    error: str | None = None


class LiveReader:
    """Reads one point of each of several devices through the collector's adapters."""

    def __init__(
        self,
        adapters: Sequence[object],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        concurrency: int = DEFAULT_CONCURRENCY,
        sink: Sink | None = None,
    ) -> None:
        if timeout <= 0 or concurrency < 1:
            raise ValueError(f"need timeout > 0 and concurrency >= 1: {timeout}, {concurrency}")
        self.adapters = readable(adapters)
        self.timeout = timeout
        self.concurrency = concurrency
        self.sink = sink
        """Where readings are recorded as samples (None: not recorded)."""

    @classmethod
    def of_control(cls, control: ControlService) -> LiveReader:
        """Read through a ControlService's adapters, with its step timeout and sample sink."""
        return cls(control.adapters, timeout=control.config.timeout, sink=control.sink)

    def adapter_for(self, device: str) -> Readable | None:
        """Return the adapter that serves `device`, or None."""
        for adapter in self.adapters:
            if adapter.controls(device):
                return adapter
        return None

    async def read_all(self, targets: Sequence[Target]) -> list[Reading]:
        """Read every target (at most `concurrency` at once); results in the targets' order."""
        gate = asyncio.Semaphore(self.concurrency)

        async def bounded(target: Target) -> Reading:
            async with gate:
                return await self.read(target)

        return list(await asyncio.gather(*(bounded(t) for t in targets)))

    async def read(self, target: Target) -> Reading:
        """Read one target now; never raises: a failure is a reading that did not answer."""
        if target.point is None:
            return Reading(target, False, error=f"device {target.key!r} has no registered point")
        adapter = self.adapter_for(target.key)
        if adapter is None:
            return Reading(
                target, False,
                error=f"no adapter of this collector serves device {target.key!r} (is it "
                "configured and enabled here? spot-check it at the collector of its site)",
            )  # fmt: skip
        started = time.perf_counter()
        asked_at = utcnow()
        try:
            async with asyncio.timeout(self.timeout):
                sample = await adapter.read(target.key, target.point)
        except TimeoutError as exc:
            said = str(exc) or f"no answer within {self.timeout:g} s"
            return self._failed(target, started, f"read {target.point}: {said}")
        except Exception as exc:
            if not isinstance(exc, ControlError):
                log.exception("spot check: reading device %s failed unexpectedly", target.key)
            return self._failed(target, started, f"read {target.point}: {str(exc) or repr(exc)}")
        latency = (time.perf_counter() - started) * 1000
        answered_at = utcnow()
        if sample.ts >= asked_at:
            await self._record(sample)
        return Reading(target, True, sample.value, sample.quality, answered_at, sample.ts, latency)

    async def _record(self, sample: Sample) -> None:
        """Record a live reading as a sample (bounded: a full pipeline does not stall the check)."""
        if self.sink is None or not sample.live:
            return
        try:
            async with asyncio.timeout(self.timeout):
                await self.sink.put(sample)
        except TimeoutError:
            log.warning(
                "spot check: the pipeline did not take the reading of %s/%s within %g s; "
                "not recorded as a sample", sample.device, sample.point, self.timeout,
            )  # fmt: skip

    @staticmethod
    def _failed(target: Target, started: float, error: str) -> Reading:
        latency = (time.perf_counter() - started) * 1000
        log.info(
            "spot check: device %s did not answer: %s", target.key, error,
            extra={"device": target.key, "point": target.point},
        )  # fmt: skip
        return Reading(target, False, latency_ms=latency, error=error)
