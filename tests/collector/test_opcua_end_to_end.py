"""OPC UA end to end: simulated servers → collector → real PostgreSQL → HTTP API.

The fleet `simulators/fleets/opcua-demo.yaml` (two servers, one of them SignAndEncrypt with
username/password, process and discrete industries) is served over loopback; the collector
runs on the configuration the fleet plug-in generates, and the API must count exactly what
the manifest says is served — through an outage of the servers too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from adapters.opcua.adapter import OpcUaAdapters
from api.auth import Role
from collector.config import TallyConfig, parse_config
from collector.service import CollectorService
from criteria.industries import classify
from simulators.fleet import Manifest, device_configs, load_fleet
from simulators.opcua.simulator import OpcUaFleetSimulator
from simulators.runner import FleetSimulator
from tests.api.apitest import add_key, api_client, bearer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

FLEET = Path(__file__).resolve().parents[2] / "simulators" / "fleets" / "opcua-demo.yaml"
# The current and the previous UTC hour: a run that crosses an hour boundary still sees the
# writable points, whose constant values are notified once when the subscription starts.
WINDOW = {"window": "2h", "include_simulated": "true"}


def _config(dsn: str, data_dir: Path) -> TallyConfig:
    raw = {
        "version": 1,
        "site": "opcua-e2e",
        "data_dir": str(data_dir),
        "store": {"dsn": dsn},
        "pipeline": {"batch_age": 0.2},
    }
    return parse_config(raw, "<opcua end-to-end test>", environ={})


def _truth(manifest: Manifest) -> dict[str, int]:
    process = [d for d in manifest.devices if d.industry and classify(d.industry) == "process"]
    return {
        "connected_devices": len(manifest.devices),
        "device_types": len({d.type for d in manifest.devices}),
        "points": sum(len(d.points) for d in manifest.devices),
        "process_points": sum(len(d.points) for d in process),
    }


async def _until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> float:
    """Wait until check() holds; return the seconds it took, fail after `within`."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > within:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def _counts(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await client.get("/v1/counts", params=WINDOW, headers=bearer(token))
    response.raise_for_status()
    counts: dict[str, Any] = response.json()
    return counts


