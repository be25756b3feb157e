"""Turn one batch of samples into COPY rows and per-(point, hour) activity rows.

This is the writer's hot path. Every per-sample step is a C-level pass (``map``,
``zip``, ``compress``, ``Counter``, ``dict``) over time-sorted lists; Python-level
loops run once per hour segment or per rare case, never once per sample. Three
facts make that possible:

- samples are sorted by time first (Timsort is linear on the nearly sorted data a
  live pipeline produces), so the last sample of a point is the last occurrence of
  its id (``dict(zip(ids, samples))``) and its first is the last occurrence in the
  reversed lists;
- an hour is found by bisecting the sorted time stamps at hour boundaries, so a
  batch inside one hour (the usual case) computes no per-sample hour at all;
- ``Quality.GOOD`` is 0, so ``operator.not_`` over qualities is the "good" mask.

Counting rules (the definitions in DESIGN.md): ``samples``/``good_samples`` and
first/last time stamps count live samples only; imported (``live=False``) samples
count only as ``imported_samples`` and are never good, never first/last seen and
never a point's last value.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain, compress, repeat
from operator import attrgetter, is_, not_

from adapters.base import Sample, Value

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)

sample_ts = attrgetter("ts")
sample_key = attrgetter("device", "point")
sample_value = attrgetter("value")
_QUALITY = attrgetter("quality")
_LIVE = attrgetter("live")

# Python types a sample value may have; bool is stored as 1.0/0.0, str as value_text.
VALUE_TYPES = frozenset({float, int, bool, str, type(None)})

# One row of `sample`: ts, point_id, value, value_text, quality, live.
SampleRow = tuple[datetime, int, Value, str | None, int, bool]
SAMPLE_COLUMNS = ("ts", "point_id", "value", "value_text", "quality", "live")
SAMPLE_TYPES = ("timestamptz", "int8", "float8", "text", "int2", "bool")

# One row of the staging table the rollup statements read (statements.STAGE_TABLE): one
# per (point, UTC hour) of the batch. When the batch spans several hours, `point_last`
# marks the row holding the point's last live sample and `point_first_ts` is then the
# point's first live time stamp in the batch; within one hour both are NULL.
ActivityRow = tuple[
    int,  # point_id
    int,  # device_id
    datetime,  # hour (UTC, truncated)
    int,  # samples (live)
    int,  # good_samples (live, good quality)
    int,  # imported_samples
    datetime | None,  # first_ts (live)
    datetime | None,  # last_ts (live)
    datetime | None,  # first_good_ts
    datetime | None,  # last_good_ts
    Value,  # last_value (of the last live sample in the hour)
    str | None,  # last_value_text
    int | None,  # last_quality
    bool | None,  # point_last
    datetime | None,  # point_first_ts
]
ACTIVITY_COLUMNS = (
    "point_id", "device_id", "hour", "samples", "good_samples", "imported_samples",
    "first_ts", "last_ts", "first_good_ts", "last_good_ts",
    "last_value", "last_value_text", "last_quality", "point_last", "point_first_ts",
)  # fmt: skip
ACTIVITY_TYPES = (
    "int8", "int8", "timestamptz", "int4", "int4", "int4",
    "timestamptz", "timestamptz", "timestamptz", "timestamptz",
    "float8", "text", "int2", "bool", "timestamptz",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Activity:
    """The staging rows of a batch, and whether they are unique per point."""

    rows: Iterable[ActivityRow]
    """Lazy within one hour (each row is formatted and freed), a list across hours."""
    single_hour: bool
    """All samples fall in one UTC hour: at most one row per point."""
    point_days: int
    """Distinct (point, UTC day) pairs with live samples: the point_activity rows touched."""


def sort_and_check(samples: list[Sample]) -> None:
    """Sort samples by time in place; raise ValueError naming the first naive time stamp."""
    try:
        samples.sort(key=sample_ts)  # comparing naive with aware raises TypeError
        if samples:
            # All naive sorts fine: the earliest is naive then, and subtracting fails.
            _ = samples[0].ts - EPOCH
    except TypeError:
        for sample in samples:
            if not isinstance(sample.ts, datetime) or sample.ts.utcoffset() is None:
                raise ValueError(
                    f"sample of device {sample.device!r} point {sample.point!r} has time "
                    f"stamp {sample.ts!r}: expected a timezone-aware UTC datetime "
                    "(use adapters.base.utcnow() or datetime.now(UTC))"
                ) from None
        raise


def check_values(samples: Sequence[Sample], values: list[Value]) -> None:
    """Raise ValueError naming the first sample whose value has an unsupported type."""
    if set(map(type, values)) <= VALUE_TYPES:
        return
    for sample in samples:
        if type(sample.value) not in VALUE_TYPES:
            raise ValueError(
                f"sample of device {sample.device!r} point {sample.point!r} has value "
                f"{sample.value!r} of type {type(sample.value).__name__}: expected "
                "float, int, bool, str or None"
            )


def split_values(values: list[Value]) -> tuple[list[Value], Sequence[str | None] | repeat[None]]:
    """Split values into the `value` and `value_text` columns (str goes to value_text)."""
    if str not in set(map(type, values)):
        return values, repeat(None)
    numbers = values.copy()
    texts: list[str | None] = [None] * len(values)
    for i in compress(range(len(values)), map(is_, map(type, values), repeat(str))):
        texts[i] = values[i]  # type: ignore[assignment]
        numbers[i] = None
    return numbers, texts


@dataclass(frozen=True, slots=True)
class ResolvedSamples:
    """Time-sorted samples of a batch whose point is known, with their point ids."""

    samples: list[Sample]
    point_ids: list[int]
    values: list[Value]

    def copy_rows(self) -> Iterator[SampleRow]:
        """Return the rows of `sample`, in time order, as one lazy C-level zip."""
        samples = self.samples
        numbers, texts = split_values(self.values)
        return zip(
            map(sample_ts, samples),
            self.point_ids,
            numbers,
            texts,
            map(_QUALITY, samples),
            map(_LIVE, samples),
            strict=False,
        )

    def activity(self, device_of: Mapping[int, int]) -> Activity:
        """Aggregate the samples into one staging row per (point, UTC hour)."""
        samples, point_ids, values = self.samples, self.point_ids, self.values
        times = list(map(sample_ts, samples))
        segments: list[tuple[_Segment, Iterable[ActivityRow]]] = []
        start, end = 0, len(times)
        while start < end:
            hour = hour_of(times[start])
            stop = bisect_left(times, hour + HOUR, start, end)
            segment = _Segment(
                hour,
                samples[start:stop],
                point_ids[start:stop],
                times[start:stop],
                values[start:stop],
            )
            segments.append((segment, segment.rows(device_of)))
            start = stop
        if len(segments) == 1:
            ((segment, rows),) = segments
            return Activity(rows, single_hour=True, point_days=segment.live_points)
        listed = _mark_point_last([r for _, rows in segments for r in rows])
        point_days = len({(r[0], r[2].date()) for r in listed if r[3] > 0})
        return Activity(listed, single_hour=False, point_days=point_days)


def hour_of(ts: datetime) -> datetime:
    """Return the start of the UTC hour that holds `ts`."""
    return EPOCH + ((ts - EPOCH) // HOUR) * HOUR


@dataclass(slots=True)
class _Segment:
    """Time-sorted samples that all fall in one UTC hour, with their point ids."""

    hour: datetime
    samples: list[Sample]
    point_ids: list[int]
    times: list[datetime]
    values: list[Value]
    live_points: int = 0

    def rows(self, device_of: Mapping[int, int]) -> Iterable[ActivityRow]:
        """Aggregate the segment into one staging row per point."""
        lives = list(map(_LIVE, self.samples))
        imported: Counter[int] = Counter()
        if not all(lives):
            imported = Counter(compress(self.point_ids, map(not_, lives)))
            self.samples = list(compress(self.samples, lives))
            self.point_ids = list(compress(self.point_ids, lives))
            self.times = list(compress(self.times, lives))
            self.values = list(compress(self.values, lives))
        live_points = set(self.point_ids)
        self.live_points = len(live_points)
        if len(live_points) == len(self.point_ids):
            rows = self._rows_once_per_point(device_of, imported)
        else:
            rows = self._rows_aggregated(device_of, imported)
        imported_only: list[ActivityRow] = [
            (point_id, device_of[point_id], self.hour, 0, 0, n, *_NO_LIVE)
            for point_id, n in imported.items()
            if point_id not in live_points  # only imported history in this hour
        ]
        return chain(rows, imported_only) if imported_only else rows

    def _rows_once_per_point(
        self, device_of: Mapping[int, int], imported: Counter[int]
    ) -> Iterator[ActivityRow]:
        """Rows when each point has at most one live sample here (the usual small batch)."""
        keys, times = self.point_ids, self.times
        qualities = list(map(_QUALITY, self.samples))
        good = list(map(not_, qualities))  # Quality.GOOD == 0
        good_times = dict(zip(compress(keys, good), compress(times, good), strict=False))
        numbers, texts = split_values(self.values)
        return zip(
            keys,
            map(device_of.__getitem__, keys),
            repeat(self.hour),
            repeat(1),
            good,
            map(imported.__getitem__, keys) if imported else repeat(0),
            times,
            times,
            map(good_times.get, keys),
            map(good_times.get, keys),
            numbers,
            texts,
            qualities,
            repeat(None),
            repeat(None),
            strict=False,
        )

    def _rows_aggregated(
        self, device_of: Mapping[int, int], imported: Counter[int]
    ) -> Iterator[ActivityRow]:
        """Rows when points have several live samples here."""
        point_ids, times, samples = self.point_ids, self.times, self.samples
        good = list(map(not_, map(_QUALITY, samples)))  # Quality.GOOD == 0
        good_ids = list(compress(point_ids, good))
        good_times = list(compress(times, good))
        counts = Counter(point_ids)
        good_counts = Counter(good_ids)
        first = dict(zip(reversed(point_ids), reversed(times), strict=True))
        last = dict(zip(point_ids, samples, strict=True))
        first_good = dict(zip(reversed(good_ids), reversed(good_times), strict=True))
        last_good = dict(zip(good_ids, good_times, strict=True))

        keys = list(counts)
        last_samples = list(map(last.__getitem__, keys))
        numbers, texts = split_values(list(map(sample_value, last_samples)))
        return zip(
            keys,
            map(device_of.__getitem__, keys),
            repeat(self.hour),
            map(counts.__getitem__, keys),
            map(good_counts.get, keys, repeat(0)),
            map(imported.__getitem__, keys) if imported else repeat(0),
            map(first.__getitem__, keys),
            map(sample_ts, last_samples),
            map(first_good.get, keys),
            map(last_good.get, keys),
            numbers,
            texts,
            map(_QUALITY, last_samples),
            repeat(None),
            repeat(None),
            strict=False,
        )


_NO_LIVE = (None, None, None, None, None, None, None, False, None)


def _mark_point_last(rows: list[ActivityRow]) -> list[ActivityRow]:
    """Across hours, mark each point's latest row with live samples, and its first time."""
    latest: dict[int, int] = {}
    first_ts: dict[int, datetime | None] = {}
    for index, row in enumerate(rows):  # rows are in hour order
        if row[3] > 0:  # samples
            latest[row[0]] = index
            first_ts.setdefault(row[0], row[6])  # first_ts
    return [
        (*row[:13], True, first_ts[row[0]])
        if latest.get(row[0]) == index
        else (*row[:13], False, None)
        for index, row in enumerate(rows)
    ]
