"""POST /v1/calls and GET /v1/calls/monthly over the API."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from api.auth import Role
from tests.api.apitest import api_client, bearer, role_keys

NOW = datetime(2026, 3, 15, tzinfo=UTC)


@pytest.mark.integration
async def test_calls_are_ingested_per_event_and_counted_by_month(database_url: str) -> None:
    keys = await role_keys(database_url)
    op, aud = bearer(keys[Role.OPERATOR]), bearer(keys[Role.AUDITOR])
    events = [
        {"id": "a", "ts": "2026-01-31T23:59:59+08:00", "app": "m1", "outcome": "ok"},
        {"id": "b", "ts": "2026-02-01T00:00:00+08:00", "app": "m1", "outcome": "error"},
        {"id": "c", "ts": "2026-02-10T00:00:00+08:00", "app": "m1", "outcome": "sometimes"},
        {"id": "d", "ts": "2026-02-11T00:00:00+08:00", "app": "tool", "outcome": "ok"},
    ]
    async with api_client(database_url, now=NOW) as (client, _):
        for key, kind in (("m1", "mechanism_model"), ("tool", "dev_tool")):
            reg = {"key": key, "name": key, "kind": kind, "category": "c"}
            assert (await client.put(f"/v1/apps/{key}", json=reg, headers=op)).status_code == 201
        first = await client.post("/v1/calls", json={"events": events}, headers=op)
        again = await client.post("/v1/calls", json={"events": events[:2]}, headers=op)
        by_auditor = await client.post("/v1/calls", json={"events": events}, headers=aud)
        not_json = await client.post("/v1/calls", content=b"{", headers=op)
        too_many = await client.post("/v1/calls", json={"events": [events[0]] * 10_001}, headers=op)
        window = {"start": "2026-01-01T00:00:00+08:00", "end": "2026-03-01T00:00:00+08:00"}
        monthly = await client.get(
            "/v1/calls/monthly", params={**window, "group_by": "kind"}, headers=aud
        )
        models = await client.get(
            "/v1/calls/monthly", params={**window, "kind": "mechanism_model"}, headers=aud
        )
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["received"], body["stored"], body["duplicates"]) == (4, 3, 0)
    assert [(r["index"], r["event_id"]) for r in body["rejected"]] == [(2, "c")]
    assert "outcome 'sometimes'" in body["rejected"][0]["reason"]
    assert (again.json()["stored"], again.json()["duplicates"]) == (0, 2)
    assert by_auditor.status_code == 403
    assert not_json.status_code == 422
    assert too_many.status_code == 413
    figures = monthly.json()
    assert figures["timezone"] == "Asia/Shanghai"
    assert figures["months"] == ["2026-01", "2026-02"]
    assert {g["key"]: g["calls"] for g in figures["groups"]} == {
        "mechanism_model": {"2026-01": 1, "2026-02": 1},
        "dev_tool": {"2026-01": 0, "2026-02": 1},
    }
    assert figures["total"]["monthly_average"] == 1.5
    assert models.json()["total"]["calls"] == {"2026-01": 1, "2026-02": 1}
    assert models.json()["total"]["ok_calls"] == {"2026-01": 1, "2026-02": 0}


@pytest.mark.integration
async def test_numbers_beyond_64_bits_reject_their_event_only(database_url: str) -> None:
    keys = await role_keys(database_url)
    op = bearer(keys[Role.OPERATOR])
    good = '{"id": "g", "ts": "2026-02-01T00:00:00+08:00", "app": "m1", "outcome": "ok"}'
    huge = (
        '{"id": "h", "ts": "2026-02-01T00:00:00+08:00", "app": "m1", "outcome": "ok",'
        f' "duration_ms": 1{"0" * 400}}}'
    )
    body = f'{{"events": [{good}, {huge}]}}'.encode()
    async with api_client(database_url, now=NOW) as (client, _):
        reg = {"key": "m1", "name": "m1", "kind": "mechanism_model", "category": "c"}
        assert (await client.put("/v1/apps/m1", json=reg, headers=op)).status_code == 201
        answer = await client.post(
            "/v1/calls", content=body, headers={**op, "Content-Type": "application/json"}
        )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["stored"] == 1
    assert [(r["index"], r["event_id"]) for r in result["rejected"]] == [(1, "h")]
    assert "duration_ms" in result["rejected"][0]["reason"]


@pytest.mark.integration
async def test_concurrent_batches_sharing_ids_are_answered_each_for_its_own(
    database_url: str,
) -> None:
    """Batches posted together are applied in groups; each answer counts its own events."""
    keys = await role_keys(database_url)
    op = bearer(keys[Role.OPERATOR])

    def batch(lo: int, hi: int) -> dict[str, object]:
        return {
            "events": [
                {"id": f"e{i}", "ts": "2026-02-03T10:00:00+08:00", "app": "m1", "outcome": "ok"}
                for i in range(lo, hi)
            ]
        }

    async with api_client(database_url, now=NOW) as (client, _):
        reg = {"key": "m1", "name": "m1", "kind": "mechanism_model", "category": "c"}
        assert (await client.put("/v1/apps/m1", json=reg, headers=op)).status_code == 201
        parts = [(0, 300), (200, 500), (400, 700), (0, 700), (650, 800)]
        answers = await asyncio.gather(
            *(client.post("/v1/calls", json=batch(lo, hi), headers=op) for lo, hi in parts)
        )
        window = {"start": "2026-02-01T00:00:00+08:00", "end": "2026-03-01T00:00:00+08:00"}
        monthly = await client.get("/v1/calls/monthly", params=window, headers=op)
    results = [a.json() for a in answers]
    assert all(a.status_code == 200 for a in answers)
    for (lo, hi), result in zip(parts, results, strict=True):
        assert result["stored"] + result["duplicates"] == hi - lo
    assert sum(r["stored"] for r in results) == 800
    assert monthly.json()["total"]["calls"] == {"2026-02": 800}
