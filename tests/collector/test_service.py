"""The whole collector against the demo fleet: adapters → pipeline → PostgreSQL → API counts."""

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from psycopg import AsyncConnection

from api.app import create_app
from api.auth import Role, create_key
from api.settings import Settings
from collector.config import parse_config
from collector.embedded.ports import free_port
from collector.runtime import ApiServer
from collector.service import CollectorService
from criteria.industries import classify
from simulators.fleet import Manifest, device_configs, load_fleet
from simulators.modbus.simulator import ModbusFleetSimulator
from simulators.runner import DEMO_FLEET, FleetSimulator

ALL = {"include_simulated": "true", "window": "1h"}


@dataclass
class Running:
    manifest: Manifest
    fleet: FleetSimulator
    client: httpx.AsyncClient

    async def get(self, path: str, **params: str) -> Any:
        response = await self.client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()


async def _until(check: Callable[[], Awaitable[Any]], within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.25)


@pytest.fixture
async def running(database_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    raw = {
        "version": 1,
        "data_dir": str(tmp_path),
        "store": {"dsn": database_url},
        "pipeline": {"batch_age": 0.2},
    }
    config = parse_config(raw, "<test>", environ={})
    fleet = FleetSimulator(load_fleet(DEMO_FLEET))
    manifest = await fleet.start()
    try:
        async with CollectorService(config, device_configs(manifest)):
            async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
                key, _ = await create_key(conn, Role.AUDITOR, "test")
            api = ApiServer(create_app(Settings.from_config(config)), "127.0.0.1", free_port())
            await api.start()
            try:
                headers = {"Authorization": f"Bearer {key.token}"}
                async with httpx.AsyncClient(base_url=api.url, headers=headers) as client:
                    yield Running(manifest, fleet, client)
            finally:
                await api.stop()
    finally:
        await fleet.stop()


def _truth(manifest: Manifest) -> dict[str, Any]:
    devices = manifest.devices
    process = [d for d in devices if d.industry and classify(d.industry) == "process"]
    return {
        "connected_devices": len(devices),
        "device_types": len({d.type for d in devices}),
        "points": sum(len(d.points) for d in devices),
        "process_points": sum(len(d.points) for d in process),
    }


async def _all_counted(run: Running) -> dict[str, Any] | None:
    counts: dict[str, Any] = await run.get("/v1/counts", **ALL)
    truth = _truth(run.manifest)
    done = counts["connected_devices"] == truth["connected_devices"]
    return counts if done and counts["points"] == truth["points"] else None


@pytest.mark.integration
@pytest.mark.timeout(120)
async def test_counts_equal_the_manifest_and_a_stopped_server_goes_offline(
    running: Running,
) -> None:
    truth = _truth(running.manifest)
    counts = await _until(lambda: _all_counted(running), 30, "every device and point counted")
    assert {k: counts[k] for k in truth} == truth
    assert counts["online_now"] == truth["connected_devices"]

    by_industry = await running.get("/v1/counts", group_by="industry", **ALL)
    expected = Counter(d.industry for d in running.manifest.devices)
    assert {g["key"]: g["connected_devices"] for g in by_industry["groups"]} == expected
    by_type = await running.get("/v1/counts", group_by="type", **ALL)
    expected_points = Counter[str | None]()
    for device in running.manifest.devices:
        expected_points[device.type] += len(device.points)
    assert {g["key"]: g["points"] for g in by_type["groups"]} == expected_points

    page = await running.get("/v1/devices", limit="1000", **ALL)
    assert sorted(d["key"] for d in page["items"]) == sorted(d.id for d in running.manifest.devices)
    assert all(d["simulated"] for d in page["items"])

    # Simulated devices never count unless asked for, and the answer says so.
    default = await running.get("/v1/counts", window="1h")
    assert default["include_simulated"] is False
    assert default["connected_devices"] == 0
    assert default["simulated_devices_excluded"] == truth["connected_devices"]

    # Stop one Modbus server: its devices go offline now, but stay connected in the window.
    modbus = running.fleet.simulators["modbus"]
    assert isinstance(modbus, ModbusFleetSimulator)
    victim = running.manifest.devices[0].id
    server = modbus.server_of(victim)
    on_server = {d.id for d in running.manifest.devices if d.endpoint == server.endpoint}
    assert 0 < len(on_server) < truth["connected_devices"]
    await server.stop()

    async def offline() -> set[str] | None:
        page = await running.get("/v1/devices", status="offline", limit="1000", **ALL)
        keys = {d["key"] for d in page["items"]}
        return keys if keys == on_server else None

    await _until(offline, 20, f"{len(on_server)} devices of {server.endpoint} offline")
    after = await running.get("/v1/counts", **ALL)
    assert after["connected_devices"] == truth["connected_devices"]
    assert after["online_now"] == truth["connected_devices"] - len(on_server)

    await server.start()

    async def back_online() -> bool:
        return bool((await running.get("/v1/counts", **ALL))["online_now"] == len(page["items"]))

    await _until(back_online, 30, "the restarted server's devices online again")