def _rows(dsn: str, query: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


def _opcua(fleet: FleetSimulator) -> OpcUaFleetSimulator:
    simulator = fleet.simulators["opcua"]
    assert isinstance(simulator, OpcUaFleetSimulator)
    return simulator


def _opcua_adapters(service: CollectorService) -> OpcUaAdapters:
    [adapters] = [a for a in service.adapters if isinstance(a, OpcUaAdapters)]
    return adapters


async def test_devices_types_and_points_through_the_api_equal_the_manifest(
    database_url: str, tmp_path: Path
) -> None:
    fleet = FleetSimulator(load_fleet(FLEET))
    async with fleet as manifest:
        truth = _truth(manifest)
        assert truth["process_points"] and truth["process_points"] < truth["points"]
        async with (
            CollectorService(_config(database_url, tmp_path), device_configs(manifest)),
            api_client(database_url) as (client, _),
        ):
            token = await add_key(database_url, Role.AUDITOR, "opcua e2e")

            async def all_counted() -> bool:
                counts = await _counts(client, token)
                return bool(counts["points"] >= truth["points"])

            await _until(all_counted, 30, "every served point counted")
            counts = await _counts(client, token)
            assert {k: counts[k] for k in truth} == truth
            assert counts["online_now"] == truth["connected_devices"]

            response = await client.get(
                "/v1/devices", params={**WINDOW, "limit": 1000}, headers=bearer(token)
            )
            response.raise_for_status()
            page = response.json()
            served = {d.id: d for d in manifest.devices}
            assert page["total"] == len(served)
            assert sorted(d["key"] for d in page["items"]) == sorted(served)
            for item in page["items"]:
                device = served[item["key"]]
                assert item["protocol"] == "opcua"
                assert item["endpoint"] == device.endpoint
                assert (item["device_type"], item["industry"], item["region"]) == (
                    device.type,
                    device.industry,
                    device.region,
                )
                assert item["name"] == device.name
                assert item["simulated"] and item["connected"] and item["status"] == "online"
                assert item["identity"]["serial"] == f"SIM-{device.id}"
                detail = await client.get(
                    f"/v1/devices/{item['id']}", params={"window": "2h"}, headers=bearer(token)
                )
                detail.raise_for_status()
                points = {p["key"]: p for p in detail.json()["points"]}
                assert sorted(points) == sorted(p.key for p in device.points)
                for point in device.points:
                    stored = points[point.key]
                    assert (stored["data_type"], stored["writable"], stored["unit"]) == (
                        point.data_type,
                        point.writable,
                        point.unit,
                    ), f"{device.id}/{point.key}"
                    assert stored["active"], f"{device.id}/{point.key}"

            # A Bad StatusCode: stored as BAD quality, never counted as good.
            await (
                _opcua(fleet)
                .servers["refinery"]
                .set_status("rx-101", "Temperature", "BadSensorFailure")
            )
            bad_samples = (
                "SELECT count(*), count(s.value) FROM sample s JOIN point p ON p.id = s.point_id"
                " JOIN device d ON d.id = p.device_id"
                " WHERE d.key = 'rx-101' AND p.key = 'Temperature' AND s.quality = 2"
            )

            async def stored_bad() -> bool:
                [(bad, _)] = await asyncio.to_thread(_rows, database_url, bad_samples)
                return bool(bad)

            await _until(stored_bad, 10, "a BAD sample of the failed sensor stored")
    [(bad, bad_values)] = _rows(database_url, bad_samples)
    assert bad == 1 and bad_values == 0  # notified once, and a Bad value is null
    # The device's hourly rollup counts every stored sample, and as good only the good ones.
    [(rolled, rolled_good, stored, stored_good)] = _rows(
        database_url,
        "SELECT (SELECT sum(samples) FROM device_activity a WHERE a.device_id = d.id),"
        " (SELECT sum(good_samples) FROM device_activity a WHERE a.device_id = d.id),"
        " (SELECT count(*) FROM sample s JOIN point p ON p.id = s.point_id"
        "   WHERE p.device_id = d.id),"
        " (SELECT count(*) FROM sample s JOIN point p ON p.id = s.point_id"
        "   WHERE p.device_id = d.id AND s.quality = 0)"
        " FROM device d WHERE d.key = 'rx-101'",
    )
    assert (rolled, rolled_good) == (stored, stored_good)
    assert rolled_good == rolled - 1


async def test_samples_resume_after_a_10_s_server_outage_without_restarting_the_collector(
    database_url: str, tmp_path: Path
) -> None:
    fleet = FleetSimulator(load_fleet(FLEET))
    async with fleet as manifest:
        truth = _truth(manifest)
        # Straight from the samples: point.last_seen is coalesced by the writer and lags.
        seen = (
            "SELECT (SELECT count(DISTINCT point_id) FROM sample WHERE ts >= %s),"
            " (SELECT count(*) FROM point)"
        )
        async with (
            CollectorService(_config(database_url, tmp_path), device_configs(manifest)) as service,
            api_client(database_url) as (client, _),
        ):
            token = await add_key(database_url, Role.AUDITOR, "opcua restart")

            async def every_point_seen_since(moment: datetime) -> bool:
                [(fresh, total)] = await asyncio.to_thread(_rows, database_url, seen, moment)
                return bool(total == truth["points"] and fresh == total)

            await _until(
                lambda: every_point_seen_since(datetime(2000, 1, 1, tzinfo=UTC)),
                30,
                "a stored sample of every point",
            )
            servers = _opcua(fleet).servers
            before = {
                (name, d.id, p.key): server.node_id(d.id, p.key)
                for name, server in servers.items()
                for d in server.devices
                for p in d.points
            }
            await _opcua(fleet).stop()
            await asyncio.sleep(10)
            returned = datetime.now(UTC)
            for server in servers.values():
                server.nodeid_offset += 5
                await server.start()
            after = {
                (name, d.id, p.key): server.node_id(d.id, p.key)
                for name, server in servers.items()
                for d in server.devices
                for p in d.points
            }
            assert all(after[k] != before[k] for k in before), "every NodeId changed"
            took = await _until(
                lambda: every_point_seen_since(returned),
                20,
                "a new stored sample of every point after the servers returned",
            )
            assert took < 10, f"samples resumed {took:.1f} s after the servers returned"
            adapters = _opcua_adapters(service).adapters
            assert sorted(a.sessions for a in adapters) == [2, 2]  # reconnected, not restarted
            [(fresh_hours,)] = _rows(
                database_url,
                "SELECT count(DISTINCT device_id) FROM device_activity WHERE last_ts >= %s",
                returned,
            )
            assert fresh_hours == truth["connected_devices"]
            counts = await _counts(client, token)
            assert {k: counts[k] for k in truth} == truth
            assert counts["online_now"] == truth["connected_devices"]
    # the same identities throughout: no device or point was registered twice
    [(devices, points)] = _rows(
        database_url, "SELECT (SELECT count(*) FROM device), (SELECT count(*) FROM point)"
    )
    assert (devices, points) == (truth["connected_devices"], truth["points"])
