"""Call ingestion: once per event id, rollups by month in Asia/Shanghai, per-event rejection."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg import AsyncConnection

from collector.registry.models import AppRecord, DeveloperRecord, EnterpriseRecord
from collector.store import calls as calls_store
from collector.store import registry
from collector.store.call_months import full_months, monthly_calls
from collector.store.calls import CallIngest, ZoneMismatch
from collector.store.registry_figures import callers, registry_figures

SHANGHAI = "Asia/Shanghai"
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def event(n: int, ts: str, app: str = "model-a", **extra: Any) -> dict[str, Any]:
    return {"id": f"e{n}", "ts": ts, "app": app, "outcome": "ok", **extra}


async def _registries(conn: AsyncConnection[Any]) -> None:
    await registry.register(
        conn, "enterprises", [EnterpriseRecord(key="acme", name="Acme", industry="C26")]
    )
    await registry.register(
        conn,
        "developers",
        [DeveloperRecord(key="dev-1", name="Dev", third_party=True, languages=("Python",))],
    )
    await registry.register(
        conn,
        "apps",
        [
            AppRecord(key="model-a", name="A", kind="mechanism_model", category="thermal"),
            AppRecord(key="sdk", name="SDK", kind="dev_tool", developer="dev-1"),
        ],
    )


@pytest.mark.integration
async def test_month_boundaries_follow_shanghai_and_duplicates_count_once(
    database_url: str,
) -> None:
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        await _registries(conn)
        ingest = CallIngest(SHANGHAI)
        batch = [
            event(1, "2026-01-31T23:59:59+08:00"),  # January in Shanghai (15:59:59 UTC)
            event(2, "2026-02-01T00:00:00+08:00"),  # February in Shanghai (Jan 31 in UTC)
            event(3, "2026-02-15T10:00:00Z", outcome="error"),
        ]
        first = await ingest.ingest(conn, batch, NOW)
        again = await ingest.ingest(conn, [*batch, event(2, "2026-02-01T00:00:00+08:00")], NOW)
        start = datetime(2026, 1, 1, tzinfo=UTC) - timedelta(hours=8)
        figures = await monthly_calls(conn, start, start + timedelta(days=59), SHANGHAI)
    assert (first.stored, first.duplicates, first.rejected) == (3, 0, ())
    assert (again.stored, again.duplicates) == (0, 4)
    assert figures.months == ("2026-01", "2026-02")
    assert figures.total.calls == {"2026-01": 1, "2026-02": 2}
    assert figures.total.ok_calls == {"2026-01": 1, "2026-02": 1}


@pytest.mark.integration
async def test_a_bad_event_is_rejected_alone_with_its_index_and_reason(database_url: str) -> None:
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        await _registries(conn)
        ingest = CallIngest(SHANGHAI)
        batch: list[object] = [
            event(1, "2026-03-01T08:00:00+08:00"),
            event(2, "2026-03-01T08:00:00"),  # no offset
            event(3, "2026-03-01T09:00:00+08:00", app="nope"),
            "not an object",
            event(5, "2026-03-02T09:00:00+08:00", enterprise="acme"),
            event(6, "2027-01-01T00:00:00Z"),  # in the future of NOW
        ]
        result = await ingest.ingest(conn, batch, NOW)
        cur = await conn.execute("SELECT event_id FROM call_event ORDER BY event_id")
        stored = [r[0] for r in await cur.fetchall()]
    assert result.stored == 2
    assert stored == ["e1", "e5"]
    reasons = {r.index: r.reason for r in result.rejected}
    assert sorted(reasons) == [1, 2, 3, 5]
    assert "no UTC offset" in reasons[1]
    assert "app 'nope' is not registered" in reasons[2]
    assert "JSON object" in reasons[3]
    assert "in the future" in reasons[5]
    assert result.rejected[0].event_id == "e2"


@pytest.mark.integration
async def test_concurrent_batches_with_shared_ids_store_each_event_once(database_url: str) -> None:
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        await _registries(conn)
    ingest = CallIngest(SHANGHAI)
    events = [event(i, f"2026-04-{1 + i % 28:02d}T12:00:00+08:00") for i in range(2000)]

    async def send(part: list[dict[str, Any]]) -> int:
        async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
            return (await ingest.ingest(conn, part, NOW)).stored

    # Four writers with overlapping halves: every event is sent twice.
    stored = await asyncio.gather(
        send(events[:1000]), send(events[500:1500]), send(events[1000:]), send(events[:500])
    )
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*), (SELECT sum(calls) FROM call_monthly) FROM call_event"
        )
        row = await cur.fetchone()
    assert sum(stored) == 2000
    assert row == (2000, 2000)


@pytest.mark.integration
async def test_another_zone_is_refused_once_months_are_counted(database_url: str) -> None:
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        await _registries(conn)
        await CallIngest(SHANGHAI).ingest(conn, [event(1, "2026-01-05T00:00:00Z")], NOW)
        with pytest.raises(ZoneMismatch, match="Asia/Shanghai"):
            await CallIngest("UTC").ingest(conn, [event(2, "2026-01-05T00:00:00Z")], NOW)


@pytest.mark.integration
async def test_callers_in_a_window_are_exact_at_the_edges(database_url: str) -> None:
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        await _registries(conn)
        batch = [
            event(1, "2026-05-10T03:00:00Z", app="sdk", developer="dev-1", enterprise="acme"),
            event(2, "2026-05-12T22:00:00Z", app="model-a", developer="dev-1"),
        ]
        await CallIngest(SHANGHAI).ingest(conn, batch, NOW)

        def at(day: int, hour: int) -> datetime:
            return datetime(2026, 5, day, hour, tzinfo=UTC)

        assert await callers(conn, "enterprise", at(10, 3), at(10, 4)) == {1}
        assert await callers(conn, "enterprise", at(10, 4), at(11, 0)) == set()
        assert await callers(conn, "enterprise", at(9, 0), at(10, 3)) == set()
        assert await callers(conn, "enterprise", at(10, 1), at(10, 2)) == set()  # same day
        assert await callers(conn, "enterprise", at(9, 5), at(12, 0)) == {1}
        # Developer 1 called a dev tool only on the 10th; the call on the 12th was a model.
        assert await callers(conn, "dev_tool_developer", at(11, 0), at(13, 0)) == set()
        figures = await registry_figures(conn, at(1, 0), at(31, 0), SHANGHAI)
    assert figures["developers"].dev_tool_callers == 1
    assert figures["enterprise_users"].by_industry == {"C26": 1}
    assert figures["calls"].months == ()


def test_full_months_are_those_wholly_inside_the_window() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC) - timedelta(hours=8)  # Jan 1 00:00 Shanghai
    assert [m.month for m in full_months(start, start + timedelta(days=31), SHANGHAI)] == [1]
    assert full_months(start + timedelta(hours=1), start + timedelta(days=31), SHANGHAI) == []
    assert [m.month for m in full_months(start, start + timedelta(days=89), SHANGHAI)] == [1, 2]


@pytest.mark.integration
@pytest.mark.parametrize("stale_probes", [1, 99])
async def test_an_id_recorded_by_a_concurrent_batch_after_the_probe_counts_once(
    database_url: str, monkeypatch: pytest.MonkeyPatch, stale_probes: int
) -> None:
    """The probe for recorded ids can be outrun; the unique key still counts each id once."""
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        await _registries(conn)
        ingest = CallIngest(SHANGHAI)
        await ingest.ingest(conn, [event(1, "2026-03-01T08:00:00+08:00")], NOW)
        probes = 0
        real_probe = calls_store._skip_recorded

        async def outrun(conn: AsyncConnection[Any]) -> Any:
            # As if e1 had been recorded by another process just after this probe ran.
            nonlocal probes
            probes += 1
            if probes <= stale_probes:
                return await conn.execute("SELECT NULL::text WHERE false")
            return await real_probe(conn)

        monkeypatch.setattr(calls_store, "_skip_recorded", outrun)
        batch = [event(1, "2026-03-01T08:00:00+08:00"), event(2, "2026-03-02T08:00:00+08:00")]
        result = await ingest.ingest(conn, batch, NOW)
        cur = await conn.execute(
            "SELECT count(*), (SELECT sum(calls) FROM call_monthly),"
            " (SELECT count(*) FROM call_event_seen) FROM call_event"
        )
        row = await cur.fetchone()
    assert (result.stored, result.duplicates, result.rejected) == (1, 1, ())
    assert row == (2, 2, 2)
    # One stale probe: tried again with a fresh one. Always stale: the last attempt
    # dedupes with ON CONFLICT and does not probe.
    assert probes == (2 if stale_probes == 1 else calls_store._RETRIES - 1)


@pytest.mark.integration
async def test_event_ids_are_distinct_byte_for_byte(database_url: str) -> None:
    """Ids differing only in case or Unicode normalisation are different events."""
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        await _registries(conn)
        ingest = CallIngest(SHANGHAI)
        ids = ["Ab", "ab", "caf\u00e9", "cafe\u0301", "e10"]
        batch = [{**event(0, "2026-03-01T08:00:00+08:00"), "id": i} for i in ids]
        first = await ingest.ingest(conn, batch, NOW)
        again = await ingest.ingest(conn, list(reversed(batch)), NOW)
        cur = await conn.execute("SELECT event_id FROM call_event ORDER BY event_id")
        stored = [r[0] for r in await cur.fetchall()]
    assert (first.stored, first.duplicates) == (5, 0)
    assert (again.stored, again.duplicates) == (0, 5)
    assert sorted(stored) == sorted(ids)
