"""Turn the samples of a batch into COPY rows and what the rollups need from them.

This is the writer's hot path. Every per-sample step is a C-level pass (``map``,
``zip``, ``compress``, ``Counter``, ``dict``, ``set``) over time-sorted lists;
Python-level loops run once per hour segment or per rare case, never once per
sample. Three facts make that possible:

- samples are sorted by time first (Timsort is linear on the nearly sorted data a
  live pipeline produces), so the last sample of a point is the last occurrence of
  its id (``dict(zip(ids, samples))``) and its first is the last occurrence in the
  reversed lists;
- an hour is found by bisecting the sorted time stamps at hour boundaries, so a
  batch inside one hour (the usual case) computes no per-sample hour at all;
- ``Quality.GOOD`` is 0, so ``operator.not_`` over qualities is the "good" mask.

A batch yields (``Rollup``): one ``device_activity`` row per (device, UTC hour), the
points with a good live sample per UTC hour (their ``point_activity.good_hours``
bits), and each point's and device's first and last live sample.

Counting rules (the definitions in DESIGN.md): ``samples``/``good_samples``, the
good hours and first/last time stamps count live samples only; imported
(``live=False``) samples count only as ``imported_samples`` and are never good,
never first/last seen and never a point's last value.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import compress, repeat
from operator import attrgetter, is_, not_
from typing import NamedTuple, Self

from adapters.base import Sample, Value

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)

sample_ts = attrgetter("ts")
sample_key = attrgetter("device", "point")
sample_value = attrgetter("value")
sample_quality = attrgetter("quality")
_LIVE = attrgetter("live")

# Python types a sample value may have; bool is stored as 1.0/0.0, str as value_text.
VALUE_TYPES = frozenset({float, int, bool, str, type(None)})

# One row of `sample`: ts, point_id, value, value_text, quality, live.
SampleRow = tuple[datetime, int, Value, str | None, int, bool]
SAMPLE_COLUMNS = ("ts", "point_id", "value", "value_text", "quality", "live")
SAMPLE_TYPES = ("timestamptz", "int8", "float8", "text", "int2", "bool")

# One row of the device staging table (statements.DEVICE_STAGE): one per (device, UTC
# hour) of the batch, in the shape of `device_activity`.
DeviceHourRow = tuple[
    int,  # device_id
    datetime,  # hour (UTC, truncated)
    int,  # samples (live)
    int,  # good_samples (live, good quality)
    int,  # imported_samples
    datetime | None,  # first_ts (live)
    datetime | None,  # last_ts (live)
    datetime | None,  # first_good_ts
    datetime | None,  # last_good_ts
]
DEVICE_HOUR_COLUMNS = (
    "device_id", "hour", "samples", "good_samples", "imported_samples",
    "first_ts", "last_ts", "first_good_ts", "last_good_ts",
)  # fmt: skip
DEVICE_HOUR_TYPES = (
    "int8", "timestamptz", "int8", "int8", "int8",
    "timestamptz", "timestamptz", "timestamptz", "timestamptz",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Rollup:
    """What one batch (or group of batches) adds to the rollups."""

    device_hours: list[DeviceHourRow]
    """One row per (device, UTC hour) with any sample, live or imported."""
    good_points: dict[datetime, list[int]]
    """UTC hour → the points with a good live sample in that hour (repeats possible)."""
    point_last: dict[int, Sample]
    """Point → its last live sample in the batch."""
    device_last: dict[int, datetime]
    """Device → its last live time stamp in the batch."""
    live_first: datetime | None
    """The earliest live time stamp of the batch (None: no live sample)."""
    live_last: datetime | None
    """The latest live time stamp of the batch."""
    _live: tuple[list[int], list[int], Sequence[datetime]]
    """Point ids, device ids and time stamps of the live samples, in time order."""

    def point_first(self) -> dict[int, datetime]:
        """Return each point's first live time stamp in the batch (computed on demand)."""
        point_ids, _, times = self._live
        return dict(zip(reversed(point_ids), reversed(times), strict=True))

    def device_first(self) -> dict[int, datetime]:
        """Return each device's first live time stamp in the batch (computed on demand)."""
        _, devices, times = self._live
        return dict(zip(reversed(devices), reversed(times), strict=True))


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


