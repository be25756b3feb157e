"""GET /v1/drilldowns: the lists behind the figures equal them, against a real PostgreSQL."""

import csv
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import criteria
from api.auth import Role
from criteria.metrics import rollup_industries
from tests.api.apitest import WINDOW, Seed, api_client, bearer, build_fleet, role_keys, utc

pytestmark = pytest.mark.integration


@pytest.fixture
def seed(database_url: str) -> Iterator[Seed]:
    s = Seed(database_url)
    try:
        yield s
    finally:
        s.close()


def fleet(s: Seed) -> dict[str, int]:
    """Build the shared fleet, a device coded below its division (2614) and managed ones."""
    ids = build_fleet(s)
    ids["j-fine"] = d = s.device("j-fine", device_type="mixer", industry="2614", region="360111")
    s.live(d, s.point(d, "speed"), utc(2024, 5, 2, 8, 0))
    for key in ("a-reactor", "g-sim"):
        s.conn.execute(
            "INSERT INTO control_op (device_id, kind, requested_by, requested_at, outcome)"
            " VALUES (%s, 'probe', 'test', '2024-05-02T03:00:00Z', 'verified')",
            (ids[key],),
        )
    # Verified, but before the window: not managed in it.
    s.conn.execute(
        "INSERT INTO control_op (device_id, kind, requested_by, requested_at, outcome)"
        " VALUES (%s, 'probe', 'test', '2024-04-30T03:00:00Z', 'verified')",
        (ids["b-lathe"],),
    )
    return ids


async def get(client: httpx.AsyncClient, key: str, path: str, **params: Any) -> Any:
    answer = await client.get(path, params=params, headers=bearer(key))
    assert answer.status_code == 200, answer.text
    return answer.json()


async def total(client: httpx.AsyncClient, key: str, path: str, **params: Any) -> int:
    found: int = (await get(client, key, path, **WINDOW, **params))["total"]
    return found


@pytest.mark.parametrize("include_simulated", ["false", "true"])
async def test_totals_equal_the_counts_and_the_evaluated_snapshot(
    database_url: str, seed: Seed, include_simulated: str
) -> None:
    fleet(seed)
    key = (await role_keys(database_url))[Role.AUDITOR]
    sim = {"include_simulated": include_simulated}
    async with api_client(database_url) as (client, _):
        counts = await get(client, key, "/v1/counts", **WINDOW, **sim)
        evaluation = await get(
            client, key, "/v1/programs/jiangxi-2022/tiers/enterprise/evaluation", **WINDOW, **sim
        )
        snap = evaluation["snapshot"]
        devices = "/v1/drilldowns/devices"
        connected = await total(client, key, devices, status="connected", **sim)
        managed = await total(client, key, devices, status="managed", **sim)
        c26 = await total(client, key, devices, industry="C26", **sim)
        discrete = await total(client, key, devices, industry_class="discrete", **sim)
        points = await total(client, key, "/v1/drilldowns/points", **sim)
        process = await total(client, key, "/v1/drilldowns/points", industry_class="process", **sim)
    assert connected == counts["connected_devices"] == snap["connected_devices"]["total"]
    assert managed == counts["managed_devices"] == snap["managed_devices"]["total"]
    assert managed == (2 if include_simulated == "true" else 1)
    by_division = rollup_industries(snap["connected_devices"]["by_industry"])
    assert c26 == by_division["C26"] == (3 if include_simulated == "true" else 2)
    assert discrete == by_division["C34"] == 1
    assert points == counts["points"] == snap["points"]["total"]
    assert process == counts["process_points"] == snap["process_points"]["total"]


async def test_every_rule_links_to_the_list_that_gives_its_figure(
    database_url: str, seed: Seed
) -> None:
    fleet(seed)
    key = (await role_keys(database_url))[Role.AUDITOR]
    checked: set[str] = set()
    async with api_client(database_url) as (client, _):
        for program in criteria.list_programs():
            for tier in criteria.load_ruleset(program).tiers:
                path = f"/v1/programs/{program}/tiers/{tier.id}/evaluation"
                body = await get(client, key, path, **WINDOW)
                for result in body["evaluation"]["results"]:
                    checked |= await _follow(client, key, result)
    assert checked == {
        "connected_devices", "managed_devices", "device_types", "managed_device_types",
        "process_points",
    }  # fmt: skip


