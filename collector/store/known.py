"""What the writer knows to be committed: good-hour bits and first-seen time stamps.

A point's good-hour bit for an hour, and its (or its device's) first-seen time, change
rarely: a bit once per point and hour, first seen once per point. The writer remembers
what it has committed, so a batch whose bits and first-seen times are all known sends
no statement for them; ``plan`` lists only what is new. The merges are idempotent (OR,
LEAST), so sending something already stored is harmless: the cache only saves work.

Correctness rests on one rule: ``remember`` runs only after the transaction that wrote
the plan committed. A batch that failed, or whose commit is in doubt, leaves the cache
as it was, so its replay sends the statements again. A new writer (a restart, a
reconnect) starts empty and sends them once more for the first batch of each point.

Bits are kept for the ``hours_kept`` latest UTC hours only (older data, e.g. a long
spool replay, simply misses the cache); first-seen times for every point and device
seen, as an upper bound of what is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain, repeat

from collector.store import statements as sql
from collector.store.rollup import Rollup

HOURS_KEPT = 3

KeyRow = tuple[int, int, datetime]
"""(kind, id, time stamp): one row of the keys staging table."""


@dataclass(slots=True)
class Plan:
    """The statements one batch needs beyond the COPY and device_activity."""

    good_hours: dict[datetime, set[int]] = field(default_factory=dict)
    """UTC hour → points whose good-hour bit is not known to be stored."""
    point_first: dict[int, datetime] = field(default_factory=dict)
    """Points whose first-seen time may be later than this batch's first sample."""
    device_first: dict[int, datetime] = field(default_factory=dict)
    """Devices likewise."""

    def __bool__(self) -> bool:
        return bool(self.good_hours or self.point_first or self.device_first)

    def key_rows(self) -> Iterator[KeyRow]:
        """Return the rows of the keys staging table (statements.KEYS_STAGE)."""
        parts: list[Iterable[KeyRow]] = [
            zip(repeat(sql.GOOD_HOUR), points, repeat(hour), strict=False)
            for hour, points in self.good_hours.items()
        ]
        for kind, first in (
            (sql.POINT_FIRST, self.point_first),
            (sql.DEVICE_FIRST, self.device_first),
        ):
            parts.append(zip(repeat(kind), first, first.values(), strict=False))
        return chain.from_iterable(parts)


class _FirstSeen:
    """An upper bound of the stored first-seen time per id."""

    __slots__ = ("_bound", "_latest")

    def __init__(self) -> None:
        self._bound: dict[int, datetime] = {}
        self._latest: datetime | None = None  # the latest bound held: the fast-path test

    def missing(
        self,
        ids: AbstractSet[int],
        batch_first: datetime,
        first: Callable[[], dict[int, datetime]],
    ) -> dict[int, datetime]:
        """Return the ids whose stored first-seen time may be later than the batch's.

        `ids` are the batch's ids; `first` computes their first time stamps, called
        only when some id is unknown or the batch is older than something remembered.
        """
        bound = self._bound
        older = self._latest is not None and batch_first < self._latest
        if not older and bound.keys() >= ids:
            return {}  # the usual case: every id known, the batch newer than all bounds
        times = first()
        unknown = times.keys() - bound.keys()
        if older:  # rare: out-of-order data; check each
            unknown.update(i for i, ts in times.items() if i in bound and ts < bound[i])
        return {i: times[i] for i in unknown}

    def remember(self, stored: dict[int, datetime]) -> None:
        """Record first-seen times known to be stored (at most these)."""
        if stored:
            self._bound.update(stored)
            latest = max(stored.values())
            if self._latest is None or latest > self._latest:
                self._latest = latest

    def forget(self) -> None:
        """Forget everything."""
        self._bound.clear()
        self._latest = None


class KnownState:
    """The writer's memory of committed good-hour bits and first-seen times."""

    def __init__(self, hours_kept: int = HOURS_KEPT) -> None:
        self._hours_kept = hours_kept
        self._good: dict[datetime, set[int]] = {}
        self._points = _FirstSeen()
        self._devices = _FirstSeen()

    def plan(self, rollup: Rollup) -> Plan:
        """Return what of `rollup` is not known to be stored."""
        plan = Plan()
        for hour, points in rollup.good_points.items():
            known = self._good.get(hour)
            if not points:
                continue
            if known is None:
                plan.good_hours[hour] = set(points)
            elif not known.issuperset(points):
                plan.good_hours[hour] = set(points) - known
        if rollup.live_first is not None:
            first = rollup.live_first
            plan.point_first = self._points.missing(
                rollup.point_last.keys(), first, rollup.point_first
            )
            plan.device_first = self._devices.missing(
                rollup.device_last.keys(), first, rollup.device_first
            )
        return plan

    def remember(self, plan: Plan) -> None:
        """Record a plan whose transaction committed."""
        good = self._good
        for hour, points in plan.good_hours.items():
            known = good.get(hour)
            if known is None:
                good[hour] = points
                while len(good) > self._hours_kept:
                    del good[min(good)]
            else:
                known |= points
        self._points.remember(plan.point_first)
        self._devices.remember(plan.device_first)

    def forget(self) -> None:
        """Forget everything (the next batches send their statements again)."""
        self._good.clear()
        self._points.forget()
        self._devices.forget()