def check_values(
    samples: Sequence[Sample], values: Sequence[Value], types: AbstractSet[type] | None = None
) -> None:
    """Raise ValueError naming the first sample whose value has an unsupported type.

    `types`: the set of the values' types, when the caller has it already.
    """
    if (set(map(type, values)) if types is None else types) <= VALUE_TYPES:
        return
    for sample in samples:
        if type(sample.value) not in VALUE_TYPES:
            raise ValueError(
                f"sample of device {sample.device!r} point {sample.point!r} has value "
                f"{sample.value!r} of type {type(sample.value).__name__}: expected "
                "float, int, bool, str or None"
            )


def split_values(
    values: Sequence[Value], types: AbstractSet[type] | None = None
) -> tuple[Sequence[Value], Sequence[str | None] | repeat[None]]:
    """Split values into the `value` and `value_text` columns (str goes to value_text).

    `types`: the set of the values' types, when the caller has it already.
    """
    if str not in (set(map(type, values)) if types is None else types):
        return values, repeat(None)
    numbers = list(values)
    texts: list[str | None] = [None] * len(values)
    for i in compress(range(len(values)), map(is_, map(type, values), repeat(str))):
        texts[i] = values[i]  # type: ignore[assignment]
        numbers[i] = None
    return numbers, texts


