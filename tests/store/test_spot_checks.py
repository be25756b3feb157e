"""Spot checks in the store: candidates are the connected devices, records read back as JSON."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from psycopg import AsyncConnection

from adapters.base import Quality
from collector.spotcheck.reader import Reading, Target
from collector.spotcheck.selection import select
from collector.store import audit, spot_checks
from tests.api.apitest import Seed, build_fleet, utc

pytestmark = pytest.mark.integration

START, END = utc(2024, 5, 1, 10), utc(2024, 5, 3, 6)


async def test_candidates_are_the_devices_counted_as_connected(database_url: str) -> None:
    seed = Seed(database_url)
    try:
        ids = build_fleet(seed)
    finally:
        seed.close()
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        real = await spot_checks.candidates(conn, START, END, include_simulated=False)
        everything = await spot_checks.candidates(conn, START, END, include_simulated=True)
        with pytest.raises(ValueError, match="UTC hour"):
            await spot_checks.candidates(conn, START + timedelta(minutes=5), END, False)
    # Not: before/after the window, bad quality only, imported only; simulated only if asked.
    assert [c.key for c in real] == ["a-reactor", "b-lathe", "h-ent", "i-farm"]
    assert [c.key for c in everything] == ["a-reactor", "b-lathe", "g-sim", "h-ent", "i-farm"]
    assert real[0].device_id == ids["a-reactor"] and real[0].protocol == "opcua"


async def test_the_point_read_is_the_one_with_the_latest_good_sample(database_url: str) -> None:
    seed = Seed(database_url)
    try:
        device = seed.device("boiler")
        old, bad, fresh, _never = (seed.point(device, k) for k in ("a-old", "b-bad", "c-new", "d"))
        seed.live(device, old, utc(2024, 5, 2, 1))
        for point, minutes, quality in ((old, 1, 0), (bad, 9, 2), (fresh, 5, 0)):
            seed.conn.execute(
                "UPDATE point SET last_seen = %s, last_quality = %s WHERE id = %s",
                (utc(2024, 5, 2, 3, minutes), quality, point),
            )
    finally:
        seed.close()
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        (candidate,) = await spot_checks.candidates(conn, START, END, False)
    assert candidate.point == "c-new"  # good and newest beats a newer bad one


async def test_a_recorded_spot_check_reads_back_as_plain_json_and_is_audited(
    database_url: str,
) -> None:
    seed = Seed(database_url)
    try:
        pump = seed.device("pump")
        seed.point(pump, "flow")
    finally:
        seed.close()
    selection = select("s", ["pump", "gone"], 5)
    rank = {p.key: p.rank for p in selection.picks}
    readings = [
        Reading(Target(pump, "pump", "modbus", "flow", rank["pump"]), True, float("nan"),
                Quality.UNCERTAIN, utc(2024, 5, 3, 5, 1), utc(2024, 5, 3, 4), 2.5),
        Reading(Target(pump, "gone", "modbus", None, rank["gone"]), False,
                error="device 'gone' has no registered point"),
    ]  # fmt: skip
    new = spot_checks.NewSpotCheck(
        requested_by="api-key:abcd0123", seed="s", sample_size=5, window_spec="2d",
        window_start=START, window_end=END, include_simulated=False, selection=selection,
        created_at=utc(2024, 5, 3, 5), completed_at=utc(2024, 5, 3, 5, 2), readings=readings,
    )  # fmt: skip
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        first = await spot_checks.record(conn, new)
        second = await spot_checks.record(conn, new)
        stored = await spot_checks.spot_check(conn, first)
        assert await spot_checks.spot_check(conn, second + 1) is None
        total, page = await spot_checks.spot_check_page(conn, 1, 0)
        verdict = await audit.verify(conn)
        cur = await conn.execute("SELECT action, subject FROM audit_log ORDER BY seq")
        entries = await cur.fetchall()
    assert stored is not None
    assert json.loads(json.dumps(stored, allow_nan=False)) == stored
    assert (stored["picked"], stored["answered"], stored["unanswered"]) == (2, 1, 1)
    assert stored["candidates"] == 2 and stored["candidates_digest"] == selection.candidates_digest
    assert stored["window"] == {
        "spec": "2d", "start": START.isoformat(), "end": END.isoformat()
    }  # fmt: skip
    flow, gone = stored["devices"]
    assert (flow["value"], flow["quality"], flow["latency_ms"]) == ("nan", "uncertain", 2.5)
    assert flow["value_ts"] == utc(2024, 5, 3, 4).isoformat()
    assert (gone["answered"], gone["point"], gone["value"]) == (False, None, None)
    assert "no registered point" in gone["error"]
    assert "SHA-256" in stored["selection_rule"]
    assert total == 2 and [p["id"] for p in page] == [second] and "devices" not in page[0]
    assert verdict.ok and entries == [
        ("spot_check", f"spot-check/{first}"), ("spot_check", f"spot-check/{second}")
    ]  # fmt: skip
