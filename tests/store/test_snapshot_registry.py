"""The criteria read registry and call figures from the store: pass or fail on evidence."""

from __future__ import annotations

from datetime import datetime

import pytest
from psycopg import AsyncConnection

import criteria
from collector.store.snapshot import build_snapshot
from simulators.workload.generate import generate
from simulators.workload.runner import run_dsn
from simulators.workload.spec import CallSpec, KindSpec, WorkloadSpec

SPEC = WorkloadSpec(
    seed=11,
    enterprises=12,
    developers=4,
    mechanism_model=KindSpec(count=6, categories=3),
    algorithm=KindSpec(count=3),
    subscriptions=20,
    calls=CallSpec(months=["2026-01", "2026-02"], per_month=250, bad_share=0, duplicate_share=0),
)


@pytest.mark.integration
async def test_model_call_rules_pass_or_fail_on_recorded_calls(database_url: str) -> None:
    workload = generate(SPEC)
    await run_dsn(workload, database_url)
    window = workload.manifest["window"]
    start, end = datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"])
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        snapshot = await build_snapshot(conn, start, end)
    assert snapshot.calls is not None and snapshot.calls.months == ("2026-01", "2026-02")
    rules = criteria.load_ruleset("jiangsu-2018")
    enterprise = criteria.evaluate(rules, snapshot, [], "enterprise")
    cross = criteria.evaluate(rules, snapshot, [], "cross-industry")
    assert enterprise.result("js-enterprise-model-calls").verdict == "pass"
    assert cross.result("js-cross-model-calls").verdict == "fail"
    # 6 cross-platform-or-not mechanism models are far from 150: a fail, not missing evidence.
    assert cross.result("js-cross-mechanism-models").verdict == "fail"
    assert cross.result("js-cross-third-party-developers").verdict == "fail"
