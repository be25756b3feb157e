"""The durable local spool: one checked file per batch, replayed oldest first.

Files are named `<sequence>-<batch id>.batch` (20-digit sequence, so names sort in
order). A batch is written to `.<name>.tmp`, fsynced, renamed into place and the
directory fsynced before `append` returns. On `open` a leftover temp file that is
complete is promoted (its write finished but the rename did not); anything that
does not check out is moved to `quarantine/`, counted and logged by file name.
Every method is synchronous and thread-safe; the forwarder runs them in a thread.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from collector import metrics
from collector.batch import Batch
from collector.pipeline.codec import (
    HEADER,
    SpoolFormatError,
    UnencodableRecord,
    decode_batch,
    encode_batch,
    read_header,
)

log = logging.getLogger(__name__)

SUFFIX = ".batch"
TEMP_SUFFIX = ".tmp"
QUARANTINE = "quarantine"
OnFull = Literal["block", "drop_oldest"]


class SpoolFull(Exception):
    """The spool is at max_bytes and on_full is `block`: the batch was not spooled."""


class SpoolCorrupt(Exception):
    """A spool file failed its checks; it has been moved to the quarantine directory."""


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """One spooled batch on disk."""

    seq: int
    batch_id: uuid.UUID
    path: Path
    size: int
    samples: int
    events: int


@dataclass(frozen=True, slots=True)
class SpoolAppend:
    """What `append` did: the new entry, or None if the batch itself was dropped."""

    entry: SpoolEntry | None
    dropped: tuple[SpoolEntry, ...] = ()
    dropped_samples: int = 0


@dataclass(frozen=True, slots=True)
class SpoolScan:
    """What `open` found on disk."""

    batches: int
    bytes: int
    samples: int
    promoted: int
    quarantined: int


def _entry_name(seq: int, batch_id: uuid.UUID) -> str:
    return f"{seq:020d}-{batch_id.hex}{SUFFIX}"


def _parse_name(name: str) -> tuple[int, uuid.UUID] | None:
    stem = name.removesuffix(SUFFIX)
    seq, sep, hex_id = stem.partition("-")
    if not sep or not seq.isdigit() or len(seq) != 20:
        return None
    try:
        return int(seq), uuid.UUID(hex=hex_id)
    except ValueError:
        return None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """A bounded directory of spooled batches, oldest first."""

    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        on_full: OnFull = "block",
        fsync: bool = True,
    ) -> None:
        self.directory = Path(directory)
        self.quarantine_dir = self.directory / QUARANTINE
        self.max_bytes = max_bytes
        self.on_full = on_full
        self.fsync = fsync
        self._entries: deque[SpoolEntry] = deque()
        self._bytes = 0
        self._samples = 0
        self._next_seq = 0
        self._lock = threading.RLock()
        self._opened = False

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """Return the bytes held by spooled batches."""
        return self._bytes

    @property
    def samples(self) -> int:
        """Return the samples held by spooled batches."""
        return self._samples

    @property
    def opened(self) -> bool:
        """Report whether `open` has scanned the directory."""
        return self._opened

    def entries(self) -> list[SpoolEntry]:
        """Return the spooled batches, oldest first."""
        with self._lock:
            return list(self._entries)

    def oldest(self) -> SpoolEntry | None:
        """Return the oldest spooled batch, or None when the spool is empty."""
        with self._lock:
            return self._entries[0] if self._entries else None

    def _publish(self) -> None:
        metrics.spool_bytes.set(self._bytes)
        metrics.spool_batches.set(len(self._entries))

    def open(self) -> SpoolScan:
        """Scan the directory: index valid files, promote complete temps, quarantine the rest."""
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            promoted = quarantined = 0
            for temp in sorted(self.directory.glob(f".*{SUFFIX}{TEMP_SUFFIX}")):
                if self._promote(temp):
                    promoted += 1
                else:
                    quarantined += 1
            found: list[SpoolEntry] = []
            for path in sorted(self.directory.glob(f"*{SUFFIX}")):
                entry = self._index(path)
                if entry is None:
                    quarantined += 1
                else:
                    found.append(entry)
            found.sort(key=lambda e: e.seq)
            self._entries = deque(found)
            self._bytes = sum(e.size for e in found)
            self._samples = sum(e.samples for e in found)
            self._next_seq = found[-1].seq + 1 if found else 0
            self._opened = True
            self._publish()
            if found or promoted or quarantined:
                log.info(
                    "spool %s holds %d batches (%d samples, %d bytes); promoted %d, quarantined %d",
                    self.directory,
                    len(found),
                    self._samples,
                    self._bytes,
                    promoted,
                    quarantined,
                )
            return SpoolScan(len(found), self._bytes, self._samples, promoted, quarantined)

    def _promote(self, temp: Path) -> bool:
        name = temp.name.removeprefix(".").removesuffix(TEMP_SUFFIX)
        try:
            decode_batch(temp.read_bytes())
        except (OSError, SpoolFormatError) as exc:
            self._move_to_quarantine(temp, f"incomplete write from a crash: {exc}")
            return False
        os.replace(temp, self.directory / name)
        log.info("spool: promoted %s, written completely before a crash", name)
        return True

    def _index(self, path: Path) -> SpoolEntry | None:
        parsed = _parse_name(path.name)
        if parsed is None:
            self._move_to_quarantine(path, "name is not <20-digit sequence>-<batch id>.batch")
            return None
        try:
            size = path.stat().st_size
            with path.open("rb") as file:
                header = read_header(file.read(HEADER.size))
            if size != header.total_length:
                raise SpoolFormatError(
                    f"file is {size} bytes, header announces {header.total_length}"
                )
        except (OSError, SpoolFormatError) as exc:
            self._move_to_quarantine(path, str(exc))
            return None
        seq, batch_id = parsed
        return SpoolEntry(seq, batch_id, path, size, header.samples, header.events)

    def _move_to_quarantine(self, path: Path, reason: str) -> None:
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        target = self.quarantine_dir / path.name.removeprefix(".")
        if target.exists():
            target = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}")
        os.replace(path, target)
        metrics.spool_quarantined.inc()
        log.error(
            "spool: moved %s to %s: %s; the other spooled batches are unaffected",
            path.name,
            target,
            reason,
            extra={"reason": "spool_corrupt"},
        )

    def append(self, batch: Batch) -> SpoolAppend:
        """Write `batch` durably as the newest entry; apply on_full at max_bytes.

        Raise SpoolFull (nothing written) when full and on_full is `block`. With
        `drop_oldest`, delete the oldest entries to make room and count their
        samples in samples_dropped{reason="spool_full"}.
        """
        data = encode_batch(batch)
        with self._lock:
            if not self._opened:
                raise RuntimeError(f"spool {self.directory} used before open()")
            dropped: list[SpoolEntry] = []
            if self._bytes + len(data) > self.max_bytes:
                if self.on_full == "block":
                    raise SpoolFull(
                        f"spool {self.directory} holds {self._bytes} bytes; batch {batch.id} of "
                        f"{len(data)} bytes would pass max_bytes={self.max_bytes}"
                    )
                while self._entries and self._bytes + len(data) > self.max_bytes:
                    dropped.append(self._drop_oldest())
                if len(data) > self.max_bytes:
                    samples = len(batch.samples)
                    metrics.samples_dropped.labels(reason="spool_full").inc(samples)
                    log.error(
                        "spool: batch %s alone is %d bytes, over max_bytes=%d; dropped its %d "
                        "samples (raise spool.max_bytes or lower pipeline.batch_size)",
                        batch.id,
                        len(data),
                        self.max_bytes,
                        samples,
                        extra={"batch": str(batch.id), "reason": "spool_full"},
                    )
                    return SpoolAppend(None, tuple(dropped), sum(e.samples for e in dropped))
            entry = self._write(batch, data)
            self._entries.append(entry)
            self._bytes += entry.size
            self._samples += entry.samples
            self._publish()
            return SpoolAppend(entry, tuple(dropped), sum(e.samples for e in dropped))

    def _write(self, batch: Batch, data: bytes) -> SpoolEntry:
        seq = self._next_seq
        self._next_seq += 1
        name = _entry_name(seq, batch.id)
        temp = self.directory / f".{name}{TEMP_SUFFIX}"
        final = self.directory / name
        with temp.open("wb") as file:
            file.write(data)
            if self.fsync:
                file.flush()
                os.fsync(file.fileno())
        os.replace(temp, final)
        if self.fsync:
            _fsync_dir(self.directory)
        header = read_header(data)
        return SpoolEntry(seq, batch.id, final, len(data), header.samples, header.events)

    def _drop_oldest(self) -> SpoolEntry:
        entry = self._entries.popleft()
        entry.path.unlink(missing_ok=True)
        self._bytes -= entry.size
        self._samples -= entry.samples
        metrics.samples_dropped.labels(reason="spool_full").inc(entry.samples)
        log.warning(
            "spool full (max_bytes=%d): dropped oldest batch %s with %d samples",
            self.max_bytes,
            entry.path.name,
            entry.samples,
            extra={"batch": str(entry.batch_id), "reason": "spool_full"},
        )
        self._publish()
        return entry

    def read(self, entry: SpoolEntry) -> Batch:
        """Return the batch stored in `entry`; quarantine it and raise SpoolCorrupt if bad."""
        try:
            batch = decode_batch(entry.path.read_bytes())
            if batch.id != entry.batch_id:
                raise SpoolFormatError(f"holds batch {batch.id}, its name says {entry.batch_id}")
        except (OSError, SpoolFormatError) as exc:
            with self._lock:
                self._forget(entry)
                if entry.path.exists():
                    self._move_to_quarantine(entry.path, str(exc))
                else:
                    metrics.spool_quarantined.inc()
                    log.error("spool: %s vanished before replay: %s", entry.path.name, exc)
            raise SpoolCorrupt(f"spool file {entry.path.name}: {exc}") from exc
        return batch

    def _forget(self, entry: SpoolEntry) -> None:
        try:
            self._entries.remove(entry)
        except ValueError:
            return
        self._bytes -= entry.size
        self._samples -= entry.samples
        self._publish()

    def remove(self, entry: SpoolEntry) -> None:
        """Delete a batch that the store has applied."""
        with self._lock:
            self._forget(entry)
            entry.path.unlink(missing_ok=True)

    def quarantine(self, entry: SpoolEntry, reason: str) -> None:
        """Move a batch the store refused to quarantine (kept, counted, logged)."""
        with self._lock:
            self._forget(entry)
            if entry.path.exists():
                self._move_to_quarantine(entry.path, reason)

    def reject(self, batch: Batch, reason: str) -> Path | None:
        """Keep a batch the store refused in quarantine; return its path (None if unwritable)."""
        with self._lock:
            path: Path | None = None
            try:
                data = encode_batch(batch)
            except UnencodableRecord as exc:
                reason = f"{reason}; it cannot be kept either: {exc}"
            else:
                path = self.quarantine_dir / f"rejected-{batch.id.hex}{SUFFIX}"
                try:
                    self.quarantine_dir.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
                except OSError as exc:
                    reason = f"{reason}; it cannot be kept either: {exc}"
                    path = None
            metrics.spool_quarantined.inc()
            log.error(
                "store refused batch %s (%d samples): %s; kept as %s",
                batch.id,
                len(batch.samples),
                reason,
                path or "nothing",
                extra={"batch": str(batch.id), "reason": "store_rejected"},
            )
            return path
