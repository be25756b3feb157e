import os
from pathlib import Path

import pytest

from adapters.base import Sample, utcnow
from collector.batch import Batch
from collector.metrics import REGISTRY
from collector.pipeline.codec import HEADER, encode_batch
from collector.pipeline.spool import QUARANTINE, Spool, SpoolCorrupt, SpoolFull

BIG = 1 << 30


def batch(n: int, start: int = 0) -> Batch:
    return Batch(tuple(Sample("dev", "p", utcnow(), start + i) for i in range(n)))


def metric(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def opened(path: Path, max_bytes: int = BIG, on_full: str = "block") -> Spool:
    spool = Spool(path, max_bytes=max_bytes, on_full=on_full, fsync=True)  # type: ignore[arg-type]
    spool.open()
    return spool


def test_append_read_remove_in_fifo_order(tmp_path: Path) -> None:
    spool = opened(tmp_path)
    batches = [batch(5, start=10 * i) for i in range(4)]
    for b in batches:
        spool.append(b)
    assert len(spool) == 4 and spool.samples == 20
    assert metric("tally_spool_batches") == 4
    assert metric("tally_spool_bytes") == spool.size_bytes == sum(e.size for e in spool.entries())
    replayed = []
    while (entry := spool.oldest()) is not None:
        replayed.append(spool.read(entry))
        spool.remove(entry)
    assert replayed == batches
    assert spool.size_bytes == 0 and list(tmp_path.glob("*.batch")) == []
    assert metric("tally_spool_batches") == 0


def test_spool_survives_reopen_and_keeps_numbering(tmp_path: Path) -> None:
    first = opened(tmp_path)
    a, b = batch(3), batch(3, start=3)
    first.append(a)
    first.append(b)
    second = opened(tmp_path)
    assert [e.batch_id for e in second.entries()] == [a.id, b.id]
    c = batch(1, start=6)
    entry = second.append(c).entry
    assert entry is not None and entry.seq == 2
    assert entry.path.name.endswith(f"-{c.id.hex}.batch")
    assert [second.read(e) for e in second.entries()] == [a, b, c]


def test_corrupt_file_is_quarantined_on_read_and_others_survive(tmp_path: Path) -> None:
    spool = opened(tmp_path)
    good1, bad, good2 = batch(2), batch(2, start=2), batch(2, start=4)
    for b in (good1, bad, good2):
        spool.append(b)
    victim = spool.entries()[1]
    data = bytearray(victim.path.read_bytes())
    data[HEADER.size + 20] ^= 0x55
    victim.path.write_bytes(bytes(data))
    before = metric("tally_spool_quarantined_total")
    assert spool.read(spool.entries()[0]) == good1
    with pytest.raises(SpoolCorrupt, match=victim.path.name):
        spool.read(victim)
    assert metric("tally_spool_quarantined_total") == before + 1
    assert (tmp_path / QUARANTINE / victim.path.name).exists()
    assert [e.batch_id for e in spool.entries()] == [good1.id, good2.id]
    assert spool.read(spool.entries()[1]) == good2


def test_open_quarantines_torn_and_foreign_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = opened(tmp_path)
    keep, torn = batch(2), batch(2, start=2)
    spool.append(keep)
    torn_entry = spool.append(torn).entry
    assert torn_entry is not None
    torn_entry.path.write_bytes(torn_entry.path.read_bytes()[:-7])
    (tmp_path / "notes.batch").write_text("hello")
    before = metric("tally_spool_quarantined_total")
    reopened = opened(tmp_path)
    assert [e.batch_id for e in reopened.entries()] == [keep.id]
    assert metric("tally_spool_quarantined_total") == before + 2
    assert sorted(p.name for p in (tmp_path / QUARANTINE).iterdir()) == sorted(
        [torn_entry.path.name, "notes.batch"]
    )
    assert torn_entry.path.name in caplog.text and "notes.batch" in caplog.text


def test_complete_temp_file_is_promoted_and_partial_one_quarantined(tmp_path: Path) -> None:
    spool = opened(tmp_path)
    spool.append(batch(1))
    finished, partial = batch(2, start=1), batch(2, start=3)
    name1 = f"{1:020d}-{finished.id.hex}.batch"
    name2 = f"{2:020d}-{partial.id.hex}.batch"
    (tmp_path / f".{name1}.tmp").write_bytes(encode_batch(finished))
    (tmp_path / f".{name2}.tmp").write_bytes(encode_batch(partial)[:-3])
    reopened = Spool(tmp_path, max_bytes=BIG)
    scan = reopened.open()
    assert (scan.batches, scan.promoted, scan.quarantined) == (2, 1, 1)
    assert reopened.read(reopened.entries()[1]) == finished
    assert (tmp_path / QUARANTINE / f"{name2}.tmp").exists()
    assert list(tmp_path.glob(".*.tmp")) == []


def test_block_at_max_bytes_refuses_and_writes_nothing(tmp_path: Path) -> None:
    size = len(encode_batch(batch(100)))
    spool = opened(tmp_path, max_bytes=2 * size + 10, on_full="block")
    spool.append(batch(100))
    spool.append(batch(100))
    files = sorted(os.listdir(tmp_path))
    with pytest.raises(SpoolFull, match="max_bytes"):
        spool.append(batch(100))
    assert sorted(os.listdir(tmp_path)) == files
    assert len(spool) == 2


def test_drop_oldest_at_max_bytes_counts_dropped_samples(tmp_path: Path) -> None:
    size = len(encode_batch(batch(100)))
    spool = opened(tmp_path, max_bytes=2 * size + 10, on_full="drop_oldest")
    first, second, third = batch(100), batch(100, start=100), batch(100, start=200)
    before = metric("tally_samples_dropped_total", {"reason": "spool_full"})
    spool.append(first)
    spool.append(second)
    result = spool.append(third)
    assert [e.batch_id for e in result.dropped] == [first.id]
    assert result.dropped_samples == 100
    assert metric("tally_samples_dropped_total", {"reason": "spool_full"}) == before + 100
    assert [e.batch_id for e in spool.entries()] == [second.id, third.id]
    assert spool.size_bytes <= spool.max_bytes
