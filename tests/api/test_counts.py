"""GET /v1/counts on a hand-built set of rollup rows, against a real PostgreSQL."""

from collections.abc import Iterator
from datetime import timedelta
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


async def get_counts(client: httpx.AsyncClient, key: str, **params: Any) -> dict[str, Any]:
    answer = await client.get("/v1/counts", params={**WINDOW, **params}, headers=bearer(key))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_counts_follow_the_definitions_at_the_window_edges(
    database_url: str, seed: Seed
) -> None:
    build_fleet(seed)
    key = await add_key(database_url, Role.AUDITOR)
    async with api_client(database_url) as (client, _):
        body = await get_counts(client, key)
    assert body["window"]["start"] == "2024-05-01T10:00:00Z"
    assert body["window"]["end"] == "2024-05-03T06:00:00Z"
    assert body["window"]["hours"] == 44
    assert body["window"]["requested_start"] == "2024-05-01T10:30:00Z"
    # a-reactor, b-lathe, h-ent, i-farm; not c-before, d-after, e-bad, f-imported, g-sim.
    assert body["connected_devices"] == 4
    # reactor, cnc, compressor (i-farm has no type).
    assert body["device_types"] == 3
    # temp + pressure (a), spindle (b), rpm + vib (h), soil (i).
    assert body["points"] == 6
    # a (C26) and h (enterprise C25) are process; b (C34) discrete; i (A01) unclassified.
    assert body["process_points"] == 4
    assert body["unclassified_industries"] == ["A01"]
    # a-reactor and e-bad (g-sim excluded).
    assert body["online_now"] == 2
    assert body["include_simulated"] is False
    assert body["simulated_devices_excluded"] == 1
    assert body["group_by"] is None and body["groups"] == []
    for term in ("window", "connected_devices", "device_types", "points", "process_points",
                 "online_now", "simulated"):  # fmt: skip
        assert body["definitions"][term], term
    assert "excluded" in body["definitions"]["simulated"]
    assert "floored" in body["definitions"]["window"]


async def test_simulated_devices_count_only_when_asked_and_the_answer_says_so(
    database_url: str, seed: Seed
) -> None:
    build_fleet(seed)
    key = await add_key(database_url, Role.AUDITOR)
    async with api_client(database_url) as (client, _):
        body = await get_counts(client, key, include_simulated="true")
    assert body["include_simulated"] is True
    assert body["simulated_devices_excluded"] == 0
    assert body["connected_devices"] == 5
    assert body["device_types"] == 3  # g-sim is a reactor, already counted
    assert body["points"] == 8
    assert body["process_points"] == 6
    assert body["online_now"] == 3
    assert "INCLUDED" in body["definitions"]["simulated"]


async def test_narrow_windows_are_exact_to_the_hour(database_url: str, seed: Seed) -> None:
    build_fleet(seed)
    key = await add_key(database_url, Role.AUDITOR)
    async with api_client(database_url) as (client, _):
        # Only the 09:00 hour of 05-01: c-before alone.
        early = await client.get(
            "/v1/counts",
            params={"start": "2024-05-01T09:00:00Z", "end": "2024-05-01T10:00:00Z"},
            headers=bearer(key),
        )
        # Only 05-02 03:00-04:00: a-reactor's pressure point, not its temp point.
        middle = await client.get(
            "/v1/counts",
            params={"start": "2024-05-02T03:00:00+00:00", "end": "2024-05-02T04:00:00+00:00"},
            headers=bearer(key),
        )
    assert early.status_code == middle.status_code == 200
    assert (early.json()["connected_devices"], early.json()["points"]) == (1, 1)
    assert middle.json()["connected_devices"] == 1
    assert middle.json()["points"] == middle.json()["process_points"] == 1


