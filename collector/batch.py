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

    @property
    def samples(self) -> list[Sample]:
        """Return the samples of the batch, in order (C-level passes: a batch is large)."""
        records = self.records
        flags = list(map(isinstance, records, repeat(Sample)))
        if all(flags):
            return list(records)  # type: ignore[arg-type]
        return list(compress(records, flags))  # type: ignore[arg-type]

    @property
    def events(self) -> list[DeviceEvent]:
        """Return the device events of the batch, in order."""
        return [r for r in self.records if isinstance(r, DeviceEvent)]

    def __len__(self) -> int:
        return len(self.records)
