"""Control operations on MQTT devices through the contract: JSON commands and Sparkplug DCMD."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from collector.config import parse_config
from collector.control.outcome import ControlOp, ControlRequest, Kind, Outcome
from collector.service import CollectorService
from simulators.fleet import device_configs, parse_fleet
from simulators.runner import FleetSimulator
from tests.collector.control.controltest import managed, ops, registered

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

POINTS: list[dict[str, Any]] = [
    {"key": "flow", "signal": {"kind": "sine", "base": 10}},
    {"key": "setpoint", "writable": True, "signal": {"value": 50.0}},
    {"key": "refused", "writable": True, "on_write": "refuse", "signal": {"value": 1.0}},
    {"key": "liar", "writable": True, "on_write": "misreport", "signal": {"value": 1.0}},
]


def _fleet(broker: str, tag: str) -> dict[str, Any]:
    return {
        "version": 1,
        "name": "control-mqtt",
        "protocols": {"mqtt": {"broker": broker, "topic_root": f"ctl{tag}", "command_timeout": 2}},
        "devices": [
            {"id": f"press-{tag}", "protocol": "mqtt", "type": "press", "industry": "C34",
             "update_interval": 0.5, "points": POINTS},
            {"id": f"kiln-{tag}", "protocol": "mqtt", "encoding": "sparkplug",
             "group": f"g{tag}", "type": "kiln", "industry": "C30", "update_interval": 0.5,
             "points": POINTS[:2]},
        ],
    }  # fmt: skip


@pytest.fixture
async def collector(
    database_url: str, mqtt_url: str, tmp_path: Path
) -> AsyncIterator[tuple[CollectorService, str]]:
    tag = tmp_path.name[-6:].replace("_", "")
    config = parse_config(
        {
            "version": 1,
            "data_dir": str(tmp_path),
            "store": {"dsn": database_url},
            "pipeline": {"batch_age": 0.1},
            "control": {"rate_limit": {"operations": 50}},
        },
        "<test>",
        environ={},
    )
    fleet = FleetSimulator(parse_fleet(_fleet(mqtt_url, tag), "<mqtt fleet>"))
    async with fleet as manifest, CollectorService(config, device_configs(manifest)) as service:
        await registered(database_url, f"press-{tag}", len(POINTS))
        await registered(database_url, f"kiln-{tag}", 2)
        yield service, tag


async def _write(service: CollectorService, device: str, point: str, value: Any) -> ControlOp:
    return await service.control.execute(
        ControlRequest(device, point, Kind.WRITE, value, requested_by="api-key:test")
    )


async def test_mqtt_outcomes_and_managed_devices(
    collector: tuple[CollectorService, str], database_url: str
) -> None:
    service, tag = collector
    press, kiln = f"press-{tag}", f"kiln-{tag}"
    refused = await _write(service, press, "refused", 2.0)
    assert refused.outcome is Outcome.REJECTED, refused.detail
    liar = await _write(service, press, "liar", 2.0)
    assert liar.outcome is Outcome.MISMATCH, liar.detail
    assert liar.read_back not in (None, 2.0)
    not_allowed = await _write(service, press, "flow", 2.0)
    assert not_allowed.outcome is Outcome.NOT_ALLOWED, not_allowed.detail
    assert await managed(database_url) == (0, 0)

    verified = await _write(service, press, "setpoint", 55.5)
    assert verified.outcome is Outcome.VERIFIED, verified.detail
    assert (verified.requested_value, verified.read_back) == (55.5, 55.5)
    confirmed = await _write(service, kiln, "setpoint", 61.0)  # DCMD confirmed by DDATA
    assert confirmed.outcome is Outcome.VERIFIED, confirmed.detail
    assert confirmed.protocol in {"mqtt", "sparkplug"}
    assert await managed(database_url) == (2, 2)
    assert len(await ops(database_url)) == 5


async def test_a_probe_never_stores_a_collected_sample_twice(
    collector: tuple[CollectorService, str], database_url: str
) -> None:
    service, tag = collector
    press, kiln = f"press-{tag}", f"kiln-{tag}"
    for device in (press, kiln):
        op = await service.control.execute(ControlRequest(device, "setpoint", Kind.PROBE))
        assert op.outcome is Outcome.VERIFIED, op.detail
    await service.pipeline.wait_idle(10.0)
    # MQTT's read is the last value received: it was stored when it arrived, not again.
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM (SELECT point_id, ts FROM sample GROUP BY 1, 2"
            " HAVING count(*) > 1) AS twice"
        )
        assert await cur.fetchone() == (0,)
