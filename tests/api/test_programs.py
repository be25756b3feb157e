"""GET /v1/programs and a tier's evaluation over a window, against a real PostgreSQL."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import criteria
from api.auth import Role
from tests.api.apitest import WINDOW, Seed, api_client, bearer, build_fleet, role_keys

pytestmark = pytest.mark.integration


@pytest.fixture
def seed(database_url: str) -> Iterator[Seed]:
    s = Seed(database_url)
    try:
        yield s
    finally:
        s.close()


async def evaluation(
    client: httpx.AsyncClient, key: str, program: str, tier: str, **params: Any
) -> dict[str, Any]:
    answer = await client.get(
        f"/v1/programs/{program}/tiers/{tier}/evaluation",
        params={**WINDOW, **params},
        headers=bearer(key),
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def result(body: dict[str, Any], rule: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in body["evaluation"]["results"] if r["rule"] == rule)
    return found


async def test_programmes_list_tiers_and_every_rule(database_url: str) -> None:
    keys = await role_keys(database_url)
    async with api_client(database_url) as (client, _):
        assert (await client.get("/v1/programs")).status_code == 401
        answer = await client.get("/v1/programs", headers=bearer(keys[Role.AUDITOR]))
        one = await client.get("/v1/programs/jiangxi-2022", headers=bearer(keys[Role.AUDITOR]))
        missing = await client.get("/v1/programs/hainan-2030", headers=bearer(keys[Role.AUDITOR]))
    assert answer.status_code == 200
    body = answer.json()
    assert [p["id"] for p in body] == criteria.list_programs()
    for programme in body:
        ruleset = criteria.load_ruleset(programme["id"])
        assert [r["id"] for r in programme["rules"]] == [r.id for r in ruleset.rules]
        for tier in programme["tiers"]:
            assert tier["rules"], tier["id"]
    rules = {r["id"]: r for p in body for r in p["rules"]}
    connections = rules["jx-comprehensive-connections"]
    assert connections["clause"] == "二.(一).3"
    assert "设备种类超过10类" in connections["text"]
    assert connections["check"]["any"][0]["label"] == "离散行业"
    assert "device_types (discrete) > 10" in connections["requirement"]
    assert rules["jx-architecture"]["check"] is None
    assert one.json()["id"] == "jiangxi-2022"
    assert missing.status_code == 404
    assert "jiangsu-2018" in missing.json()["detail"]


async def test_evaluation_reads_the_rollups_and_states_its_inputs(
    database_url: str, seed: Seed
) -> None:
    ids = build_fleet(seed)
    seed.conn.execute(
        "INSERT INTO control_op (device_id, kind, requested_by, requested_at, outcome)"
        " VALUES (%s, 'probe', 'test', '2024-05-02T03:00:00Z', 'verified')",
        (ids["a-reactor"],),
    )
    keys = await role_keys(database_url)
    async with api_client(database_url) as (client, _):
        body = await evaluation(client, keys[Role.AUDITOR], "jiangsu-2018", "企业级")
    assert (body["programme"], body["tier"]) == ("jiangsu-2018", "enterprise")
    assert body["window"]["start"] == "2024-05-01T10:00:00Z"
    assert body["include_simulated"] is False
    assert body["simulated_devices_excluded"] == 1
    assert body["snapshot"]["connected_devices"]["total"] == 4
    assert body["snapshot"]["managed_devices"]["total"] == 1
    assert body["evaluation"]["definitions"]["managed_devices"]
    assert body["software_version"]
    managed = result(body, "js-enterprise-managed")
    assert (managed["verdict"], managed["measured"], managed["threshold"]) == ("fail", 1, 30)
    # Registry figures are not recorded: insufficient evidence, never zero.
    calls = result(body, "js-enterprise-model-calls")
    assert (calls["verdict"], calls["measured"]) == ("insufficient_evidence", None)
    assert body["verdict"] == "fail"
    assert any("1 simulated devices" in w for w in body["evaluation"]["warnings"])


async def test_declarations_change_the_evaluation_and_are_shown_as_declared(
    database_url: str, seed: Seed
) -> None:
    build_fleet(seed)
    keys = await role_keys(database_url)
    async with api_client(database_url) as (client, _):
        before = await evaluation(client, keys[Role.AUDITOR], "jiangxi-2022", "enterprise")
        put = await client.put(
            "/v1/declarations/device_inventory",
            json={"value": 8, "evidence_ref": "assets/register-2024.xlsx"},
            headers=bearer(keys[Role.OPERATOR]),
        )
        assert put.status_code == 200, put.text
        after = await evaluation(client, keys[Role.AUDITOR], "jiangxi-2022", "enterprise")
    share = result(before, "jx-enterprise-connected-share")
    assert share["verdict"] == "insufficient_evidence"
    assert "declare metric 'device_inventory'" in share["check"]["detail"]
    share = result(after, "jx-enterprise-connected-share")
    # 4 connected of 8 declared = 50 %: exactly the threshold passes.
    assert (share["verdict"], share["measured"]) == ("pass", 50)
    assert share["check"]["evidence"] == ["assets/register-2024.xlsx"]
    assert share["source"] == "measured"
    assert [(d["metric"], d["value"]) for d in after["declarations"]] == [("device_inventory", 8)]


async def test_simulated_devices_count_only_when_asked_and_then_say_so(
    database_url: str, seed: Seed
) -> None:
    build_fleet(seed)
    keys = await role_keys(database_url)
    async with api_client(database_url) as (client, _):
        excluded = await evaluation(client, keys[Role.AUDITOR], "jiangxi-2022", "comprehensive")
        included = await evaluation(
            client, keys[Role.AUDITOR], "jiangxi-2022", "comprehensive", include_simulated="true"
        )
    assert excluded["snapshot"]["connected_devices"]["total"] == 4
    assert included["snapshot"]["connected_devices"]["total"] == 5
    assert included["simulated_devices_excluded"] == 0
    assert any("do not show eligibility" in w for w in included["evaluation"]["warnings"])
    alternatives = result(excluded, "jx-comprehensive-connections")["alternatives"]
    discrete = alternatives[0]["children"][0]
    assert "1 simulated connected devices were excluded" in discrete["detail"]


async def test_unknown_tiers_and_bad_windows_are_explained(database_url: str) -> None:
    keys = await role_keys(database_url)
    auditor = bearer(keys[Role.AUDITOR])
    async with api_client(database_url) as (client, _):
        tier = await client.get("/v1/programs/jiangxi-2022/tiers/gold/evaluation", headers=auditor)
        window = await client.get(
            "/v1/programs/jiangxi-2022/tiers/enterprise/evaluation",
            params={"window": "a month"},
            headers=auditor,
        )
    assert tier.status_code == 404
    assert "综合型" in tier.json()["detail"]
    assert window.status_code == 422
    assert "30d" in window.text


async def test_report_endpoint_renders_self_contained_html(database_url: str, seed: Seed) -> None:
    build_fleet(seed)
    keys = await role_keys(database_url)
    async with api_client(database_url) as (client, _):
        html = await client.get(
            "/v1/programs/jiangsu-2018/tiers/enterprise/report",
            params={**WINDOW, "lang": "both"},
            headers=bearer(keys[Role.AUDITOR]),
        )
        md = await client.get(
            "/v1/programs/jiangsu-2018/tiers/enterprise/report",
            params={**WINDOW, "format": "md", "lang": "en"},
            headers=bearer(keys[Role.AUDITOR]),
        )
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    assert "总体结论 / Overall verdict" in html.text
    for external in ("<script", "<link", "src=", "url("):
        assert external not in html.text
    assert md.headers["content-type"].startswith("text/markdown")
    assert "Overall verdict" in md.text and "总体结论" not in md.text
