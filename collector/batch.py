"""A batch: the unit the pipeline flushes, the writer applies once, and the spool keeps."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from itertools import compress, repeat

from adapters.base import DeviceEvent, Record, Sample, utcnow


@dataclass(frozen=True, slots=True)
class Batch:
    """Records in arrival order under an id that makes re-applying them a no-op."""

    records: tuple[Record, ...]
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    created_at: datetime = field(default_factory=utcnow)
    _sample_count: int | None = field(default=None, init=False, repr=False, compare=False)
    """How many records are samples, once `samples` or `sample_count` counted them."""

    @property
    def samples(self) -> list[Sample]:
        """Return the samples of the batch, in order (C-level passes: a batch is large)."""
        records = self.records
        flags = list(map(isinstance, records, repeat(Sample)))
        if all(flags):
            samples: list[Sample] = list(records)  # type: ignore[arg-type]
        else:
            samples = list(compress(records, flags))  # type: ignore[arg-type]
        object.__setattr__(self, "_sample_count", len(samples))  # records never change
        return samples

    @property
    def sample_count(self) -> int:
        """Return how many records are samples (counted once per batch)."""
        count = self._sample_count
        if count is None:
            count = sum(map(isinstance, self.records, repeat(Sample)))
            object.__setattr__(self, "_sample_count", count)
        return count

    @property
    def events(self) -> list[DeviceEvent]:
        """Return the device events of the batch, in order."""
        return [r for r in self.records if isinstance(r, DeviceEvent)]

    def __len__(self) -> int:
        return len(self.records)