def hour_of(ts: datetime) -> datetime:
    """Return the start of the UTC hour that holds `ts`."""
    return EPOCH + ((ts - EPOCH) // HOUR) * HOUR


class SampleColumns(NamedTuple):
    """The fields of samples as columns, in the samples' order."""

    devices: Sequence[str]
    points: Sequence[str]
    times: Sequence[datetime]
    values: Sequence[Value]
    qualities: Sequence[int]
    lives: Sequence[bool]

    @classmethod
    def of(cls, samples: Sequence[Sample]) -> SampleColumns:
        """Transpose samples (named tuples) into their columns in one C-level pass."""
        if not samples:
            return cls((), (), (), (), (), ())
        return cls(*zip(*samples, strict=True))


@dataclass(frozen=True, slots=True)
class ResolvedSamples:
    """Time-sorted samples of a batch whose point is known, with their point ids.

    The per-sample columns both the COPY rows and the rollup read are taken once.
    """

    samples: list[Sample]
    point_ids: list[int]
    values: Sequence[Value]
    times: Sequence[datetime]
    qualities: Sequence[int]
    all_live: bool
    value_types: AbstractSet[type] | None = None
    """The set of the values' types, when known (else `copy_rows` finds it)."""

    @classmethod
    def of(
        cls,
        samples: list[Sample],
        point_ids: list[int],
        values: Sequence[Value],
        columns: SampleColumns | None = None,
        value_types: AbstractSet[type] | None = None,
    ) -> Self:
        """Take the time and quality columns of time-sorted samples (or of `columns`)."""
        if columns is None:
            return cls(
                samples,
                point_ids,
                values,
                list(map(sample_ts, samples)),
                list(map(sample_quality, samples)),
                all(map(_LIVE, samples)),
                value_types,
            )
        return cls(
            samples,
            point_ids,
            values,
            columns.times,
            columns.qualities,
            all(columns.lives),
            value_types,
        )

    def copy_rows(self) -> Iterator[SampleRow]:
        """Return the rows of `sample`, in time order, as one lazy C-level zip."""
        numbers, texts = split_values(self.values, self.value_types)
        return zip(
            self.times,
            self.point_ids,
            numbers,
            texts,
            self.qualities,
            repeat(True) if self.all_live else map(_LIVE, self.samples),
            strict=False,
        )

    def rollup(self, device_of: Mapping[int, int]) -> Rollup:
        """Aggregate the samples per (device, hour), per (point, hour) and per point."""
        samples, point_ids = self.samples, self.point_ids
        times: Sequence[datetime] = self.times
        qualities: Sequence[int] = self.qualities
        devices = list(map(device_of.__getitem__, point_ids))
        imported: Counter[tuple[int, datetime]] = Counter()
        if not self.all_live:
            lives = list(map(_LIVE, samples))
            dead = list(map(not_, lives))
            imported = Counter(
                zip(compress(devices, dead), map(hour_of, compress(times, dead)), strict=True)
            )
            samples = list(compress(samples, lives))
            point_ids = list(compress(point_ids, lives))
            times = list(compress(times, lives))
            qualities = list(compress(qualities, lives))
            devices = list(compress(devices, lives))
        device_last = dict(zip(devices, times, strict=True))
        point_last = dict(zip(point_ids, samples, strict=True))
        rows: list[DeviceHourRow] = []
        good_points: dict[datetime, list[int]] = {}
        start, end = 0, len(times)
        while start < end:
            hour = hour_of(times[start])
            stop = bisect_left(times, hour + HOUR, start, end)
            if start == 0 and stop == end:  # the whole batch in one hour: no slicing
                segment = _Segment(hour, point_ids, devices, times, qualities)
                good_points[hour] = segment.add_rows(rows, device_last, imported, point_last)
            else:
                segment = _Segment(
                    hour,
                    point_ids[start:stop],
                    devices[start:stop],
                    times[start:stop],
                    qualities[start:stop],
                )
                good_points[hour] = segment.add_rows(rows, None, imported)
            start = stop
        if imported:  # hours with imported samples only
            rows += [
                (device_id, hour, 0, 0, n, None, None, None, None)
                for (device_id, hour), n in imported.items()
            ]
        return Rollup(
            rows,
            good_points,
            point_last,
            device_last,
            times[0] if times else None,
            times[-1] if times else None,
            (point_ids, devices, times),
        )


@dataclass(slots=True)
class _Segment:
    """Time-sorted live samples that all fall in one UTC hour: their columns."""

    hour: datetime
    point_ids: list[int]
    devices: list[int]
    times: Sequence[datetime]
    qualities: Sequence[int]

    def add_rows(
        self,
        rows: list[DeviceHourRow],
        last: dict[int, datetime] | None,
        imported: Counter[tuple[int, datetime]],
        points: Mapping[int, object] | None = None,
    ) -> list[int]:
        """Append one row per device to `rows`; return the points with a good sample.

        `last` is the devices' last time stamps and `points` holds the segment's point
        ids when the segment is the whole batch (already computed); entries of
        `imported` for this hour are consumed.
        """
        devices, times, hour = self.devices, self.times, self.hour
        counts = Counter(devices)
        first = dict(zip(reversed(devices), reversed(times), strict=True))
        if last is None:
            last = dict(zip(devices, times, strict=True))
        if any(self.qualities):  # some sample not good (Quality.GOOD == 0)
            good = list(map(not_, self.qualities))
            good_devices = list(compress(devices, good))
            good_times = list(compress(times, good))
            good_counts = Counter(good_devices)
            first_good = dict(zip(reversed(good_devices), reversed(good_times), strict=True))
            last_good = dict(zip(good_devices, good_times, strict=True))
            good_points = list(compress(self.point_ids, good))
        else:  # every sample good (the usual case): the good columns are the columns
            good_counts, first_good, last_good = counts, first, last
            good_points = self.point_ids if points is None else list(points)  # once each
        keys = list(counts)
        imports: Iterator[int] | repeat[int] = repeat(0)
        if imported:
            imports = map(imported.pop, zip(keys, repeat(hour)), repeat(0))
        rows += zip(
            keys,
            repeat(hour),
            counts.values(),
            map(good_counts.get, keys, repeat(0)),
            imports,
            map(first.__getitem__, keys),
            map(last.__getitem__, keys),
            map(first_good.get, keys),
            map(last_good.get, keys),
            strict=False,
        )
        return good_points
