"""The metrics snapshot computed from the store: every breakdown, managed devices, simulated."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

import pytest
from psycopg import AsyncConnection

import criteria
from collector.store.snapshot import DEFINITIONS, build_snapshot, gather
from criteria import MetricsSnapshot
from tests.api.apitest import Seed, build_fleet, utc

pytestmark = pytest.mark.integration

START = utc(2024, 5, 1, 10)
END = utc(2024, 5, 3, 6)


@pytest.fixture
def seeded(database_url: str) -> Iterator[tuple[str, dict[str, int]]]:
    seed = Seed(database_url)
    try:
        yield database_url, build_fleet(seed)
    finally:
        seed.close()


def control(dsn: str, device_id: int, at: datetime, outcome: str = "verified") -> None:
    """Record a control operation as the control engine would."""
    seed = Seed(dsn)
    try:
        seed.conn.execute(
            "INSERT INTO control_op (device_id, kind, requested_by, requested_at, completed_at,"
            " outcome) VALUES (%s, 'probe', 'test', %s, %s, %s)",
            (device_id, at, at, outcome),
        )
    finally:
        seed.close()


async def snap(dsn: str, include_simulated: bool = False) -> MetricsSnapshot:
    async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
        return await build_snapshot(
            conn, START, END, include_simulated=include_simulated, collector="site-a"
        )


async def test_connected_devices_and_every_breakdown(seeded: tuple[str, dict[str, int]]) -> None:
    dsn, _ = seeded
    s = await snap(dsn)
    assert s.connected_devices is not None
    # a-reactor (C26), b-lathe (C34), h-ent (enterprise's C25), i-farm (A01); g-sim excluded.
    assert s.connected_devices.total == 4
    assert s.connected_devices.by_industry == {"A01": 1, "C25": 1, "C26": 1, "C34": 1}
    assert s.connected_devices.by_type == {"cnc": 1, "compressor": 1, "reactor": 1}
    assert s.connected_devices.by_region == {"320100": 1, "360100": 2}
    assert s.connected_devices.by_industry_type == {
        "C25": {"compressor": 1},
        "C26": {"reactor": 1},
        "C34": {"cnc": 1},
    }
    assert s.device_types == 3
    # Points with a good sample: temp, pressure (a-reactor), spindle, rpm, vib, soil.
    assert s.points is not None and s.points.total == 6
    assert s.points.by_industry == {"A01": 1, "C25": 2, "C26": 2, "C34": 1}
    assert s.process_points is not None and s.process_points.total == 4
    assert s.process_points.by_industry == {"C25": 2, "C26": 2}
    assert (s.window_start, s.window_end, s.collector) == (START, END, "site-a")
    assert set(DEFINITIONS) <= set(s.definitions)
    assert "excluded" in s.definitions["simulated"]


async def test_simulated_devices_are_excluded_and_counted_as_excluded(
    seeded: tuple[str, dict[str, int]],
) -> None:
    dsn, ids = seeded
    control(dsn, ids["g-sim"], utc(2024, 5, 2, 12))
    excluded = await snap(dsn)
    assert excluded.simulated_excluded is not None
    assert excluded.simulated_excluded.connected_devices == 1
    assert excluded.simulated_excluded.managed_devices == 1
    assert excluded.simulated_excluded.points == 2
    included = await snap(dsn, include_simulated=True)
    assert included.connected_devices is not None and included.connected_devices.total == 5
    assert included.managed_devices is not None and included.managed_devices.total == 1
    assert included.points is not None and included.points.total == 8
    assert "INCLUDED" in included.definitions["simulated"]


async def test_managed_devices_need_a_verified_operation_inside_the_window(
    seeded: tuple[str, dict[str, int]],
) -> None:
    dsn, ids = seeded
    control(dsn, ids["a-reactor"], utc(2024, 5, 2, 3))  # verified, inside
    control(dsn, ids["a-reactor"], utc(2024, 5, 2, 4))  # a second one: still one device
    control(dsn, ids["b-lathe"], utc(2024, 5, 2, 3), outcome="mismatch")  # not verified
    control(dsn, ids["h-ent"], utc(2024, 5, 1, 9))  # before the window
    control(dsn, ids["h-ent"], END)  # at the exclusive end
    control(dsn, ids["e-bad"], utc(2024, 5, 2, 3))  # verified but the device is not connected
    s = await snap(dsn)
    assert s.managed_devices is not None
    assert s.managed_devices.total == 1
    assert s.managed_devices.by_industry == {"C26": 1}
    assert s.managed_devices.by_region == {"360100": 1}
    assert s.managed_device_types == 1
    control(dsn, ids["b-lathe"], utc(2024, 5, 3, 5))
    again = await snap(dsn)
    assert again.managed_devices is not None and again.managed_devices.total == 2
    assert again.managed_devices.by_type == {"cnc": 1, "reactor": 1}


async def test_registry_figures_are_absent_not_zero(database_url: str) -> None:
    s = await snap(database_url)
    assert (s.apps, s.subscriptions, s.enterprise_users, s.developers, s.calls) == (None,) * 5
    # An empty store measures zero devices: present, and zero.
    assert s.connected_devices is not None and s.connected_devices.total == 0
    evaluation = criteria.evaluate(criteria.load_ruleset("jiangsu-2018"), s, [], "enterprise")
    calls = evaluation.result("js-enterprise-model-calls")
    assert calls.verdict == "insufficient_evidence"
    assert evaluation.result("js-enterprise-managed").verdict == "fail"


async def test_snapshot_round_trips_and_matches_the_counts_api(
    seeded: tuple[str, dict[str, int]],
) -> None:
    dsn, _ = seeded
    s = await snap(dsn)
    assert MetricsSnapshot.model_validate(json.loads(s.model_dump_json())) == s
    from api.counting import compute_counts
    from api.window import Window

    async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
        counts = await compute_counts(conn, Window(START, END, START, END, None), False, None, END)
    assert s.connected_devices is not None and s.points is not None
    assert s.process_points is not None
    assert (s.connected_devices.total, s.device_types, s.points.total, s.process_points.total) == (
        counts.connected_devices,
        counts.device_types,
        counts.points,
        counts.process_points,
    )
    assert s.simulated_excluded is not None
    assert s.simulated_excluded.connected_devices == counts.simulated_devices_excluded


async def test_unaligned_windows_are_refused(database_url: str) -> None:
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        with pytest.raises(ValueError, match="UTC hour"):
            await gather(conn, utc(2024, 5, 1, 10, 30), END)
