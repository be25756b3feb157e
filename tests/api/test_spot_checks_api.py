"""POST/GET /v1/spot-checks against the demo fleet, live over loopback, with real PostgreSQL."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from psycopg import AsyncConnection

from api.app import create_app
from api.auth import Role
from api.settings import Settings
from api.spot_check_schemas import SpotCheckOut
from collector.cli import main
from collector.config import parse_config
from collector.service import CollectorService
from collector.spotcheck.selection import candidates_digest, select
from collector.store import spot_checks
from simulators.fleet import Manifest, device_configs, load_fleet
from simulators.modbus.simulator import ModbusFleetSimulator
from simulators.runner import DEMO_FLEET, FleetSimulator
from tests.api.apitest import api_client, bearer, role_keys, running
from tests.collector.control.controltest import audit_entries, until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SIMULATED: dict[str, Any] = {"window": "24h", "include_simulated": True}


@dataclass
class Rig:
    client: httpx.AsyncClient
    keys: dict[Role, str]
    manifest: Manifest
    fleet: FleetSimulator
    dsn: str
    data_dir: Path

    async def post(self, body: dict[str, Any], role: Role | None = Role.AUDITOR) -> httpx.Response:
        headers = bearer(self.keys[role]) if role is not None else {}
        return await self.client.post("/v1/spot-checks", json=body, headers=headers)

    async def check(self, **body: Any) -> dict[str, Any]:
        response = await self.post({**SIMULATED, **body})
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def get(self, path: str, **params: Any) -> Any:
        headers = bearer(self.keys[Role.AUDITOR])
        response = await self.client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    @property
    def keys_of_fleet(self) -> list[str]:
        return [d.id for d in self.manifest.devices]


async def _all_connected(rig: Rig) -> bool:
    counts = await rig.get("/v1/counts", **SIMULATED)
    return bool(counts["connected_devices"] == len(rig.manifest.devices))


@pytest.fixture
async def rig(database_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    config = parse_config(
        {
            "version": 1,
            "data_dir": str(tmp_path),
            "store": {"dsn": database_url},
            "pipeline": {"batch_age": 0.2},
            "control": {"timeout": 2.0},
        },
        "<test>",
        environ={},
    )
    fleet = FleetSimulator(load_fleet(DEMO_FLEET))
    manifest = await fleet.start()
    try:
        async with CollectorService(config, device_configs(manifest)) as collector:
            keys = await role_keys(database_url)
            settings = Settings(
                dsn=database_url, pool_min_size=1, pool_max_size=4, data_dir=tmp_path
            )
            app = create_app(settings, control=collector.control)
            async with running(app) as client:
                found = Rig(client, keys, manifest, fleet, database_url, tmp_path)
                await until(lambda: _all_connected(found), "every demo device to be connected")
                yield found
    finally:
        await fleet.stop()


def _picked(result: dict[str, Any]) -> list[str]:
    return [d["device"] for d in result["devices"]]


async def test_a_spot_check_reads_the_seed_picked_devices_live_and_is_stored(rig: Rig) -> None:
    result = await rig.check(sample_size=8, seed="auditor: 2026-12-04 #1")
    fleet = rig.keys_of_fleet
    expected = select("auditor: 2026-12-04 #1", fleet, 8)
    assert _picked(result) == [p.key for p in expected.picks]  # recomputable by anyone
    assert [d["rank"] for d in result["devices"]] == [p.rank for p in expected.picks]
    assert result["candidates"] == len(fleet)
    assert result["candidates_digest"] == candidates_digest(fleet)
    assert (result["picked"], result["answered"], result["unanswered"]) == (8, 8, 0)
    for device in result["devices"]:
        assert device["answered"] is True, device
        assert device["quality"] == "good" and device["value"] is not None, device
        assert device["point"] and device["error"] is None and device["latency_ms"] > 0
    auditor = rig.keys[Role.AUDITOR].split("_")[1]
    assert result["requested_by"] == f"api-key:{auditor}"
    assert result["window"]["spec"] == "24h" and result["include_simulated"] is True

    # Read back, alone and in the listing; the stored dict is plain JSON.
    assert await rig.get(f"/v1/spot-checks/{result['id']}") == result
    async with await AsyncConnection.connect(rig.dsn, autocommit=True) as conn:
        stored = await spot_checks.spot_check(conn, result["id"])
    assert stored is not None and json.loads(json.dumps(stored)) == stored
    assert SpotCheckOut.model_validate(stored).model_dump(mode="json") == result
    listing = await rig.get("/v1/spot-checks")
    assert listing["total"] == 1 and listing["items"][0]["id"] == result["id"]
    assert "devices" not in listing["items"][0]

    # Audited in the hash chain, and the readings were recorded as samples.
    audited = [e for e in await audit_entries(rig.dsn) if e[1] == "spot_check"]
    assert len(audited) == 1
    actor, _, subject, payload = audited[0]
    assert (actor, subject) == (result["requested_by"], f"spot-check/{result['id']}")
    assert payload["picked"] == _picked(result) and payload["unanswered"] == []
    assert payload["candidates_digest"] == result["candidates_digest"]

    async def recorded() -> bool:
        async with await AsyncConnection.connect(rig.dsn, autocommit=True) as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM sample s JOIN point p ON p.id = s.point_id"
                " JOIN device d ON d.id = p.device_id WHERE d.key = %s AND p.key = %s"
                " AND s.ts = %s",
                (result["devices"][0]["device"], result["devices"][0]["point"],
                 result["devices"][0]["value_ts"]),
            )  # fmt: skip
            row = await cur.fetchone()
        return bool(row and row[0] == 1)

    await until(recorded, "the spot check's reading to be stored as a sample")
    async with await AsyncConnection.connect(rig.dsn, autocommit=True) as conn:
        cur = await conn.execute("SELECT count(*) FROM control_op")
        assert await cur.fetchone() == (0,)  # a live read is not a control operation


async def test_the_same_seed_picks_the_same_devices_and_another_seed_others(rig: Rig) -> None:
    first = await rig.check(sample_size=5, seed="alpha")
    again = await rig.check(sample_size=5, seed="alpha")
    other = await rig.check(sample_size=5, seed="beta")
    assert _picked(first) == _picked(again)
    assert set(_picked(first)) != set(_picked(other))
    assert first["candidates_digest"] == again["candidates_digest"] == other["candidates_digest"]
    assert first["id"] != again["id"]
    page = await rig.get("/v1/spot-checks", limit=2)
    assert [i["seed"] for i in page["items"]] == ["beta", "alpha"] and page["next_offset"] == 2
    rest = await rig.get("/v1/spot-checks", limit=2, offset=2)
    assert len(rest["items"]) == 1 and rest["next_offset"] is None


async def test_a_stopped_server_leaves_exactly_its_sampled_devices_unanswered(rig: Rig) -> None:
    modbus = cast(ModbusFleetSimulator, rig.fleet.simulators["modbus"])
    server = modbus.server_of(rig.manifest.devices[0].id)
    on_server = {d.id for d in rig.manifest.devices if d.endpoint == server.endpoint}
    assert 0 < len(on_server) < len(rig.manifest.devices)
    seed = "stopped-server"
    sampled = {p.key for p in select(seed, rig.keys_of_fleet, 15).picks}
    assert 0 < len(sampled & on_server) < len(sampled)  # the seed samples both sides
    await server.stop()

    result = await rig.check(sample_size=15, seed=seed)
    assert set(_picked(result)) == sampled
    unanswered = {d["device"] for d in result["devices"] if not d["answered"]}
    assert unanswered == sampled & on_server
    for device in result["devices"]:
        if device["answered"]:
            assert device["quality"] == "good" and device["value"] is not None, device
        else:
            assert device["error"] and device["value"] is None and device["quality"] is None
    assert result["unanswered"] == len(sampled & on_server)

    everything = await rig.check(sample_size=1000, seed="all of them")
    assert everything["picked"] == len(rig.manifest.devices)  # more than the candidates: all
    assert {d["device"] for d in everything["devices"] if not d["answered"]} == on_server


async def test_bad_requests_and_roles(rig: Rig) -> None:
    for size in (0, -3):
        response = await rig.post({"sample_size": size, "seed": "s"})
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["body", "sample_size"]
    for body in ({"seed": "s"}, {"sample_size": 1}, {"sample_size": 1, "seed": ""},
                 {"sample_size": 1, "seed": "s", "window": "a month"},
                 {"sample_size": 1, "seed": "s", "extra": 1}):  # fmt: skip
        response = await rig.post(body)
        assert response.status_code == 422, (body, response.text)
    no_key = await rig.post({"sample_size": 1, "seed": "s"}, role=None)
    assert no_key.status_code == 401
    assert (await rig.client.get("/v1/spot-checks")).status_code == 401
    assert (await rig.get("/v1/spot-checks"))["total"] == 0  # nothing was recorded
    missing = await rig.client.get("/v1/spot-checks/999", headers=bearer(rig.keys[Role.AUDITOR]))
    assert missing.status_code == 404

    # Simulated devices are candidates only when asked for.
    real_only = await rig.post({"sample_size": 3, "seed": "s", "window": "24h"})
    assert real_only.status_code == 201
    assert (real_only.json()["candidates"], real_only.json()["picked"]) == (0, 0)
    operator = await rig.post({**SIMULATED, "sample_size": 1, "seed": "s"}, role=Role.OPERATOR)
    assert operator.status_code == 201 and operator.json()["answered"] == 1


async def test_an_api_without_a_collector_says_where_to_send_spot_checks(database_url: str) -> None:
    keys = await role_keys(database_url)
    async with api_client(database_url) as (client, _):
        response = await client.post(
            "/v1/spot-checks",
            json={"sample_size": 1, "seed": "s"},
            headers=bearer(keys[Role.AUDITOR]),
        )
        assert response.status_code == 503
        assert "tally run" in response.json()["detail"]
        listing = await client.get("/v1/spot-checks", headers=bearer(keys[Role.AUDITOR]))
        assert listing.status_code == 200 and listing.json()["total"] == 0


async def test_a_device_that_answers_too_late_is_unanswered_and_the_others_are_read(
    rig: Rig,
) -> None:
    modbus = cast(ModbusFleetSimulator, rig.fleet.simulators["modbus"])
    slow = rig.manifest.devices[0].id
    unit = modbus.unit(slow)
    for point in unit.points:
        unit.delay(point, 3.0, on="read")  # the adapter gives up after 1 s (modbus timeout)
    server = modbus.server_of(slow)
    elsewhere = {d.id for d in rig.manifest.devices if d.endpoint != server.endpoint}

    result = await rig.check(sample_size=1000, seed="slow")
    by_key = {d["device"]: d for d in result["devices"]}
    late = by_key[slow]
    assert late["answered"] is False and late["value"] is None, late
    assert "no response within 1 s" in late["error"], late["error"]
    assert 900 <= late["latency_ms"] < 2500  # bounded: the adapter's 1 s, control.timeout 2 s
    assert all(by_key[k]["answered"] for k in elsewhere), [
        (k, by_key[k]["error"]) for k in elsewhere if not by_key[k]["answered"]
    ]


async def test_a_spot_check_attached_to_a_report_is_signed_into_its_bundle(rig: Rig) -> None:
    result = await rig.check(sample_size=5, seed="attach me")
    headers = bearer(rig.keys[Role.AUDITOR])
    body = {"program": "jiangsu-2018", "tier": "enterprise", **SIMULATED}
    missing = await rig.client.post(
        "/v1/reports", json={**body, "spot_checks": [result["id"] + 1000]}, headers=headers
    )
    assert missing.status_code == 422 and "does not exist" in missing.text
    made = await rig.client.post(
        "/v1/reports", json={**body, "spot_checks": [result["id"]]}, headers=headers
    )
    assert made.status_code == 201, made.text
    bundle = await rig.client.get(made.json()["bundle_url"], headers=headers)
    assert bundle.status_code == 200
    with zipfile.ZipFile(io.BytesIO(bundle.content)) as archive:
        files = {i.filename: archive.read(i) for i in archive.infolist()}
    name = f"spot-checks/{result['id']}.json"
    assert json.loads(files[name]) == result  # the stored spot check, as GET answers it
    assert name in json.loads(files["manifest.json"])["files"]
    path = rig.data_dir / "bundle.zip"
    path.write_bytes(bundle.content)
    assert main(["verify", str(path)]) == 0
    files[name] = files[name].replace(b'"answered"', b'"answerde"', 1)
    tampered = io.BytesIO()
    with zipfile.ZipFile(tampered, "w") as archive:
        for member, data in files.items():
            archive.writestr(member, data)
    path.write_bytes(tampered.getvalue())
    assert main(["verify", str(path)]) != 0
