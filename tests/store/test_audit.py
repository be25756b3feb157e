import asyncio

import psycopg
import pytest
from psycopg import AsyncConnection

from collector.store import audit


async def _fill(dsn: str, n: int) -> None:
    async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
        for i in range(n):
            payload = {"type": "pump", "n": i, "ratio": 0.1 * i, "big": 10**20}
            payload["nested"] = {"z": 1, "a": [1.5, None]}
            await audit.append(conn, "key:abc", "device.registered", f"device/d{i}", payload)


@pytest.mark.integration
async def test_an_untouched_chain_verifies(database_url: str) -> None:
    await _fill(database_url, 25)
    async with await AsyncConnection.connect(database_url) as conn:
        verdict = await audit.verify(conn, batch=7)
    assert verdict.ok
    assert verdict.entries == 25
    assert verdict.head is not None


@pytest.mark.integration
async def test_concurrent_appends_form_one_linear_chain(database_url: str) -> None:
    await asyncio.gather(*(_fill(database_url, 10) for _ in range(4)))
    async with await AsyncConnection.connect(database_url) as conn:
        verdict = await audit.verify(conn)
    assert (verdict.ok, verdict.entries) == (True, 40)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ('UPDATE audit_log SET payload = payload || \'{"type": "valve"}\' WHERE seq = 7', "edited"),
        ("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 7", "edited"),
        ("UPDATE audit_log SET ts = ts + interval '1 second' WHERE seq = 7", "edited"),
        ("DELETE FROM audit_log WHERE seq = 7", "removed"),
    ],
)
async def test_tampering_names_the_first_broken_entry(
    database_url: str, tamper: str, reason: str
) -> None:
    await _fill(database_url, 12)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(tamper)
    async with await AsyncConnection.connect(database_url) as conn:
        verdict = await audit.verify(conn)
    assert not verdict.ok
    expected_seq = 8 if reason == "removed" else 7
    assert verdict.broken_seq == expected_seq
    assert verdict.reason is not None and reason in verdict.reason
    assert verdict.entries == 6


@pytest.mark.integration
async def test_an_append_rolled_back_with_its_action_leaves_no_trace(database_url: str) -> None:
    await _fill(database_url, 2)
    async with await AsyncConnection.connect(database_url) as conn:
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                await audit.append(conn, "key:abc", "control.write", "device/d0", {})
                raise RuntimeError("the action failed")
        await audit.append(conn, "key:abc", "control.write", "device/d1", {})
        await conn.commit()
        verdict = await audit.verify(conn)
    assert (verdict.ok, verdict.entries) == (True, 3)