def threshold_nodes(check: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every threshold of a check tree except those inside groups (their figure is per group)."""
    if check["kind"] == "threshold":
        yield check
    for child in check["children"]:
        yield from threshold_nodes(child)


async def _follow(client: httpx.AsyncClient, key: str, result: dict[str, Any]) -> set[str]:
    """Follow a rule's drill-downs and compare each list with its figure; return the metrics."""
    if result["source"] == "declared":
        assert result["drilldown"] is None and result["drilldowns"] == [], result["rule"]
        return set()
    if result["drilldowns"]:
        assert result["drilldown"] == result["drilldowns"][0]["url"]
    links: dict[str, list[str]] = {}
    for figure in result["drilldowns"]:
        links.setdefault(figure["metric"], []).append(figure["url"])
    checked: set[str] = set()
    for node in threshold_nodes(result["check"]):
        metric = node["metric"]
        urls = links.get(metric, [])
        # A figure read twice with different filters is ambiguous here; shares have a base.
        if len(urls) != 1 or node["measured"] is None or node["unit"] == "%":
            continue
        link = urls[0]
        assert link.startswith("/v1/drilldowns/"), link
        assert "start=2024-05-01T10:00:00Z&end=2024-05-03T06:00:00Z" in link
        page = await client.get(f"{link}&limit=1000", headers=bearer(key))
        assert page.status_code == 200, page.text
        listed = page.json()
        if metric in ("connected_devices", "managed_devices", "points", "process_points"):
            assert listed["total"] == node["measured"], (result["rule"], link)
            checked.add(metric)
        elif metric in ("device_types", "managed_device_types"):
            types = {i["device_type"] for i in listed["items"] if i["device_type"]}
            assert len(types) == node["measured"], (result["rule"], link)
            checked.add(metric)
    return checked


async def test_csv_gives_every_row_and_parses_back(database_url: str, seed: Seed) -> None:
    fleet(seed)
    key = (await role_keys(database_url))[Role.AUDITOR]
    async with api_client(database_url) as (client, _):
        page = await get(client, key, "/v1/drilldowns/devices", **WINDOW, limit=2)
        exported = await client.get(
            "/v1/drilldowns/devices",
            params={**WINDOW, "format": "csv", "limit": 2},
            headers=bearer(key),
        )
        points_json = await get(client, key, "/v1/drilldowns/points", **WINDOW, limit=1000)
        points_csv = await client.get(
            "/v1/drilldowns/points", params={**WINDOW, "format": "csv"}, headers=bearer(key)
        )
    assert (page["total"], len(page["items"]), page["next_offset"]) == (5, 2, 2)
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.text.endswith("\r\n") and "\r\n" in exported.text.split("\n", 1)[0] + "\n"
    rows = list(csv.DictReader(io.StringIO(exported.text, newline="")))
    assert len(rows) == page["total"]
    assert [r["key"] for r in rows] == ["a-reactor", "b-lathe", "h-ent", "i-farm", "j-fine"]
    first = page["items"][0]
    assert rows[0]["managed"] == "true" and first["managed"] is True
    assert int(rows[0]["good_samples"]) == first["good_samples"]
    assert rows[2]["industry"] == "C25"  # the enterprise's industry
    assert rows[3]["device_type"] == ""  # null is an empty cell
    point_rows = list(csv.DictReader(io.StringIO(points_csv.text, newline="")))
    assert [(r["device_key"], r["key"]) for r in point_rows] == [
        (i["device_key"], i["key"]) for i in points_json["items"]
    ]


async def test_apps_list_monthly_calls_from_the_rollup(database_url: str, seed: Seed) -> None:
    c = seed.conn
    apps = (
        ("m1", "mechanism_model", True),
        ("m2", "mechanism_model", False),
        ("a1", "algorithm", False),
        ("p1", "industrial_app", False),
    )
    for key, kind, cross in apps:
        c.execute(
            "INSERT INTO app (key, name, kind, cross_platform, industry) VALUES (%s, %s, %s, %s,"
            " 'C26')",
            (key, key.upper(), kind, cross),
        )
    c.execute(
        "INSERT INTO call_monthly (app_id, month, calls, ok_calls) SELECT id, m, 10, 9 FROM app,"
        " unnest(ARRAY['2024-02-01', '2024-03-01', '2024-04-01']::date[]) m WHERE key <> 'p1'"
    )
    key = (await role_keys(database_url))[Role.AUDITOR]
    window = {"start": "2024-01-31T16:00:00Z", "end": "2024-03-31T16:00:00Z"}  # Feb, Mar (CST)
    async with api_client(database_url) as (client, _):
        models = await get(
            client, key, "/v1/drilldowns/apps", **window, kind="mechanism_model,algorithm"
        )
        cross = await get(
            client, key, "/v1/drilldowns/apps", **window, kind="mechanism_model",
            cross_platform="true",
        )  # fmt: skip
        by_industry = await get(client, key, "/v1/drilldowns/apps", **window, industry="26")
        exported = await client.get(
            "/v1/drilldowns/apps", params={**window, "format": "csv"}, headers=bearer(key)
        )
        bad = await client.get(
            "/v1/drilldowns/apps", params={**window, "kind": "widget"}, headers=bearer(key)
        )
    assert models["months"] == ["2024-02", "2024-03"]
    assert [(i["key"], i["total_calls"]) for i in models["items"]] == [
        ("a1", 20), ("m1", 20), ("m2", 20),
    ]  # fmt: skip
    assert models["items"][0]["calls"] == {"2024-02": 10, "2024-03": 10}
    assert [i["key"] for i in cross["items"]] == ["m1"]
    assert by_industry["total"] == 4
    rows = list(csv.DictReader(io.StringIO(exported.text, newline="")))
    assert len(rows) == 4
    assert [r["kind"] for r in rows] == sorted(r["kind"] for r in rows)
    app = next(r for r in rows if r["key"] == "p1")
    assert (app["calls_2024-02"], app["total_calls"], app["cross_platform"]) == ("0", "0", "false")
    assert bad.status_code == 422


async def test_monthly_calls_are_the_apps_calls_averaged_over_the_full_months(
    database_url: str, seed: Seed
) -> None:
    c = seed.conn
    c.execute("INSERT INTO call_zone (timezone) VALUES ('Asia/Shanghai')")
    for key, kind in (("m1", "mechanism_model"), ("a1", "algorithm"), ("t1", "dev_tool")):
        c.execute("INSERT INTO app (key, name, kind) VALUES (%s, %s, %s)", (key, key.upper(), kind))
    c.execute(
        "INSERT INTO call_monthly (app_id, month, calls, ok_calls) SELECT a.id, m.month, m.n, m.n"
        " FROM app a, (VALUES ('2024-02-01'::date, 700), ('2024-03-01'::date, 501)) m(month, n)"
    )
    key = (await role_keys(database_url))[Role.AUDITOR]
    window = {"start": "2024-01-31T16:00:00Z", "end": "2024-03-31T16:00:00Z"}
    async with api_client(database_url) as (client, _):
        body = await get(
            client, key, "/v1/programs/jiangsu-2018/tiers/enterprise/evaluation", **window
        )
        results = body["evaluation"]["results"]
        rule = next(r for r in results if r["rule"] == "js-enterprise-model-calls")
        listed = (await client.get(f"{rule['drilldown']}&limit=1000", headers=bearer(key))).json()
    assert "kind=mechanism_model,algorithm" in rule["drilldown"]
    assert [i["key"] for i in listed["items"]] == ["a1", "m1"]
    average = sum(i["total_calls"] for i in listed["items"]) / len(listed["months"])
    assert rule["measured"] == average == 1201
    assert rule["verdict"] == "pass"


async def test_drilldowns_need_a_key_of_any_role(database_url: str) -> None:
    keys = await role_keys(database_url)
    async with api_client(database_url) as (client, _):
        for path in ("/v1/drilldowns/devices", "/v1/drilldowns/points", "/v1/drilldowns/apps"):
            assert (await client.get(path)).status_code == 401
            wrong = await client.get(path, headers=bearer("tly_00000000_nope"))
            assert wrong.status_code == 401
            for role in Role:
                answer = await client.get(path, headers=bearer(keys[role]))
                assert answer.status_code == 200, (path, role, answer.text)
