"""GET /v1/counts/series: connected and managed devices per step, against a real PostgreSQL."""

from collections.abc import Iterator
from datetime import datetime
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


def control_op(seed: Seed, device_id: int, at: datetime, outcome: str = "verified") -> None:
    seed.conn.execute(
        "INSERT INTO control_op (device_id, kind, requested_by, requested_at, outcome)"
        " VALUES (%s, 'probe', 'test', %s, %s)",
        (device_id, at, outcome),
    )


async def get(client: httpx.AsyncClient, key: str, path: str, **params: Any) -> dict[str, Any]:
    answer = await client.get(path, params=params, headers=bearer(key))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


FIGURES = ("connected_devices", "device_types", "managed_devices", "managed_device_types")


def figures(body: dict[str, Any]) -> dict[str, int]:
    return {name: body[name] for name in FIGURES}


async def test_each_step_counts_as_counts_does_and_the_last_matches_its_window_end(
    database_url: str, seed: Seed
) -> None:
    ids = build_fleet(seed)
    control_op(seed, ids["a-reactor"], utc(2024, 5, 2, 3))  # first step
    control_op(seed, ids["h-ent"], utc(2024, 5, 2, 21))  # second step
    control_op(seed, ids["b-lathe"], utc(2024, 5, 2, 22), outcome="mismatch")  # never managed
    control_op(seed, ids["e-bad"], utc(2024, 5, 2, 22))  # verified but not connected
    control_op(seed, ids["g-sim"], utc(2024, 5, 2, 12))  # simulated
    key = await add_key(database_url, Role.AUDITOR)
    async with api_client(database_url) as (client, _):
        series = await get(client, key, "/v1/counts/series", **WINDOW, step="1d")
        with_sim = await get(
            client, key, "/v1/counts/series", **WINDOW, step="1d", include_simulated="true"
        )
        last = series["points"][-1]
        counts = await get(client, key, "/v1/counts", start=last["start"], end=last["end"])
        counts_sim = await get(
            client, key, "/v1/counts", start=last["start"], end=last["end"],
            include_simulated="true",
        )  # fmt: skip
        whole = await get(client, key, "/v1/counts/series", **WINDOW, step="44h")
        whole_counts = await get(client, key, "/v1/counts", **WINDOW)

    assert series["window"]["start"] == "2024-05-01T10:00:00Z"
    assert series["window"]["end"] == "2024-05-03T06:00:00Z"
    assert series["step"] == "1d" and series["step_hours"] == 24
    assert [(p["start"], p["end"]) for p in series["points"]] == [
        ("2024-05-01T10:00:00Z", "2024-05-02T06:00:00Z"),  # the shorter first step
        ("2024-05-02T06:00:00Z", "2024-05-03T06:00:00Z"),
    ]
    first, second = series["points"]
    # a-reactor only (i-farm's sample at 05-02 06:00 is on the first step's exclusive end).
    assert figures(first) == {
        "connected_devices": 1, "device_types": 1, "managed_devices": 1, "managed_device_types": 1
    }  # fmt: skip
    # b-lathe, h-ent, i-farm (no type); managed: h-ent (b-lathe's op did not verify).
    assert figures(second) == {
        "connected_devices": 3, "device_types": 2, "managed_devices": 1, "managed_device_types": 1
    }  # fmt: skip
    assert figures(last) == figures(counts)
    assert figures(with_sim["points"][-1]) == figures(counts_sim)
    assert with_sim["points"][-1]["connected_devices"] == 4  # g-sim
    assert with_sim["points"][-1]["managed_devices"] == 2
    assert "INCLUDED" in with_sim["definitions"]["simulated"]
    # One step as long as the window: the whole window, as /v1/counts counts it.
    assert len(whole["points"]) == 1
    assert figures(whole["points"][0]) == figures(whole_counts)
    assert "series" in series["definitions"]


async def test_relative_window_last_point_equals_counts_for_the_same_end(
    database_url: str, seed: Seed
) -> None:
    now = utc(2024, 5, 3, 5, 20)  # the relative window ends at 06:00
    build_fleet(seed)
    key = await add_key(database_url, Role.AUDITOR)
    async with api_client(database_url, now=now) as (client, _):
        series = await get(client, key, "/v1/counts/series", window="30d", step="1d")
        last = series["points"][-1]
        counts = await get(client, key, "/v1/counts", start=last["start"], end=last["end"])
        whole = await get(client, key, "/v1/counts/series", window="30d", step="30d")
        whole_counts = await get(client, key, "/v1/counts", window="30d")
    assert len(series["points"]) == 30
    assert last["end"] == series["window"]["end"] == "2024-05-03T06:00:00Z"
    assert figures(last) == figures(counts)
    assert last["connected_devices"] == 3  # b-lathe, h-ent, i-farm
    assert figures(whole["points"][0]) == figures(whole_counts)
    assert whole_counts["connected_devices"] == 5  # also a-reactor and c-before
    # Steps without any device count zero, not missing.
    assert series["points"][0]["connected_devices"] == 0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"step": "1w"}, "not understood"),
        ({"step": "3d", **WINDOW}, "longer than the window"),
        ({"step": "1h", "window": "3650d"}, "more than 1000 points"),
    ],
)
async def test_bad_steps_get_422_naming_the_step(
    database_url: str, params: dict[str, str], message: str
) -> None:
    key = await add_key(database_url, Role.AUDITOR)
    async with api_client(database_url) as (client, _):
        answer = await client.get("/v1/counts/series", params=params, headers=bearer(key))
        anonymous = await client.get("/v1/counts/series")
    assert answer.status_code == 422
    detail = answer.json()["detail"][0]
    assert detail["loc"] == ["query", "step"]
    assert message in detail["msg"]
    assert anonymous.status_code == 401
