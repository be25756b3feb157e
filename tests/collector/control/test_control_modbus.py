"""Control operations on Modbus devices, end to end: simulator → adapter → service → store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from psycopg import AsyncConnection

from collector.control.outcome import SCHEDULE, Kind, Outcome
from collector.control.service import DeviceNotFound
from tests.collector.control.controltest import (
    ModbusRig,
    audit_entries,
    managed,
    modbus_rig,
    ops,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
async def rig(database_url: str, tmp_path: Path) -> AsyncIterator[ModbusRig]:
    async for r in modbus_rig(database_url, tmp_path, {"rate_limit": {"operations": 50}}):
        yield r


async def test_a_verified_write_makes_the_device_managed_and_is_audited(rig: ModbusRig) -> None:
    assert await managed(rig.dsn) == (0, 0)
    op = await rig.write("pump-1", "speed_setpoint", 1500)
    assert op.outcome is Outcome.VERIFIED, op.detail
    assert (op.value_before, op.requested_value, op.read_back) == (1480, 1500, 1500)
    assert (op.kind, op.requested_by, op.protocol, op.point) == (
        Kind.WRITE, "api-key:test", "modbus", "speed_setpoint",
    )  # fmt: skip
    assert op.point_id is not None and op.detail is None
    assert op.completed_at >= op.requested_at and op.latency_ms > 0
    assert rig.unit("pump-1").value("speed_setpoint") == 1500
    assert await managed(rig.dsn) == (1, 1)

    scaled = await rig.write("pump-2", "pressure_setpoint", 8.25)  # raw 825, scale 0.01
    assert scaled.outcome is Outcome.VERIFIED, scaled.detail
    assert scaled.read_back == pytest.approx(8.25)
    coil = await rig.write("pump-2", "running", False)
    assert (coil.outcome, coil.value_before, coil.read_back) == (Outcome.VERIFIED, True, False)
    assert await managed(rig.dsn) == (2, 1)  # two pumps, one type

    entries = await audit_entries(rig.dsn)
    control = [e for e in entries if e[1].startswith("control.")]
    assert [(e[0], e[1], e[2]) for e in control] == [
        ("api-key:test", "control.write", "device:pump-1/speed_setpoint"),
        ("api-key:test", "control.write", "device:pump-2/pressure_setpoint"),
        ("api-key:test", "control.write", "device:pump-2/running"),
    ]
    assert control[0][3]["control_op"] == op.id
    assert control[0][3]["outcome"] == "verified"


async def test_a_probe_writes_back_what_it_read_and_changes_nothing(rig: ModbusRig) -> None:
    op = await rig.probe("pump-1")
    assert op.outcome is Outcome.VERIFIED, op.detail
    assert op.point == "pressure_setpoint"  # the first writable point by key
    assert op.value_before == op.requested_value == op.read_back == pytest.approx(7.5)
    assert (op.kind, op.requested_by) == (Kind.PROBE, SCHEDULE)
    assert rig.unit("pump-1").value("pressure_setpoint") == pytest.approx(7.5)
    chosen = await rig.probe("pump-2", "running")
    assert (chosen.outcome, chosen.read_back) == (Outcome.VERIFIED, True)
    assert await managed(rig.dsn) == (2, 1)


async def test_rejected_mismatched_and_timed_out_writes_leave_the_device_unmanaged(
    rig: ModbusRig,
) -> None:
    unit = rig.unit("pump-1")
    unit.refuse_writes("speed_setpoint")
    rejected = await rig.write("pump-1", "speed_setpoint", 1500)
    assert rejected.outcome is Outcome.REJECTED, rejected.detail
    assert rejected.detail is not None and "exception 4" in rejected.detail
    assert (rejected.value_before, rejected.read_back) == (1480, None)
    assert unit.value("speed_setpoint") == 1480

    unit.clear_faults()
    unit.misreport("speed_setpoint")
    mismatch = await rig.write("pump-1", "speed_setpoint", 1500)
    assert mismatch.outcome is Outcome.MISMATCH, mismatch.detail
    assert mismatch.read_back not in (None, 1500)
    assert mismatch.detail is not None and "wrote 1500" in mismatch.detail
    probe = await rig.probe("pump-1", "speed_setpoint")  # writing the same value back
    assert probe.outcome is Outcome.MISMATCH, probe.detail

    unit.clear_faults()
    unit.delay("speed_setpoint", 1.0)  # the adapter waits 0.3 s (the fleet's timeout)
    timed_out = await rig.write("pump-1", "speed_setpoint", 1400)
    assert timed_out.outcome is Outcome.TIMEOUT, timed_out.detail
    assert timed_out.detail is not None and timed_out.detail.startswith("write:")
    assert "not retried" in timed_out.detail
    assert await managed(rig.dsn) == (0, 0)

    recorded = await ops(rig.dsn, device="pump-1")
    assert [o.outcome for o in reversed(recorded)] == [
        Outcome.REJECTED, Outcome.MISMATCH, Outcome.MISMATCH, Outcome.TIMEOUT,
    ]  # fmt: skip
    audited = [e for e in await audit_entries(rig.dsn) if e[1].startswith("control.")]
    assert sorted(e[3]["control_op"] for e in audited) == sorted(o.id for o in recorded)


async def test_writes_not_allowed_are_refused_before_anything_is_sent(rig: ModbusRig) -> None:
    sent = rig.requests
    cases = {
        ("flow", 3.0): "not writable",
        ("nope", 1): "no registered point 'nope'",
        ("speed_setpoint", 5000): "above the maximum 3000",
        ("speed_setpoint", 70000): "above the maximum 3000",
        ("pressure_setpoint", "high"): "expected a number",
        ("running", 2): "expected a boolean",
    }
    for (point, value), why in cases.items():
        op = await rig.write("pump-1", point, value)
        assert op.outcome is Outcome.NOT_ALLOWED, (point, op)
        assert op.detail is not None and why in op.detail, op.detail
        assert "nothing was sent" in op.detail
        assert op.value_before is None and op.read_back is None
    assert rig.requests == sent, "a refused write sent a Modbus request"
    assert rig.unit("pump-1").value("speed_setpoint") == 1480
    assert await managed(rig.dsn) == (0, 0)
    assert len(await ops(rig.dsn, outcome=Outcome.NOT_ALLOWED)) == len(cases)


async def test_control_limits_and_the_rate_limit_refuse_before_sending(
    database_url: str, tmp_path: Path
) -> None:
    control = {
        "rate_limit": {"operations": 2, "period": 60},
        "limits": [
            {"device": "pump-*", "point": "*_setpoint", "min": 1000, "max": 2000},
            {"device": "pump-2", "point": "running", "deny": True},
        ],
    }
    async for r in modbus_rig(database_url, tmp_path, control):
        sent = r.requests
        low = await r.write("pump-1", "speed_setpoint", 900)
        assert low.outcome is Outcome.NOT_ALLOWED
        assert low.detail is not None and "below the minimum 1000" in low.detail
        denied = await r.write("pump-2", "running", False)
        assert denied.detail is not None and "denied by control.limits" in denied.detail
        assert r.requests == sent
        assert (await r.write("pump-1", "speed_setpoint", 1500)).outcome is Outcome.VERIFIED
        assert (await r.write("pump-1", "speed_setpoint", 1480)).outcome is Outcome.VERIFIED
        sent = r.requests
        limited = await r.write("pump-1", "speed_setpoint", 1500)
        assert limited.outcome is Outcome.NOT_ALLOWED
        assert limited.detail is not None and "rate limit" in limited.detail
        assert r.requests == sent
        other = await r.write("pump-2", "speed_setpoint", 1500)  # limits are per device
        assert other.outcome is Outcome.VERIFIED


async def test_control_switched_off_refuses_everything(database_url: str, tmp_path: Path) -> None:
    async for r in modbus_rig(database_url, tmp_path, {"enabled": False}):
        sent = r.requests
        op = await r.write("pump-1", "speed_setpoint", 1500)
        assert op.outcome is Outcome.NOT_ALLOWED
        assert op.detail is not None and "control.enabled: false" in op.detail
        assert r.requests == sent


async def test_unknown_and_unserved_devices(rig: ModbusRig) -> None:
    with pytest.raises(DeviceNotFound, match="no registered device with key 'ghost'"):
        await rig.write("ghost", "speed_setpoint", 1)
    async with await AsyncConnection.connect(rig.dsn, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO device (key, protocol, endpoint) VALUES ('elsewhere', 'modbus', 'x')"
        )
    op = await rig.write("elsewhere", "speed_setpoint", 1)
    assert op.outcome is Outcome.ERROR
    assert op.detail is not None and "no adapter of this collector serves" in op.detail
