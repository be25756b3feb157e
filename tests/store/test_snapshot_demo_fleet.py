"""End to end: the demo fleet collected into PostgreSQL, evaluated against every tier.

One collector run (simulators → adapters → pipeline → store) serves every test of
this module. With simulated devices excluded (the default) every device rule sees
zero devices and says that the fleet's devices were excluded; with them included,
every measured figure in every verdict equals what the fleet's manifest says.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

import psycopg
import pytest
from psycopg import AsyncConnection

import criteria
from adapters.base import utcnow
from api.window import ceil_hour
from collector.config import parse_config
from collector.service import CollectorService
from collector.store import declarations
from collector.store.declarations import DeclarationDraft
from collector.store.migrate import migrate
from collector.store.snapshot import build_snapshot, gather
from criteria import CheckResult, Declaration, Evaluation, MetricsSnapshot
from criteria.describe import explain
from criteria.industries import classify, division_code
from criteria.metrics import region_contains, source_of
from criteria.model import AllOf, AnyOf, Check, Threshold
from simulators.fleet import Manifest, ManifestDevice, device_configs, load_fleet
from simulators.runner import DEMO_FLEET, FleetSimulator
from tests.conftest import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

EVERY_TIER = [(p, t.id) for p in criteria.list_programs() for t in criteria.load_ruleset(p).tiers]
INVENTORY = 60
SERVED_REGION = "360000"  # Jiangxi: the two Jiangxi sites of the demo fleet, not Suzhou
DEVICE_METRICS = {"connected_devices", "device_types", "managed_devices", "managed_device_types"}


@dataclass(frozen=True)
class Collected:
    """What one collector run over the demo fleet left in the store, read back."""

    manifest: Manifest
    managed: frozenset[str]
    excluded: MetricsSnapshot
    included: MetricsSnapshot
    declarations: tuple[Declaration, ...]


async def _wait_until_counted(dsn: str, start: datetime, end: datetime, fleet: Manifest) -> None:
    """Wait (at most 45 s) until every device and point of the fleet is counted."""
    devices, points = len(fleet.devices), sum(len(d.points) for d in fleet.devices)
    deadline = time.monotonic() + 45
    async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
        while True:
            snap = await build_snapshot(conn, start, end, include_simulated=True)
            assert snap.connected_devices is not None and snap.points is not None
            if (snap.connected_devices.total, snap.points.total) == (devices, points):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"demo fleet not fully counted within 45 s: {snap}")
            await asyncio.sleep(0.5)


def _managed_choice(manifest: Manifest) -> list[ManifestDevice]:
    """Pick the first device of each of five types, so managed devices span types."""
    chosen: dict[str, ManifestDevice] = {}
    for device in manifest.devices:
        if device.type and device.type not in chosen and len(chosen) < 5:
            chosen[device.type] = device
    return list(chosen.values())


async def _collect(dsn: str, data_dir: Path) -> Collected:
    config = parse_config(
        {
            "version": 1,
            "data_dir": str(data_dir),
            "store": {"dsn": dsn},
            "pipeline": {"batch_age": 0.2},
        },
        "<demo fleet test>",
        environ={},
    )
    end = ceil_hour(utcnow()) + timedelta(hours=1)
    start = end - timedelta(hours=3)
    fleet = FleetSimulator(load_fleet(DEMO_FLEET))
    manifest = await fleet.start()
    try:
        async with CollectorService(config, device_configs(manifest)):
            await _wait_until_counted(dsn, start, end, manifest)
    finally:
        await fleet.stop()
    managed = _managed_choice(manifest)
    async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
        # Verified control operations, recorded as the control engine records them.
        for device in managed:
            await conn.execute(
                "INSERT INTO control_op (device_id, kind, requested_by, requested_at,"
                " completed_at, outcome) SELECT id, 'probe', 'schedule', now(), now(), 'verified'"
                " FROM device WHERE key = %s",
                (device.id,),
            )
        for key, value in (
            ("device_inventory", INVENTORY),
            ("served_region", [SERVED_REGION]),
            ("specific_industry", "C26"),
        ):
            draft = DeclarationDraft(value=value, evidence_ref=f"evidence/{key}.pdf")
            await declarations.put(conn, key, draft, "key:test (operator)")
        excluded = await gather(conn, start, end)
        included = await build_snapshot(conn, start, end, include_simulated=True)
    return Collected(
        manifest,
        frozenset(d.id for d in managed),
        excluded.snapshot,
        included,
        excluded.declarations,
    )


@pytest.fixture(scope="module")
def collected(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Collected]:
    name = f"tally_demo_{uuid.uuid4().hex[:12]}"
    admin = postgres_server.database_dsn("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = postgres_server.database_dsn(name)
    try:
        migrate(dsn)
        yield asyncio.run(_collect(dsn, tmp_path_factory.mktemp("demo-fleet")))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- what the manifest says ---------------------------------------------------------------


def _division(device: ManifestDevice) -> str | None:
    return division_code(device.industry) if device.industry else None


def _kind(device: ManifestDevice) -> str | None:
    return classify(device.industry) if device.industry else None


def truth(c: Collected, leaf: Threshold, group: str | None) -> Fraction:
    """Return the figure the manifest implies for a measured leaf (optionally per industry)."""
    devices = list(c.manifest.devices)
    if leaf.metric.startswith("managed"):
        devices = [d for d in devices if d.id in c.managed]
    if group is not None:
        devices = [d for d in devices if _division(d) == group]
    if leaf.industry_class is not None:
        devices = [d for d in devices if _kind(d) == leaf.industry_class]
    if leaf.scope == "served_area":
        devices = [d for d in devices if d.region and region_contains(SERVED_REGION, d.region)]
    if leaf.metric.endswith("device_types"):
        value = Fraction(len({d.type for d in devices if d.type}))
    elif leaf.metric.endswith("devices"):
        value = Fraction(len(devices))
    elif leaf.metric == "process_points":
        value = Fraction(sum(len(d.points) for d in devices if _kind(d) == "process"))
    else:
        value = Fraction(sum(len(d.points) for d in devices))
    if leaf.share_of == "declared.device_inventory":
        value = value * 100 / INVENTORY
    return value


def _passes(op: str, value: Fraction, threshold: Fraction) -> bool:
    return {">=": value >= threshold, ">": value > threshold, "<=": value <= threshold}[op]


def check_consistent(c: Collected, node: Check, result: CheckResult, group: str | None) -> int:
    """Assert every measured leaf shows the manifest's figure and the verdict it implies."""
    checked = 0
    if isinstance(node, Threshold):
        if source_of(node.metric) != "measured" or node.op is None or node.value is None:
            return 0
        if group is not None and node.industry_class not in (None, classify(group)):
            # A discrete-only figure in a process industry (or the reverse) does not apply.
            assert (result.verdict, result.measured) == ("not_applicable", None), result
            return 1
        expected = truth(c, node, group)
        assert result.measured == pytest.approx(float(expected)), (node.metric, group, result)
        verdict = "pass" if _passes(node.op, expected, Fraction(str(node.value))) else "fail"
        assert result.verdict == verdict, (node.metric, group, result)
        return 1
    if isinstance(node, AllOf | AnyOf):
        parts = node.all_of if isinstance(node, AllOf) else node.any_of
        for part, child in zip(parts, result.children, strict=True):
            checked += check_consistent(c, part, child, group)
        return checked
    spec = node.groups
    for outcome in result.groups:
        checked += check_consistent(c, spec.each, outcome.result, outcome.group)
    passing = sum(1 for o in result.groups if o.verdict == "pass")
    if result.verdict in ("pass", "fail"):
        assert (passing >= spec.at_least) == (result.verdict == "pass")
    return checked


