"""MQTT through the whole collector: simulated fleet → broker → CollectorService → store → API."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from api.auth import Role
from collector.embedded.mosquitto import ThrowawayMosquitto
from simulators.fleet import Fleet, Manifest, device_configs, parse_fleet
from simulators.mqtt.fleet_simulator import MqttFleetSimulator
from simulators.runner import FleetSimulator
from tests.adapters.mqtt.mqttstack import SAMPLES_BY_DEVICE, collector, query, unique, until
from tests.api.apitest import add_key, api_client, bearer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

PUMP = [
    {"key": "flow", "unit": "m³/h", "signal": {"kind": "sine", "base": 40, "amplitude": 5}},
    {"key": "speed", "data_type": "int64", "unit": "rpm", "writable": True,
     "signal": {"value": 1450}},
    {"key": "running", "data_type": "bool", "signal": {"value": True}},
]  # fmt: skip
REACTOR = [
    {"key": "temperature", "unit": "°C", "signal": {"kind": "sine", "base": 80}},
    {"key": "setpoint", "unit": "°C", "writable": True, "signal": {"value": 80}},
    {"key": "stage", "data_type": "int32", "signal": {"kind": "counter", "period": 30}},
    {"key": "batch", "data_type": "string", "signal": {"value": "B-17"}},
]


def fleet(broker: str, root: str, group: str) -> Fleet:
    site = {"protocol": "mqtt", "industry": "C2614", "region": "360400", "update_interval": 0.3}
    spec: dict[str, Any] = {
        "version": 1,
        "name": "mqtt-collector-test",
        "seed": 5,
        "protocols": {"mqtt": {"broker": broker, "topic_root": root, "connection": "plant"}},
        "templates": {
            "site": site,
            "json": {"encoding": "json"},
            "sp": {"encoding": "sparkplug", "group": group, "edge_node": "hall-1"},
        },
        "devices": [
            {"id": "pump-1", "template": ["site", "json"], "type": "pump", "points": PUMP},
            {"id": "fan-1", "template": ["site", "json"], "type": "fan", "industry": "C34",
             "points": PUMP[:2]},
            {"id": "rx-1", "template": ["site", "sp"], "type": "reactor", "points": REACTOR},
            {"id": "rx-2", "template": ["site", "sp"], "type": "reactor", "points": REACTOR},
            {"id": "dryer-1", "template": ["site", "sp"], "type": "dryer", "points": REACTOR[:2]},
        ],
    }  # fmt: skip
    return parse_fleet(spec, "<test>")


def truth(manifest: Manifest) -> dict[str, int]:
    process = [d for d in manifest.devices if d.industry == "C2614"]
    return {
        "connected_devices": len(manifest.devices),
        "device_types": len({d.type for d in manifest.devices}),
        "points": sum(len(d.points) for d in manifest.devices),
        "process_points": sum(len(d.points) for d in process),
    }


async def test_counts_devices_and_points_through_the_api_equal_the_manifest_and_ddeath(
    database_url: str, mqtt_url: str, tmp_path: Path
) -> None:
    group = unique("g")
    simulated = FleetSimulator(fleet(mqtt_url, unique("plant"), group))
    async with (
        simulated as manifest,
        collector(database_url, device_configs(manifest), tmp_path),
        api_client(database_url) as (client, _),
    ):
        headers = bearer(await add_key(database_url, Role.AUDITOR))
        params = {"window": "1h", "include_simulated": "true"}
        expected = truth(manifest)

        async def counts() -> dict[str, Any]:
            response = await client.get("/v1/counts", params=params, headers=headers)
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

        body, _ = await until(counts, lambda b: {k: b[k] for k in expected} == expected, 20)
        assert {k: body[k] for k in expected} == expected

        response = await client.get("/v1/devices", params={**params, "limit": 100}, headers=headers)
        items = {d["key"]: d for d in response.json()["items"]}
        assert sorted(items) == sorted(d.id for d in manifest.devices)
        for device in manifest.devices:
            item = items[device.id]
            assert (item["device_type"], item["industry"], item["protocol"]) == (
                device.type, device.industry, "mqtt",
            )  # fmt: skip
            assert item["simulated"] and item["connected"] and item["status"] == "online"
            detail = await client.get(f"/v1/devices/{item['id']}", params=params, headers=headers)
            points = {
                p["key"]: (p["data_type"], p["unit"], p["writable"])
                for p in detail.json()["points"]
            }
            assert points == {p.key: (p.data_type, p.unit, p.writable) for p in device.points}

        # A DDEATH takes the device offline now; its edge node and siblings stay online.
        mqtt = simulated.simulators["mqtt"]
        assert isinstance(mqtt, MqttFleetSimulator) and mqtt.simulator is not None
        mqtt.simulator.edge_node(group, "hall-1").publish_device_death("rx-2")

        async def offline() -> list[str]:
            response = await client.get(
                "/v1/devices", params={**params, "status": "offline"}, headers=headers
            )
            return [d["key"] for d in response.json()["items"]]

        keys, _ = await until(offline, lambda k: k == ["rx-2"], 10)
        assert keys == ["rx-2"]
        response = await client.get(f"/v1/devices/{items['rx-2']['id']}", headers=headers)
        assert response.json()["status"] == "offline"


async def test_data_resumes_after_a_10_s_broker_outage_without_a_collector_restart(
    database_url: str, tmp_path: Path
) -> None:
    broker = ThrowawayMosquitto()
    broker.start()
    try:
        served = fleet(broker.url, "plant", unique("g"))
        async with (
            FleetSimulator(served) as manifest,
            collector(database_url, device_configs(manifest), tmp_path) as service,
        ):
            everyone = {d.id for d in manifest.devices}

            async def latest() -> dict[str, datetime]:
                rows = await asyncio.to_thread(query, database_url, SAMPLES_BY_DEVICE)
                return {key: last for key, _, last in rows}

            seen, _ = await until(latest, lambda s: set(s) == everyone, 20)
            assert set(seen) == everyone
            await asyncio.to_thread(broker.stop)
            await asyncio.sleep(10)
            await asyncio.to_thread(broker.start)  # same port
            restarted = datetime.now(UTC)
            resumed, took = await until(
                latest, lambda s: all(s[k] > restarted for k in everyone), 12
            )
            late = sorted(k for k in everyone if resumed[k] <= restarted)
            assert not late, f"no data since the restart from {late} after {took:.1f} s"
            assert took <= 10, f"data resumed only after {took:.1f} s"
            (adapter,) = service.adapters
            assert adapter.rejections.get("handoff_full", 0) == 0  # type: ignore[attr-defined]
    finally:
        broker.remove()
