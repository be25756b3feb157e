"""The bounded record queue between adapters and the batcher; it is the adapters' Sink."""

from __future__ import annotations

import asyncio
import collections
import time
from collections import deque
from collections.abc import Sequence
from itertools import repeat
from operator import attrgetter
from typing import TYPE_CHECKING

from adapters.base import DeviceEvent, DeviceEventKind, Record, Sample
from collector import metrics

if TYPE_CHECKING:
    from prometheus_client.metrics import Counter

UNKNOWN_PROTOCOL = "unknown"
VALUE_TYPES = frozenset({float, int, bool, str, type(None)})


class PipelineClosed(RuntimeError):
    """The pipeline is shutting down and accepts no more records."""


class RecordQueue:
    """A bounded FIFO of records: `put` waits while it is full, the batcher takes in bulk.

    The queue never holds more than `maxsize` records. A record refused by
    `put_nowait` (full) or after `close` is counted in `samples_dropped` when it is
    a sample, and the caller is told (False or PipelineClosed), so nothing goes
    missing silently.
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"queue size must be at least 1, got {maxsize}")
        self._maxsize = maxsize
        self._items: list[Record] = []  # a list: `take` cuts its head in one C call
        self._putters: deque[asyncio.Future[None]] = deque()
        self._taker: asyncio.Future[None] | None = None
        self._wanted = 1
        self._closed = False
        self._head_since = 0.0
        self._received: dict[str, Counter] = {}
        self._unknown = metrics.samples_received.labels(protocol=UNKNOWN_PROTOCOL)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def maxsize(self) -> int:
        """Return the most records the queue holds."""
        return self._maxsize

    @property
    def closed(self) -> bool:
        """Report whether `close` was called."""
        return self._closed

    def _check_sample(self, record: Sample) -> None:
        if record.ts.tzinfo is None:
            raise ValueError(
                f"sample of device {record.device!r} point {record.point!r} has a naive "
                f"timestamp {record.ts.isoformat()}; emit aware UTC times (utcnow)"
            )
        if type(record.value) not in VALUE_TYPES:
            raise TypeError(
                f"sample of device {record.device!r} point {record.point!r} has value "
                f"{record.value!r} of type {type(record.value).__name__}; expected float, "
                "int, bool, str or None"
            )

    def _check_event(self, record: Record) -> None:
        """Check a device event (TypeError for anything else); a registration labels its samples."""
        if not isinstance(record, DeviceEvent):
            raise TypeError(f"expected a Sample or DeviceEvent, got {type(record).__name__}")
        if record.ts.tzinfo is None:
            raise ValueError(
                f"{record.kind.value} event of device {record.device!r} has a naive "
                f"timestamp {record.ts.isoformat()}; emit aware UTC times"
            )
        if record.kind is DeviceEventKind.REGISTERED and record.info is not None:
            self._received[record.device] = metrics.samples_received.labels(
                protocol=record.info.protocol
            )

    def _accept(self, record: Record) -> None:
        if type(record) is Sample:
            self._check_sample(record)
            (self._received.get(record.device) or self._unknown).inc()
        else:
            self._check_event(record)
        items = self._items
        if not items:
            self._head_since = time.monotonic()
        items.append(record)
        self._wake_taker()

    def _wake_taker(self) -> None:
        taker = self._taker
        if taker is not None and len(self._items) >= self._wanted and not taker.done():
            taker.set_result(None)

    def _accept_many(self, records: Sequence[Record]) -> Exception | None:
        """Append every valid record in order; return the first refusal, if any.

        The same checks and counters as `_accept`, with one counter increment per run
        of samples of one device instead of one per sample.
        """
        items = self._items
        if not items:
            self._head_since = time.monotonic()
        if _all_plain_samples(records):
            self._count_samples(records)
            items += records
            self._wake_taker()
            return None
        received, unknown = self._received, self._unknown
        append = items.append
        counts: dict[Counter, int] = {}  # per protocol: a few counters, one inc each
        device: str | None = None
        counter = unknown
        run = 0
        refused: Exception | None = None
        bad = 0
        for record in records:
            try:
                if type(record) is Sample:
                    if record.ts.tzinfo is None or type(record.value) not in VALUE_TYPES:
                        self._check_sample(record)  # raises with the details
                    if record.device != device:
                        if run:
                            counts[counter] = counts.get(counter, 0) + run
                        device = record.device
                        counter = received.get(device) or unknown
                        run = 0
                    run += 1
                else:
                    if run:
                        counts[counter] = counts.get(counter, 0) + run
                        run = 0
                    device = None  # a registration may relabel the device's samples
                    self._check_event(record)
            except (ValueError, TypeError) as exc:
                bad += 1
                refused = refused or exc
                continue
            append(record)
        if run:
            counts[counter] = counts.get(counter, 0) + run
        for counted, amount in counts.items():
            counted.inc(amount)
        self._wake_taker()
        if refused is not None and bad > 1:
            refused.args = (f"{refused} (and {bad - 1} more records refused)",)
        return refused

    def _refuse(self, record: Record, reason: str) -> None:
        if isinstance(record, Sample):
            metrics.samples_dropped.labels(reason=reason).inc()

    async def put(self, record: Record) -> None:
        """Put one record, waiting while the queue is full; raise PipelineClosed after close."""
        while len(self._items) >= self._maxsize and not self._closed:
            await self._wait_for_room()
        if self._closed:
            self._refuse(record, "closed")
            raise PipelineClosed(
                f"pipeline is shutting down; record of device {_device_of(record)!r} not accepted"
            )
        self._accept(record)

    def _count_samples(self, samples: Sequence[Record]) -> None:
        """Count samples received, one increment per protocol (their devices' counters)."""
        received, unknown = self._received, self._unknown
        counters = set(map(received.get, set(map(_DEVICE, samples)), repeat(unknown)))
        if len(counters) == 1:  # the usual case: the devices of one adapter, one protocol
            counters.pop().inc(len(samples))
            return
        counts: dict[Counter, int] = {}
        for device, amount in collections.Counter(map(_DEVICE, samples)).items():
            counter = received.get(device) or unknown
            counts[counter] = counts.get(counter, 0) + amount
        for counter, amount in counts.items():
            counter.inc(amount)

    async def put_many(self, records: Sequence[Record]) -> None:
        """Put records in order, waiting for room as `put` does; PipelineClosed after close.

        As many as fit are taken at once, then the rest as room frees up, so the queue
        never holds more than `maxsize`. A record that breaks the contract (naive time,
        unsupported value) is refused with ValueError/TypeError after every valid one of
        the call was accepted. On close, the records not yet taken are counted as dropped
        samples (reason `closed`) and PipelineClosed says how many.
        """
        count = len(records)
        taken = 0
        refused: Exception | None = None
        while taken < count:
            if len(self._items) >= self._maxsize and not self._closed:
                await self._wait_for_room()
                continue
            if self._closed:
                rest = records[taken:]
                for record in rest:
                    self._refuse(record, "closed")
                raise PipelineClosed(
                    f"pipeline is shutting down; {len(rest)} records (the first of device "
                    f"{_device_of(rest[0])!r}) not accepted"
                )
            room = self._maxsize - len(self._items)
            part = records if not taken and room >= count else records[taken : taken + room]
            refused = self._accept_many(part) or refused
            taken += len(part)
        if refused is not None:
            raise refused

    async def _wait_for_room(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._putters.append(waiter)
        try:
            await waiter
        except BaseException:
            waiter.cancel()
            if waiter in self._putters:
                self._putters.remove(waiter)
            elif len(self._items) < self._maxsize:
                self._wake_putters()
            raise

    def put_nowait(self, record: Record) -> bool:
        """Put one record if there is room; otherwise count it as dropped and return False."""
        if self._closed:
            self._refuse(record, "closed")
            raise PipelineClosed(
                f"pipeline is shutting down; record of device {_device_of(record)!r} not accepted"
            )
        if len(self._items) >= self._maxsize:
            self._refuse(record, "queue_full")
            return False
        self._accept(record)
        return True

    def _wake_putters(self) -> None:
        room = self._maxsize - len(self._items)
        while room > 0 and self._putters:
            waiter = self._putters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                room -= 1

    async def take(self, max_items: int, max_age: float) -> list[Record]:
        """Return up to `max_items` records once that many wait or the oldest is `max_age` old.

        Waits for the first record without a limit; returns an empty list only when
        the queue is closed and empty. After `close` it returns at once.
        """
        wanted = min(max_items, self._maxsize)
        loop = asyncio.get_running_loop()
        while not self._items and not self._closed:
            await self._wait_for(1, None, loop)
        if len(self._items) < wanted and not self._closed:
            deadline = self._head_since + max_age
            remaining = deadline - time.monotonic()
            if remaining > 0:
                await self._wait_for(wanted, remaining, loop)
        items = self._items
        count = min(max_items, len(items))
        taken = items[:count]
        del items[:count]
        if items:
            self._head_since = time.monotonic()
        self._wake_putters()
        return taken

    async def _wait_for(
        self, wanted: int, delay: float | None, loop: asyncio.AbstractEventLoop
    ) -> None:
        if self._taker is not None:
            raise RuntimeError("RecordQueue.take is already waiting in another task")
        waiter = loop.create_future()
        self._taker = waiter
        self._wanted = wanted
        handle = loop.call_later(delay, _settle, waiter) if delay is not None else None
        try:
            await waiter
        finally:
            self._taker = None
            if handle is not None:
                handle.cancel()

    def close(self) -> None:
        """Refuse new records; wake waiting putters (they raise) and the taker (it drains)."""
        self._closed = True
        while self._putters:
            waiter = self._putters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        if self._taker is not None and not self._taker.done():
            self._taker.set_result(None)

    def drain(self) -> list[Record]:
        """Remove and return every record still queued (used when shutdown runs out of time)."""
        taken = list(self._items)
        self._items.clear()
        self._wake_putters()
        return taken


_DEVICE = attrgetter("device")
_VALUE = attrgetter("value")
_TS_TZINFO = attrgetter("ts.tzinfo")


def _all_plain_samples(records: Sequence[Record]) -> bool:
    """Tell, in C-level passes, whether every record is a Sample that passes `_check_sample`."""
    return (
        set(map(type, records)) == {Sample}
        and set(map(type, map(_VALUE, records))) <= VALUE_TYPES
        and None not in set(map(_TS_TZINFO, records))  # no hashing of datetimes
    )


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _device_of(record: Record) -> str:
    return record.device