@pytest.mark.parametrize(
    ("group_by", "expected"),
    [
        (
            "industry",
            {
                "A01": (1, 0, 1, 0),
                "C25": (1, 1, 2, 2),
                "C26": (1, 1, 2, 2),
                "C34": (1, 1, 1, 0),
            },
        ),
        (
            "type",
            {
                "cnc": (1, 1, 1, 0),
                "compressor": (1, 1, 2, 2),
                "reactor": (1, 1, 2, 2),
                None: (1, 0, 1, 0),
            },
        ),
        ("region", {"320100": (1, 1, 2, 2), "360100": (2, 2, 3, 2), None: (1, 0, 1, 0)}),
        ("protocol", {"modbus": (2, 2, 3, 2), "opcua": (2, 1, 3, 2)}),
    ],
)
async def test_group_by_every_dimension(
    database_url: str,
    seed: Seed,
    group_by: str,
    expected: dict[str | None, tuple[int, int, int, int]],
) -> None:
    build_fleet(seed)
    key = await add_key(database_url, Role.AUDITOR)
    async with api_client(database_url) as (client, _):
        body = await get_counts(client, key, group_by=group_by)
    assert body["group_by"] == group_by
    connected = {
        g["key"]: (g["connected_devices"], g["device_types"], g["points"], g["process_points"])
        for g in body["groups"]
        if g["connected_devices"] or g["points"]
    }
    assert connected == expected
    # Totals are the same as without grouping.
    assert (body["connected_devices"], body["points"], body["process_points"]) == (4, 6, 4)
    # Online-now devices appear in their group even when not connected (e-bad).
    assert sum(g["online_now"] for g in body["groups"]) == body["online_now"] == 2


async def test_relative_window_ends_with_the_current_hour(database_url: str, seed: Seed) -> None:
    now = utc(2024, 6, 10, 12, 40)
    d = seed.device("recent", device_type="plc", industry="C26")
    seed.live(d, seed.point(d, "x"), now - timedelta(minutes=5))
    old = seed.device("old", device_type="plc", industry="C26")
    seed.live(old, seed.point(old, "x"), now - timedelta(hours=25))
    key = await add_key(database_url, Role.AUDITOR)
    async with api_client(database_url, now=now) as (client, _):
        day = (await client.get("/v1/counts?window=24h", headers=bearer(key))).json()
        default = (await client.get("/v1/counts", headers=bearer(key))).json()
    assert day["window"]["start"] == "2024-06-09T13:00:00Z"
    assert day["window"]["end"] == "2024-06-10T13:00:00Z"
    assert day["connected_devices"] == 1 and day["points"] == 1
    assert default["window"]["spec"] == "30d" and default["window"]["hours"] == 720
    assert default["connected_devices"] == 2


@pytest.mark.parametrize(
    ("params", "where", "words"),
    [
        ({"window": "30x"}, "window", "not understood"),
        ({"window": "0d"}, "window", "not understood"),
        ({"window": "7d", "start": "2024-05-01T00:00:00Z"}, "window", "not both"),
        ({"end": "2024-05-01T00:00:00Z"}, "start", "without start"),
        ({"start": "2024-05-02T00:00:00Z", "end": "2024-05-01T00:00:00Z"}, "end", "not after"),
        ({"start": "2024-05-01T00:00:00"}, "start", "UTC offset"),
        ({"start": "yesterday"}, "start", "datetime"),
        ({"group_by": "colour"}, "group_by", "industry"),
        ({"include_simulated": "maybe"}, "include_simulated", "bool"),
    ],
)
async def test_bad_parameters_get_422_naming_the_parameter(
    database_url: str, params: dict[str, str], where: str, words: str
) -> None:
    key = await add_key(database_url, Role.AUDITOR)
    async with api_client(database_url) as (client, _):
        answer = await client.get("/v1/counts", params=params, headers=bearer(key))
    assert answer.status_code == 422
    errors = answer.json()["detail"]
    assert any(e["loc"] == ["query", where] and words in e["msg"] for e in errors), errors


async def test_counts_of_an_empty_store_are_zero(database_url: str) -> None:
    key = await add_key(database_url, Role.AUDITOR)
    async with api_client(database_url) as (client, _):
        body = await get_counts(client, key, group_by="industry")
    assert (body["connected_devices"], body["device_types"], body["points"]) == (0, 0, 0)
    assert (body["process_points"], body["online_now"], body["groups"]) == (0, 0, [])