def evaluation(c: Collected, snap: MetricsSnapshot, program: str, tier: str) -> Evaluation:
    return criteria.evaluate(criteria.load_ruleset(program), snap, c.declarations, tier)


# --- the tests ----------------------------------------------------------------------------


def test_the_snapshot_counts_the_fleet_exactly(collected: Collected) -> None:
    devices = collected.manifest.devices
    snap = collected.included
    assert snap.connected_devices is not None and snap.managed_devices is not None
    assert snap.points is not None and snap.process_points is not None
    assert snap.connected_devices.total == len(devices) == 40
    assert snap.device_types == len({d.type for d in devices})
    assert snap.points.total == sum(len(d.points) for d in devices)
    process = [d for d in devices if _kind(d) == "process"]
    assert snap.process_points.total == sum(len(d.points) for d in process) > 0
    by_industry: dict[str, int] = {}
    for d in devices:
        assert d.industry is not None
        by_industry[d.industry] = by_industry.get(d.industry, 0) + 1
    assert snap.connected_devices.by_industry == by_industry
    assert snap.managed_devices.total == len(collected.managed) == 5
    assert snap.managed_device_types == 5
    assert snap.include_simulated and "INCLUDED" in snap.definitions["simulated"]


def test_excluded_by_default_with_the_reason(collected: Collected) -> None:
    snap = collected.excluded
    assert snap.include_simulated is False
    assert snap.connected_devices is not None and snap.connected_devices.total == 0
    assert snap.managed_devices is not None and snap.managed_devices.total == 0
    assert snap.points is not None and snap.points.total == 0
    assert snap.simulated_excluded is not None
    assert snap.simulated_excluded.connected_devices == 40
    assert snap.simulated_excluded.managed_devices == 5
    assert snap.simulated_excluded.points == sum(len(d.points) for d in collected.manifest.devices)


@pytest.mark.parametrize(("program", "tier"), EVERY_TIER)
def test_device_rules_report_zero_and_say_why(
    collected: Collected, program: str, tier: str
) -> None:
    result = evaluation(collected, collected.excluded, program, tier)
    assert any("40 simulated devices connected" in w for w in result.warnings)
    device_rules = [r for r in result.results if set(r.metrics) & DEVICE_METRICS]
    assert device_rules, f"{program} {tier} has no device rule"
    for rule in device_rules:
        assert rule.verdict in ("fail", "insufficient_evidence"), rule.rule
        why = "\n".join(explain(rule))
        assert "simulated connected devices were excluded" in why or (
            "simulated managed devices were excluded" in why
        ), why
        if rule.op is not None and rule.metrics[0] in DEVICE_METRICS and rule.measured is not None:
            assert rule.measured == 0, rule.rule


@pytest.mark.parametrize(("program", "tier"), EVERY_TIER)
def test_verdicts_are_consistent_with_the_fleet_when_included(
    collected: Collected, program: str, tier: str
) -> None:
    ruleset = criteria.load_ruleset(program)
    result = evaluation(collected, collected.included, program, tier)
    assert any("do not show eligibility" in w for w in result.warnings)
    checked = 0
    for rule_result in result.results:
        rule = ruleset.rule(rule_result.rule)
        if rule.source == "measured" and rule.check is not None:
            checked += check_consistent(collected, rule.check, rule_result.check, None)
    assert checked > 0, f"{program} {tier}: no measured figure was checked"
    # 40 of a declared inventory of 60 is 66.7 %, at least 50 %: the share passes, and the
    # managed share (5 of 60 = 8.3 %) passes its 5 % too; nothing else in this tier is met.
    if (program, tier) == ("jiangxi-2022", "enterprise"):
        assert result.result("jx-enterprise-connected-share").verdict == "pass"
        assert result.result("jx-enterprise-managed-share").verdict == "pass"
