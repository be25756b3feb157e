"""The workload's ground truth equals what the store and the API report after it ran."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from psycopg import AsyncConnection

from api.app import create_app
from api.auth import Role
from api.settings import Settings
from collector.embedded.ports import free_port
from collector.runtime import ApiServer
from collector.store.registry_figures import registry_figures
from simulators.workload.generate import generate
from simulators.workload.runner import run_api, run_dsn
from simulators.workload.spec import CallSpec, KindSpec, WorkloadSpec
from tests.api.apitest import add_key, bearer

SPEC = WorkloadSpec(
    seed=3,
    enterprises=25,
    users=30,
    developers=12,
    mechanism_model=KindSpec(count=12, categories=3),
    algorithm=KindSpec(count=6, categories=2),
    industrial_app=KindSpec(count=8, categories=3),
    cloud_software=KindSpec(count=4, categories=2),
    dev_tool=KindSpec(count=2),
    subscriptions=80,
    calls=CallSpec(
        months=["2025-12", "2026-01", "2026-02"],
        per_month=400,
        duplicate_share=0.05,
        bad_share=0.01,
        batch_size=250,
    ),
)


def test_generation_is_deterministic_and_counts_exactly() -> None:
    a, b = generate(SPEC), generate(SPEC)
    assert a.batches == b.batches and a.manifest == b.manifest
    sent = a.manifest["calls"]["sent"]
    assert (sent["valid"], sent["duplicates"], sent["invalid"]) == (1200, 60, 12)
    assert a.manifest["registries"]["apps"]["mechanism_model"]["registered"]["by_category"] == {
        "mechanism_model-cat-0": 4, "mechanism_model-cat-1": 4, "mechanism_model-cat-2": 4,
    }  # fmt: skip
    firsts = [e["ts"] for b in a.batches for e in b if e.get("ts", "").startswith("2026-01-01T00")]
    assert "2026-01-01T00:00:00+08:00" in firsts


async def _check_figures(dsn: str, manifest: dict[str, Any]) -> None:
    window = manifest["window"]
    start, end = datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"])
    async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
        figures = await registry_figures(conn, start, end, SPEC.zone)
    apps = figures["apps"]
    for kind, truth in manifest["registries"]["apps"].items():
        got = apps.kind(kind)
        assert got.registered.model_dump() == truth["registered"], kind
        assert got.cross_platform is not None
        assert got.cross_platform.model_dump() == truth["cross_platform"], kind
    subs, want = figures["subscriptions"], manifest["subscriptions"]
    assert (subs.subscriptions, subs.enterprises, subs.users) == (
        want["active"], want["enterprises"], want["users"],
    )  # fmt: skip
    assert subs.enterprises_by_kind == want["enterprises_by_kind"]
    assert subs.users_by_kind == want["users_by_kind"]
    assert figures["enterprise_users"].total == manifest["enterprise_users"]["total"]
    assert figures["enterprise_users"].by_industry == manifest["enterprise_users"]["by_industry"]
    devs, regs = figures["developers"], manifest["registries"]
    assert (devs.total, devs.third_party, devs.languages, devs.dev_tool_callers) == (
        regs["developers"], regs["third_party_developers"], regs["languages"],
        manifest["dev_tool_developers"],
    )  # fmt: skip
    calls, truth_calls = figures["calls"], manifest["calls"]
    assert list(calls.months) == truth_calls["months"]
    for kind, average in truth_calls["monthly_average_by_kind"].items():
        assert calls.by_month(kind) == truth_calls["by_kind"].get(
            kind, dict.fromkeys(calls.months, 0)
        )
        assert float(calls.monthly_average((kind,)) or 0) == pytest.approx(average)


@pytest.mark.integration
async def test_workload_over_http_matches_its_ground_truth(database_url: str) -> None:
    workload = generate(SPEC)
    key = await add_key(database_url, Role.OPERATOR, "workload")
    settings = Settings(dsn=database_url, pool_min_size=1, pool_max_size=4)
    server = ApiServer(create_app(settings), "127.0.0.1", free_port())
    await server.start()
    try:
        result = await run_api(workload, server.url, key, concurrency=3)
        sent = workload.manifest["calls"]["sent"]
        assert (result.stored, result.duplicates, result.rejected) == (
            sent["valid"], sent["duplicates"], sent["invalid"],
        )  # fmt: skip
        async with httpx.AsyncClient(base_url=server.url, headers=bearer(key)) as client:
            window = workload.manifest["window"]
            for group in ("kind", "category", "industry", "domain", "app"):
                answer = await client.get(
                    "/v1/calls/monthly",
                    params={"start": window["start"], "end": window["end"], "group_by": group},
                )
                assert answer.status_code == 200, answer.text
                body = answer.json()
                got = {g["key"]: g["calls"] for g in body["groups"]}
                assert got == workload.manifest["calls"][f"by_{group}"], group
            models = await client.get(
                "/v1/calls/monthly",
                params={
                    "start": window["start"], "end": window["end"],
                    "kind": ["mechanism_model", "algorithm"],
                },
            )  # fmt: skip
            by_kind = workload.manifest["calls"]["by_kind"]
            want = sum(
                sum(by_kind.get(k, {}).values()) for k in ("mechanism_model", "algorithm")
            ) / len(SPEC.calls.months)
            assert models.json()["total"]["monthly_average"] == pytest.approx(want)
            listed = await client.get("/v1/apps", params={"limit": 1000})
            assert len(listed.json()["items"]) == len(workload.apps)
    finally:
        await server.stop()
    await _check_figures(database_url, workload.manifest)


@pytest.mark.integration
async def test_workload_into_the_store_matches_and_a_second_run_adds_nothing(
    database_url: str,
) -> None:
    workload = generate(SPEC)
    first = await run_dsn(workload, database_url)
    again = await run_dsn(workload, database_url)
    sent = workload.manifest["calls"]["sent"]
    assert (first.stored, first.duplicates, first.rejected) == (
        sent["valid"], sent["duplicates"], sent["invalid"],
    )  # fmt: skip
    assert (again.stored, again.duplicates) == (0, sent["valid"] + sent["duplicates"])
    await _check_figures(database_url, workload.manifest)
