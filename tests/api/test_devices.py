"""GET /v1/devices and /v1/devices/{id} against a real PostgreSQL."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.auth import Role
from tests.api.apitest import WINDOW, Seed, add_key, api_client, bearer, build_fleet, utc

pytestmark = pytest.mark.integration


@pytest.fixture
def seed(database_url: str) -> Iterator[Seed]:
    s = Seed(database_url)
    try:
        yield s
    finally:
        s.close()


async def keys_of(client: httpx.AsyncClient, key: str, **params: Any) -> list[str]:
    answer = await client.get(
        "/v1/devices", params={**WINDOW, "limit": 1000, **params}, headers=bearer(key)
    )
    assert answer.status_code == 200, answer.text
    return [d["key"] for d in answer.json()["items"]]


async def test_pages_are_ordered_by_key_bounded_and_complete(database_url: str, seed: Seed) -> None:
    # Insert in scrambled order; pages must come back ordered by key.
    names = [f"dev-{i:03d}" for i in range(23)]
    for name in names[::2] + names[1::2]:
        seed.device(name)
    seed.device("sim-000", simulated=True)
    key = await add_key(database_url, Role.AUDITOR)
    seen: list[str] = []
    async with api_client(database_url) as (client, _):
        offset: int | None = 0
        pages = 0
        while offset is not None and pages < 10:
            answer = await client.get(
                "/v1/devices", params={"limit": 5, "offset": offset}, headers=bearer(key)
            )
            assert answer.status_code == 200
            page = answer.json()
            assert page["total"] == 23 and page["limit"] == 5 and page["offset"] == offset
            assert len(page["items"]) <= 5
            seen += [d["key"] for d in page["items"]]
            offset = page["next_offset"]
            pages += 1
        assert pages == 5
        past_end = (
            await client.get("/v1/devices", params={"offset": 100}, headers=bearer(key))
        ).json()
        assert past_end["items"] == [] and past_end["total"] == 23
        assert past_end["next_offset"] is None
        default = (await client.get("/v1/devices", headers=bearer(key))).json()
        assert default["limit"] == 100 and len(default["items"]) == 23
        with_sim = (
            await client.get(
                "/v1/devices", params={"include_simulated": "true"}, headers=bearer(key)
            )
        ).json()
        assert with_sim["total"] == 24 and with_sim["include_simulated"] is True
        assert with_sim["items"][-1]["key"] == "sim-000"
        assert with_sim["items"][-1]["simulated"] is True
        for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "x"}):
            answer = await client.get("/v1/devices", params=bad, headers=bearer(key))
            assert answer.status_code == 422, bad
    assert seen == sorted(names)


async def test_filters(database_url: str, seed: Seed) -> None:
    build_fleet(seed)
    key = await add_key(database_url, Role.AUDITOR)
    async with api_client(database_url) as (client, _):
        assert await keys_of(client, key) == [
            "a-reactor", "b-lathe", "c-before", "d-after", "e-bad", "f-imported", "h-ent",
            "i-farm",
        ]  # fmt: skip
        assert await keys_of(client, key, status="connected") == [
            "a-reactor", "b-lathe", "h-ent", "i-farm",
        ]  # fmt: skip
        assert await keys_of(client, key, status="connected", include_simulated="true") == [
            "a-reactor", "b-lathe", "g-sim", "h-ent", "i-farm",
        ]  # fmt: skip
        assert await keys_of(client, key, status="online") == ["a-reactor", "e-bad"]
        assert await keys_of(client, key, status="offline") == ["b-lathe"]
        assert await keys_of(client, key, industry="C25") == ["h-ent"]
        assert await keys_of(client, key, industry="C26", status="connected") == ["a-reactor"]
        assert await keys_of(client, key, type="pump") == ["c-before", "d-after"]
        assert await keys_of(client, key, protocol="opcua") == ["a-reactor", "i-farm"]
        assert await keys_of(client, key, protocol="opcua", type="reactor") == ["a-reactor"]
        # The drill-down behind a count: connected devices of a wider window.
        assert await keys_of(
            client, key, status="connected", start="2024-05-01T00:00:00Z",
            end="2024-05-04T00:00:00Z",
        ) == ["a-reactor", "b-lathe", "c-before", "d-after", "h-ent", "i-farm"]  # fmt: skip
        bad = await client.get("/v1/devices", params={"status": "dead"}, headers=bearer(key))
        assert bad.status_code == 422


async def test_listing_shows_window_activity(database_url: str, seed: Seed) -> None:
    ids = build_fleet(seed)
    key = await add_key(database_url, Role.AUDITOR)
    async with api_client(database_url) as (client, _):
        answer = await client.get("/v1/devices", params=WINDOW, headers=bearer(key))
    items = {d["key"]: d for d in answer.json()["items"]}
    a = items["a-reactor"]
    assert a["id"] == ids["a-reactor"]
    assert (a["connected"], a["samples"], a["good_samples"]) == (True, 3, 2)
    assert a["first_sample"] == "2024-05-01T10:45:00Z"
    assert a["last_sample"] == "2024-05-02T04:00:00Z"
    assert a["last_good_sample"] == "2024-05-02T03:00:00Z"
    assert (a["industry"], a["process_industry"], a["region"]) == ("C26", True, "360100")
    assert items["b-lathe"]["process_industry"] is False
    assert items["i-farm"]["process_industry"] is None
    h = items["h-ent"]
    assert (h["industry"], h["region"], h["enterprise"]) == ("C25", "320100", "acme-refinery")
    e = items["e-bad"]
    assert (e["connected"], e["samples"], e["good_samples"]) == (False, 1, 0)
    f = items["f-imported"]
    assert (f["connected"], f["samples"], f["imported_samples"]) == (False, 0, 500)
    assert f["first_sample"] is None
    c = items["c-before"]
    assert (c["connected"], c["samples"]) == (False, 0)


async def test_device_detail_has_points_and_window_activity(database_url: str, seed: Seed) -> None:
    ids = build_fleet(seed)
    d = ids["a-reactor"]
    p = seed.point(d, "spare")
    seed.point_day(p, utc(2024, 5, 1).date(), [3, 4, 23])  # 23:00 is inside, 03-04 are not
    key = await add_key(database_url, Role.AUDITOR)
    async with api_client(database_url) as (client, _):
        answer = await client.get(f"/v1/devices/{d}", params=WINDOW, headers=bearer(key))
        sim = await client.get(f"/v1/devices/{ids['g-sim']}", headers=bearer(key))
        missing = await client.get("/v1/devices/999999", headers=bearer(key))
        bad = await client.get("/v1/devices/abc", headers=bearer(key))
    assert answer.status_code == 200
    body = answer.json()
    assert body["key"] == "a-reactor" and body["samples"] == 3
    assert body["window"]["start"] == "2024-05-01T10:00:00Z"
    points = {pt["key"]: pt for pt in body["points"]}
    assert list(points) == ["level", "pressure", "spare", "temp"]
    assert (points["temp"]["good_hours"], points["temp"]["active"]) == (1, True)
    assert points["pressure"]["good_hours"] == 1
    assert (points["level"]["good_hours"], points["level"]["active"]) == (0, False)
    assert points["spare"]["good_hours"] == 1
    assert sim.status_code == 200 and sim.json()["simulated"] is True
    assert missing.status_code == 404 and "999999" in missing.json()["detail"]
    assert bad.status_code == 422
