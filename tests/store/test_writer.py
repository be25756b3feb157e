import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest

from adapters.base import (
    DeviceEvent,
    DeviceEventKind,
    DeviceInfo,
    PointInfo,
    Quality,
    Record,
    Sample,
    Value,
)
from collector.batch import Batch
from collector.embedded.postgres import ThrowawayPostgres
from collector.metrics import REGISTRY
from collector.store.migrate import migrate
from collector.store.writer import BatchRefused, SampleWriter, StoreUnavailable

T0 = datetime(2024, 5, 1, 10, 59, 30, tzinfo=UTC)  # 30 s before an hour boundary


def device(key: str, points: tuple[str, ...] = ("temp", "run", "mode"), **kw: Any) -> DeviceInfo:
    return DeviceInfo(
        key=key,
        protocol="modbus",
        endpoint=f"127.0.0.1:502/{key}",
        points=tuple(PointInfo(key=p, address=f"4000{i}", data_type="float32") for i, p in
                     enumerate(points)),
        **kw,
    )  # fmt: skip


def registered(*infos: DeviceInfo) -> Batch:
    return Batch(tuple(DeviceEvent(DeviceEventKind.REGISTERED, i.key, T0, i) for i in infos))


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def rows(dsn: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(query, params or None)
        return await cur.fetchall()


async def one(dsn: str, query: str, *params: Any) -> Any:
    (row,) = await rows(dsn, query, *params)
    return row[0] if len(row) == 1 else row


@pytest.fixture
async def writer(database_url: str) -> AsyncIterator[SampleWriter]:
    async with SampleWriter(database_url) as w:
        await w.write(registered(device("press-1"), device("press-2")))
        yield w


def mixed_samples(n: int, start: datetime, step: timedelta) -> list[Sample]:
    """Return n samples over press-1/2 × temp/run/mode; every 7th bad, every 5th uncertain."""
    out = []
    for i in range(n):
        quality = Quality.BAD if i % 7 == 0 else Quality.UNCERTAIN if i % 5 == 0 else Quality.GOOD
        dev = f"press-{1 + i % 2}"
        point = ("temp", "run", "mode")[i % 3]
        out.append(Sample(dev, point, start + step * i, float(i), quality))
    return out


# --- exactly once, rollups --------------------------------------------------------------


@pytest.mark.integration
async def test_batches_land_once_with_exact_hourly_and_daily_rollups(
    writer: SampleWriter, database_url: str
) -> None:
    n_batches, size = 4, 45
    samples = mixed_samples(n_batches * size, T0, timedelta(seconds=1))  # 10:59:30–11:02:29
    stored_before = metric("tally_samples_stored_total")
    for k in range(n_batches):
        result = await writer.write(Batch(tuple(samples[k * size : (k + 1) * size])))
        assert result.applied and result.samples_stored == size and not result.rejected

    assert await one(database_url, "SELECT count(*) FROM sample") == n_batches * size
    assert metric("tally_samples_stored_total") - stored_before == n_batches * size

    # The oracle: count per (device, hour) straight from the samples.
    def hour(ts: datetime) -> datetime:
        return ts.replace(minute=0, second=0, microsecond=0)

    expected = Counter((s.device, hour(s.ts)) for s in samples)
    expected_good = Counter((s.device, hour(s.ts)) for s in samples if s.quality == Quality.GOOD)
    got = await rows(
        database_url,
        "SELECT d.key, a.hour, a.samples, a.good_samples, a.imported_samples, a.first_ts,"
        " a.last_ts, a.first_good_ts, a.last_good_ts"
        " FROM device_activity a JOIN device d ON d.id = a.device_id",
    )
    assert len(got) == 4  # two devices × two hours
    for key, h, n, good, imported, first, last, first_good, last_good in got:
        mine = [s for s in samples if (s.device, hour(s.ts)) == (key, h)]
        good_ts = [s.ts for s in mine if s.quality == Quality.GOOD]
        assert (n, good, imported) == (expected[key, h], expected_good[key, h], 0)
        assert (first, last) == (min(s.ts for s in mine), max(s.ts for s in mine))
        assert (first_good, last_good) == (min(good_ts), max(good_ts))

    # point_activity: one row per point and day; bit 10 and 11 set when the point had a
    # good sample in that hour.
    got_bits = await rows(
        database_url,
        "SELECT d.key, p.key, a.day, a.good_hours FROM point_activity a"
        " JOIN point p ON p.id = a.point_id JOIN device d ON d.id = p.device_id",
    )
    expected_bits: dict[tuple[str, str], int] = {}
    for s in samples:
        if s.quality == Quality.GOOD:
            key = (s.device, s.point)
            expected_bits[key] = expected_bits.get(key, 0) | 1 << s.ts.hour
    assert sorted(got_bits) == sorted(
        (d, p, date(2024, 5, 1), bits) for (d, p), bits in expected_bits.items()
    )

    await writer.flush()  # latest values and last-seen times are coalesced
    last = max(samples, key=lambda s: s.ts)
    value, quality, seen = await one(
        database_url,
        "SELECT p.last_value, p.last_quality, p.last_seen FROM point p"
        " JOIN device d ON d.id = p.device_id WHERE d.key = %s AND p.key = %s",
        last.device,
        last.point,
    )
    assert (value, quality, seen) == (last.value, last.quality, last.ts)
    first_seen, last_seen = await one(
        database_url, "SELECT first_seen, last_seen FROM device WHERE key = 'press-1'"
    )
    press1 = [s.ts for s in samples if s.device == "press-1"]
    assert (first_seen, last_seen) == (min(press1), max(press1))


@pytest.mark.integration
async def test_good_hours_bits_and_last_values_across_a_day(
    writer: SampleWriter, database_url: str
) -> None:
    # One batch spanning three hours with several samples per point in each hour, in
    # shuffled order; hour 12 has only bad samples for `temp`.
    day = datetime(2024, 5, 2, tzinfo=UTC)
    samples: list[Sample] = []
    for m in (5, 1, 3):
        samples += [
            Sample("press-1", "temp", day + timedelta(hours=23, minutes=m), 3.0 + m),
            Sample("press-1", "temp", day + timedelta(hours=12, minutes=m), 2.0, Quality.BAD),
            Sample("press-1", "temp", day + timedelta(hours=11, minutes=m), 1.0 + m),
        ]
    await writer.write(Batch(tuple(samples)))
    await writer.flush()
    assert await one(database_url, "SELECT good_hours FROM point_activity") == (1 << 11) | (1 << 23)
    first, last = day + timedelta(hours=11, minutes=1), day + timedelta(hours=23, minutes=5)
    value, first_seen, last_seen = await one(
        database_url, "SELECT last_value, first_seen, last_seen FROM point WHERE key = 'temp'"
        " AND device_id = (SELECT id FROM device WHERE key = 'press-1')",
    )  # fmt: skip
    assert value == 8.0  # 23:05, the latest sample
    assert (first_seen, last_seen) == (first, last)
    hours = await rows(
        database_url, "SELECT hour, samples, good_samples FROM device_activity ORDER BY hour"
    )
    assert [(h.hour, n, g) for h, n, g in hours] == [(11, 3, 3), (12, 3, 0), (23, 3, 3)]


@pytest.mark.integration
async def test_replayed_batch_is_skipped(writer: SampleWriter, database_url: str) -> None:
    batch = Batch(tuple(mixed_samples(30, T0, timedelta(seconds=1))))
    assert (await writer.write(batch)).applied
    skipped_before = metric("tally_batches_duplicate_total")
    again = await writer.write(batch, source="spool")
    assert again.duplicate and again.samples_stored == 0
    assert metric("tally_batches_duplicate_total") - skipped_before == 1
    assert await one(database_url, "SELECT count(*) FROM sample") == 30
    assert await one(database_url, "SELECT sum(samples) FROM device_activity") == 30


@pytest.mark.integration
async def test_committed_batch_whose_ack_was_lost_is_skipped_by_a_new_writer(
    writer: SampleWriter, database_url: str
) -> None:
    # The first writer committed but its caller never heard back (process died); the
    # batch comes back from the spool through a fresh writer with an empty cache.
    batch = Batch(tuple(mixed_samples(12, T0, timedelta(seconds=1))))
    await writer.write(batch)
    async with SampleWriter(database_url) as fresh:
        assert (await fresh.write(batch, source="spool")).duplicate
    assert await one(database_url, "SELECT count(*) FROM sample") == 12
    assert (
        await one(database_url, "SELECT source FROM ingest_log WHERE batch_id = %s", batch.id)
        == "live"
    )


@pytest.mark.integration
async def test_write_many_applies_a_group_once_and_skips_the_applied_member(
    writer: SampleWriter, database_url: str
) -> None:
    samples = mixed_samples(60, T0, timedelta(seconds=1))
    a, b, c = (Batch(tuple(samples[i : i + 20])) for i in (0, 20, 40))
    await writer.write(b)
    results = await writer.write_many([a, b, c, a])  # a repeated: counted once
    assert [r.batch_id for r in results] == [a.id, b.id, c.id]
    assert [r.applied for r in results] == [True, False, True]
    assert await one(database_url, "SELECT count(*) FROM sample") == 60
    assert await one(database_url, "SELECT sum(samples) FROM device_activity") == 60
    assert await one(database_url, "SELECT count(*) FROM ingest_log") == 4  # + registration


@pytest.mark.integration
async def test_good_hour_rows_are_updated_and_added_in_the_same_write(
    writer: SampleWriter, database_url: str
) -> None:
    await writer.write(Batch((Sample("press-1", "temp", T0, 1.0),)))
    # temp's row for the day exists, run's does not; the group also crosses midnight and
    # adds hour 11 to temp's row.
    midnight = T0.replace(hour=23, minute=59, second=59)
    later = [
        Sample("press-1", "temp", T0 + timedelta(minutes=1), 2.0),
        Sample("press-1", "run", T0 + timedelta(seconds=2), True),
        Sample("press-1", "run", midnight + timedelta(seconds=2), False, Quality.BAD),
        Sample("press-1", "mode", midnight + timedelta(seconds=3), 1.0),
    ]
    await writer.write_many([Batch(tuple(later[:2])), Batch(tuple(later[2:]))])
    got = await rows(
        database_url,
        "SELECT p.key, a.day, a.good_hours FROM point_activity a"
        " JOIN point p ON p.id = a.point_id ORDER BY p.key, a.day",
    )
    day = T0.date()
    assert got == [
        ("mode", day + timedelta(days=1), 1 << 0),
        ("run", day, 1 << 10),
        ("temp", day, 1 << 10 | 1 << 11),
    ]


@pytest.mark.integration
async def test_a_point_deleted_behind_the_writers_back_is_rejected_not_fatal(
    writer: SampleWriter, database_url: str
) -> None:
    await writer.write(Batch((Sample("press-2", "temp", T0, 1.0),)))  # cached now
    assert await one(database_url, "SELECT count(*) FROM point_activity") == 1
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute("DELETE FROM device WHERE key = 'press-2'")
    assert await one(database_url, "SELECT count(*) FROM point_activity") == 0  # cascaded
    result = await writer.write(
        Batch((Sample("press-2", "temp", T0, 2.0), Sample("press-1", "temp", T0, 3.0)))
    )
    assert result.samples_stored == 1
    assert [(r.sample.device, r.reason) for r in result.rejected] == [("press-2", "unknown_point")]


# --- what the writer remembers: good-hour bits, first seen, latest values ---------------


class Statements:
    """Records the SQL the writer's connections send (not the test's own queries)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: list[str] = []
        original = psycopg.AsyncCursor.execute

        async def execute(cur: Any, query: Any, params: Any = None, **kw: Any) -> Any:
            if cur.connection.info.parameter_status("application_name") == "tally-writer":
                self.sent.append(str(query))
            return await original(cur, query, params, **kw)

        monkeypatch.setattr(psycopg.AsyncCursor, "execute", execute)

    def touching(self, *words: str) -> list[str]:
        """Return the statements sent since the last reset that contain every word."""
        return [q for q in self.sent if all(w in q for w in words)]

    def reset(self) -> None:
        """Forget the statements sent so far."""
        self.sent.clear()


def hour_samples(
    hour: datetime, *points: tuple[str, str], quality: Quality = Quality.GOOD
) -> Batch:
    return Batch(tuple(Sample(d, p, hour + timedelta(minutes=i), float(i), quality)
                       for i, (d, p) in enumerate(points)))  # fmt: skip


ALL_POINTS = tuple((d, p) for d in ("press-1", "press-2") for p in ("temp", "run", "mode"))


async def good_hours(dsn: str) -> dict[tuple[str, str, date], int]:
    return {
        (d, p, day): bits
        for d, p, day, bits in await rows(
            dsn,
            "SELECT d.key, p.key, a.day, a.good_hours FROM point_activity a"
            " JOIN point p ON p.id = a.point_id JOIN device d ON d.id = p.device_id",
        )
    }


@pytest.mark.integration
async def test_a_batch_whose_hour_bits_are_known_sends_no_point_activity_statement(
    writer: SampleWriter, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements = Statements(monkeypatch)
    ten = datetime(2024, 5, 1, 10, tzinfo=UTC)
    await writer.write(hour_samples(ten, *ALL_POINTS))
    assert len(statements.touching("point_activity")) == 1  # new bits: written
    assert len(statements.touching("first_seen")) == 2  # points and devices: first seen
    before = await rows(database_url, "SELECT point_id, xmin::text FROM point_activity")
    statements.reset()

    await writer.write(hour_samples(ten + timedelta(minutes=30), *ALL_POINTS))
    assert statements.touching("point_activity") == []
    assert statements.touching("first_seen") == []
    assert await rows(database_url, "SELECT point_id, xmin::text FROM point_activity") == before
    assert await one(database_url, "SELECT count(*) FROM sample") == 12
    assert await one(database_url, "SELECT sum(samples) FROM device_activity") == 12

    # Bad samples in a new hour set no bit, so they need no statement either; one good
    # sample of one point in that hour does.
    eleven = ten + timedelta(hours=1)
    await writer.write(hour_samples(eleven, *ALL_POINTS, quality=Quality.BAD))
    assert statements.touching("point_activity") == []
    statements.reset()
    await writer.write(hour_samples(eleven + timedelta(minutes=5), ("press-2", "run")))
    assert len(statements.touching("point_activity")) == 1
    bits = await good_hours(database_url)
    assert bits.pop(("press-2", "run", ten.date())) == 1 << 10 | 1 << 11
    assert set(bits.values()) == {1 << 10}


@pytest.mark.integration
async def test_a_new_writer_with_an_empty_cache_still_sets_new_bits(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ten = datetime(2024, 5, 1, 10, tzinfo=UTC)
    async with SampleWriter(database_url) as first:
        await first.write(registered(device("press-1"), device("press-2")))
        await first.write(hour_samples(ten, *ALL_POINTS))
    statements = Statements(monkeypatch)
    async with SampleWriter(database_url) as restarted:
        # Hour 10 again (known to the database, not to this writer) and hour 11 (new).
        await restarted.write(hour_samples(ten + timedelta(minutes=20), *ALL_POINTS))
        await restarted.write(hour_samples(ten + timedelta(hours=1), *ALL_POINTS[:2]))
    assert len(statements.touching("point_activity")) == 2  # it re-sent the known bits once
    expected = {(d, p, ten.date()): 1 << 10 for d, p in ALL_POINTS}
    expected |= {(d, p, ten.date()): 1 << 10 | 1 << 11 for d, p in ALL_POINTS[:2]}
    assert await good_hours(database_url) == expected
    first_seen = await rows(database_url, "SELECT key, first_seen FROM device ORDER BY key")
    assert first_seen == [("press-1", ten), ("press-2", ten + timedelta(minutes=3))]


@pytest.mark.integration
async def test_a_transaction_that_fails_after_writing_bits_does_not_teach_the_cache(
    writer: SampleWriter, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bits are written first, then the devices' first seen, which a blocker holds:
    # the writer's backend is terminated there, after its point_activity statement.
    batch = hour_samples(datetime(2024, 5, 1, 10, tzinfo=UTC), *ALL_POINTS)
    statements = Statements(monkeypatch)
    async with await psycopg.AsyncConnection.connect(database_url) as blocker:
        await blocker.execute("SELECT 1 FROM device WHERE key = 'press-1' FOR NO KEY UPDATE")
        write = asyncio.create_task(writer.write(batch))
        killed: list[Any] = []
        for _ in range(250):
            killed = await (
                await blocker.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'tally-writer' AND wait_event_type = 'Lock'"
                    " AND datname = current_database()"
                )
            ).fetchall()
            if killed:
                break
            await asyncio.sleep(0.02)
        assert killed, "the writer never waited on the locked device row"
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(write, 10)
        await blocker.rollback()
    assert len(statements.touching("point_activity")) == 1  # it was sent, then rolled back
    assert await good_hours(database_url) == {}
    statements.reset()
    assert (await writer.write(batch)).applied  # the replay sends the bits again
    assert len(statements.touching("point_activity")) == 1
    assert set((await good_hours(database_url)).values()) == {1 << 10}
    assert len(await good_hours(database_url)) == len(ALL_POINTS)


@pytest.mark.integration
async def test_latest_values_wait_for_the_flush_and_close_flushes(database_url: str) -> None:
    async with SampleWriter(database_url, latest_interval=3600) as w:
        await w.write(registered(device("press-1")))
        await w.write(Batch((Sample("press-1", "temp", T0, 21.5),)))
        assert w.latest_pending == 1
        query = "SELECT last_value, last_seen, first_seen FROM point WHERE key = 'temp'"
        assert await one(database_url, query) == (None, None, T0)  # first seen: at once
        assert await one(database_url, "SELECT last_seen FROM device") is None
        await w.flush()
        assert w.latest_pending == 0
        assert await one(database_url, query) == (21.5, T0, T0)
        later = T0 + timedelta(seconds=5)
        await w.write(Batch((Sample("press-1", "temp", later, 22.0),)))
    # Closed: the pending value was written.
    assert await one(database_url, query) == (22.0, later, T0)
    assert await one(database_url, "SELECT last_seen FROM device") == later


@pytest.mark.integration
async def test_latest_values_become_visible_after_the_flush_interval(database_url: str) -> None:
    async with SampleWriter(database_url, latest_interval=0.2) as w:
        await w.write(registered(device("press-1")))
        await w.write(Batch((Sample("press-1", "temp", T0, 7.0),)))
        value = None
        for _ in range(200):  # up to 10 s on a loaded machine
            value = await one(database_url, "SELECT last_value FROM point WHERE key = 'temp'")
            if value is not None:
                break
            await asyncio.sleep(0.05)
        assert value == 7.0
        assert w.latest_pending == 0


@pytest.mark.integration
async def test_flushes_between_many_writes_leave_exact_latest_values(database_url: str) -> None:
    samples = mixed_samples(600, T0, timedelta(milliseconds=100))
    async with SampleWriter(database_url, latest_interval=0.01) as w:
        await w.write(registered(device("press-1"), device("press-2")))
        for k in range(0, len(samples), 20):
            await w.write(Batch(tuple(samples[k : k + 20])))
            await asyncio.sleep(0)  # let the timer in between writes
    latest: dict[tuple[str, str], Sample] = {}
    for s in samples:
        latest[s.device, s.point] = s
    got = await rows(
        database_url,
        "SELECT d.key, p.key, p.last_value, p.last_seen, p.last_quality FROM point p"
        " JOIN device d ON d.id = p.device_id",
    )
    assert sorted(got) == sorted((d, p, s.value, s.ts, s.quality) for (d, p), s in latest.items())
    assert await one(database_url, "SELECT sum(samples) FROM device_activity") == 600


@pytest.mark.integration
async def test_a_failed_flush_keeps_the_values_for_the_next_one(
    private_postgres: ThrowawayPostgres,
) -> None:
    dsn = private_postgres.dsn
    migrate(dsn)
    async with SampleWriter(dsn, connect_timeout=2, latest_interval=3600) as w:
        await w.write(registered(device("press-1")))
        await w.write(Batch((Sample("press-1", "temp", T0, 1.5),)))
        private_postgres.stop()
        with pytest.raises(StoreUnavailable, match="latest values not written"):
            await w.flush()
        assert w.latest_pending == 1
        private_postgres.start()
        await w.flush()
        assert w.latest_pending == 0
    assert await one(dsn, "SELECT last_value FROM point WHERE key = 'temp'") == 1.5


# --- registrations and events ------------------------------------------------------------


@pytest.mark.integration
async def test_registration_upserts_update_the_device_and_add_points_without_duplicates(
    writer: SampleWriter, database_url: str
) -> None:
    await writer.write(
        registered(device("press-1", ("temp", "run"), name="Press 1", device_type="press"))
    )
    changed = DeviceInfo(
        key="press-1",
        protocol="modbus",
        endpoint="127.0.0.1:1502",
        device_type="hydraulic press",
        industry="C3421",
        region="360100",
        identity={"serial": "SN-9"},
        points=(
            PointInfo("run", "00001", "bool", writable=True),
            PointInfo("speed", "40010", "uint16", unit="rpm"),
        ),
    )
    result = await writer.write(registered(changed))
    assert result.events_applied == 1
    name, endpoint, dtype, industry, region, identity = await one(
        database_url,
        "SELECT name, endpoint, device_type, industry, region, identity FROM device"
        " WHERE key = 'press-1'",
    )
    assert name == "Press 1"  # not stated again: kept
    assert (endpoint, dtype, industry, region) == (
        "127.0.0.1:1502",
        "hydraulic press",
        "C3421",
        "360100",
    )
    assert identity == {"serial": "SN-9"}
    points = await rows(
        database_url,
        "SELECT p.key, p.address, p.data_type, p.writable, p.unit FROM point p"
        " JOIN device d ON d.id = p.device_id WHERE d.key = 'press-1' ORDER BY p.key",
    )
    assert points == [
        ("mode", "40002", "float32", False, None),
        ("run", "00001", "bool", True, None),
        ("speed", "40010", "uint16", False, "rpm"),
        ("temp", "40000", "float32", False, None),
    ]
    assert await one(database_url, "SELECT count(*) FROM device") == 2
    # The new point takes samples at once, through the same writer's cache.
    stored = await writer.write(Batch((Sample("press-1", "speed", T0, 1200),)))
    assert stored.samples_stored == 1


@pytest.mark.integration
async def test_status_events_apply_in_order_and_an_older_one_is_ignored(
    writer: SampleWriter, database_url: str
) -> None:
    online = DeviceEvent(DeviceEventKind.ONLINE, "press-1", T0)
    offline = DeviceEvent(DeviceEventKind.OFFLINE, "press-1", T0 + timedelta(seconds=5))
    await writer.write(Batch((online, offline)))
    assert await one(
        database_url, "SELECT status, status_changed_at FROM device WHERE key = 'press-1'"
    ) == ("offline", T0 + timedelta(seconds=5))
    stale = DeviceEvent(DeviceEventKind.ONLINE, "press-1", T0 + timedelta(seconds=1))
    await writer.write(Batch((stale,)))
    assert await one(database_url, "SELECT status FROM device WHERE key = 'press-1'") == "offline"
    vanished = DeviceEvent(DeviceEventKind.VANISHED, "press-2", T0)
    await writer.write(Batch((vanished,)))
    assert await one(database_url, "SELECT status FROM device WHERE key = 'press-2'") == "vanished"


@pytest.mark.integration
async def test_registration_and_samples_in_one_batch(database_url: str) -> None:
    info = device("lathe-9", ("spindle",))
    records: tuple[Record, ...] = (
        DeviceEvent(DeviceEventKind.REGISTERED, "lathe-9", T0, info),
        Sample("lathe-9", "spindle", T0, 3.5),
    )
    async with SampleWriter(database_url) as w:
        result = await w.write(Batch(records))
    assert (result.events_applied, result.samples_stored) == (1, 1)


# --- rejected samples and contract errors -------------------------------------------------


@pytest.mark.integration
async def test_unknown_points_are_rejected_counted_and_reported_while_the_rest_lands(
    writer: SampleWriter, database_url: str
) -> None:
    good = mixed_samples(10, T0, timedelta(seconds=1))
    unknown = [
        Sample("press-1", "no-such-point", T0, 1.0),
        Sample("ghost", "temp", T0, 2.0),
        Sample("ghost", "temp", T0 + timedelta(seconds=1), 3.0),
    ]
    batch = Batch(tuple(good[:5] + unknown + good[5:]))
    rejected_before = metric("tally_samples_rejected_total", reason="unknown_point")
    result = await writer.write(batch)
    assert result.applied and result.samples_stored == 10
    assert sorted((r.sample.device, r.sample.point) for r in result.rejected) == [
        ("ghost", "temp"),
        ("ghost", "temp"),
        ("press-1", "no-such-point"),
    ]
    assert {r.reason for r in result.rejected} == {"unknown_point"}
    assert metric("tally_samples_rejected_total", reason="unknown_point") - rejected_before == 3
    assert await one(database_url, "SELECT count(*) FROM sample") == 10
    assert (
        await one(database_url, "SELECT samples FROM ingest_log WHERE batch_id = %s", batch.id)
        == 10
    )


@pytest.mark.integration
async def test_a_batch_of_only_unknown_points_is_logged_and_stores_nothing(
    writer: SampleWriter, database_url: str
) -> None:
    result = await writer.write(Batch((Sample("ghost", "x", T0, 1.0),)))
    assert result.applied and result.samples_stored == 0 and len(result.rejected) == 1
    assert await one(database_url, "SELECT count(*) FROM sample") == 0


@pytest.mark.integration
async def test_naive_time_stamp_is_refused_before_anything_is_written(
    writer: SampleWriter, database_url: str
) -> None:
    naive = Sample("press-2", "run", datetime(2024, 5, 1, 11, 0), 1.0)
    batch = Batch((Sample("press-1", "temp", T0, 1.0), naive))
    with pytest.raises(ValueError, match=r"device 'press-2' point 'run'.*timezone-aware"):
        await writer.write(batch)
    only_naive = Batch((naive,))
    with pytest.raises(ValueError, match="press-2"):
        await writer.write(only_naive)
    assert await one(database_url, "SELECT count(*) FROM ingest_log") == 1  # the registration
    assert (await writer.write(Batch((Sample("press-1", "temp", T0, 1.0),)))).applied


@pytest.mark.integration
async def test_aware_non_utc_time_stamps_are_stored_as_the_same_instant(
    writer: SampleWriter, database_url: str
) -> None:
    shanghai = timezone(timedelta(hours=8))
    ts = datetime(2024, 5, 1, 19, 30, tzinfo=shanghai)  # 11:30 UTC
    await writer.write(Batch((Sample("press-1", "temp", ts, 1.0),)))
    assert await one(database_url, "SELECT ts FROM sample") == ts
    hour = await one(database_url, "SELECT hour FROM device_activity")
    assert hour == datetime(2024, 5, 1, 11, tzinfo=UTC)


@pytest.mark.integration
async def test_unsupported_value_type_is_refused(writer: SampleWriter) -> None:
    bad = Sample("press-1", "temp", T0, b"\x01")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"press-1.*temp.*bytes"):
        await writer.write(Batch((bad,)))


@pytest.mark.integration
async def test_content_the_database_refuses_raises_batch_refused_and_the_writer_goes_on(
    writer: SampleWriter, database_url: str
) -> None:
    batch = Batch((Sample("press-1", "mode", T0, "auto\x00manual"),))  # NUL: not valid text
    with pytest.raises(BatchRefused, match=str(batch.id)):
        await writer.write(batch)
    assert (
        await one(database_url, "SELECT count(*) FROM ingest_log WHERE batch_id = %s", batch.id)
        == 0
    )
    assert (await writer.write(Batch((Sample("press-1", "mode", T0, "auto"),)))).applied


# --- value encoding and imported history --------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (21.5, (21.5, None)),
        (7, (7.0, None)),
        (True, (1.0, None)),
        (False, (0.0, None)),
        ("running", (None, "running")),
        (None, (None, None)),
    ],
)
async def test_values_are_encoded_by_python_type(
    writer: SampleWriter, database_url: str, value: Value, stored: tuple[Any, Any]
) -> None:
    await writer.write(Batch((Sample("press-1", "mode", T0, value, Quality.UNCERTAIN),)))
    await writer.flush()
    assert await one(database_url, "SELECT value, value_text, quality, live FROM sample") == (
        *stored,
        1,
        True,
    )
    last = await one(
        database_url,
        "SELECT last_value, last_value_text, last_quality FROM point WHERE key = 'mode'"
        " AND device_id = (SELECT id FROM device WHERE key = 'press-1')",
    )
    assert last == (*stored, 1)


@pytest.mark.integration
async def test_imported_samples_count_only_as_imported_and_never_as_good(
    writer: SampleWriter, database_url: str
) -> None:
    history = [
        Sample("press-1", "temp", T0 - timedelta(days=30) + timedelta(minutes=i), float(i),
               live=False)
        for i in range(5)
    ]  # fmt: skip
    live = Sample("press-1", "temp", T0 - timedelta(days=30), 99.0)
    await writer.write(Batch((*history, live)), source="import")
    await writer.flush()
    got = await rows(
        database_url,
        "SELECT samples, good_samples, imported_samples, first_ts, first_good_ts"
        " FROM device_activity ORDER BY hour",
    )
    # 10:59:30 + 0..4 min: hour 10 holds the live sample and one imported, hour 11 the rest.
    assert got[0] == (1, 1, 1, live.ts, live.ts)
    assert got[1] == (0, 0, 4, None, None)
    assert await rows(database_url, "SELECT day, good_hours FROM point_activity") == [
        (live.ts.date(), 1 << 10)
    ]
    assert await one(
        database_url, "SELECT last_value, first_seen FROM point WHERE last_value IS NOT NULL"
    ) == (99.0, live.ts)
    assert await one(database_url, "SELECT count(*) FROM sample WHERE NOT live") == 5


@pytest.mark.integration
async def test_an_older_batch_never_moves_a_point_last_value_backwards(
    writer: SampleWriter, database_url: str
) -> None:
    query = "SELECT last_value, first_seen, last_seen FROM point WHERE last_value IS NOT NULL"
    await writer.write(Batch((Sample("press-1", "temp", T0, 2.0),)))
    await writer.flush()
    await writer.write(Batch((Sample("press-1", "temp", T0 - timedelta(hours=2), 1.0),)))
    await writer.flush()
    assert await one(database_url, query) == (2.0, T0 - timedelta(hours=2), T0)
    # The same between flushes: the older sample does not replace the newer pending one.
    newer = Sample("press-1", "temp", T0 + timedelta(minutes=1), 3.0)
    await writer.write(Batch((newer,)))
    await writer.write(Batch((Sample("press-1", "temp", T0 + timedelta(seconds=1), 4.0),)))
    await writer.flush()
    assert await one(database_url, query) == (3.0, T0 - timedelta(hours=2), newer.ts)


# --- store outages ------------------------------------------------------------------------


@pytest.mark.integration
async def test_store_outage_raises_store_unavailable_and_the_batch_applies_once_later(
    private_postgres: ThrowawayPostgres,
) -> None:
    dsn = private_postgres.dsn
    migrate(dsn)
    first = Batch(tuple(mixed_samples(20, T0, timedelta(seconds=1))))
    second = Batch(tuple(mixed_samples(20, T0 + timedelta(minutes=1), timedelta(seconds=1))))
    async with SampleWriter(dsn, connect_timeout=2) as w:
        await w.write(registered(device("press-1"), device("press-2")))
        await w.write(first)
        private_postgres.stop()
        with pytest.raises(StoreUnavailable, match="replaying is safe"):
            await w.write(second)  # the connection it held is gone
        with pytest.raises(StoreUnavailable):
            await w.write(second)  # and no new one can be opened
        assert metric("tally_store_up") == 0
        private_postgres.start()
        assert (await w.write(second)).applied
        assert (await w.write(second)).duplicate
        assert metric("tally_store_up") == 1
    assert await one(dsn, "SELECT count(*) FROM sample") == 40
    assert await one(dsn, "SELECT sum(samples) FROM device_activity") == 40


@pytest.mark.integration
async def test_connection_killed_mid_transaction_raises_store_unavailable(
    writer: SampleWriter, database_url: str
) -> None:
    batch = Batch(tuple(mixed_samples(10, T0, timedelta(seconds=1))))
    async with await psycopg.AsyncConnection.connect(database_url) as blocker:
        # Hold the batch's ingest-log key in an open transaction: the writer's insert
        # waits on it, inside its own transaction, until its backend is terminated.
        await blocker.execute(
            "INSERT INTO ingest_log (batch_id, samples, events) VALUES (%s, 0, 0)", (batch.id,)
        )
        write = asyncio.create_task(writer.write(batch))
        for _ in range(200):
            killed = await (
                await blocker.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'tally-writer' AND wait_event_type = 'Lock'"
                    " AND datname = current_database()"
                )
            ).fetchall()
            if killed:
                break
            await asyncio.sleep(0.02)
        assert killed, "the writer never waited on the held ingest-log key"
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(write, 10)
        await blocker.rollback()
    assert (await writer.write(batch)).applied
    assert await one(database_url, "SELECT count(*) FROM sample") == 10


@pytest.mark.integration
async def test_unreachable_store_on_connect() -> None:
    from collector.embedded.ports import free_port

    w = SampleWriter(f"postgresql://nobody@127.0.0.1:{free_port()}/none", connect_timeout=1)
    with pytest.raises(StoreUnavailable, match="cannot reach the store"):
        await w.connect()
    with pytest.raises(StoreUnavailable):
        await w.write(Batch((Sample("a", "b", T0, 1.0),)))
