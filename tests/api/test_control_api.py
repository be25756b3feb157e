"""POST /v1/devices/{id}/commands, GET /v1/control-ops and managed counts, on real devices."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.auth import Role
from api.settings import Settings
from tests.api.apitest import bearer, role_keys, running
from tests.collector.control.controltest import ModbusRig, audit_entries, modbus_rig

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@dataclass
class Api:
    client: httpx.AsyncClient
    rig: ModbusRig
    keys: dict[Role, str]
    ids: dict[str, int]

    async def command(self, device: str, body: dict[str, Any], role: Role = Role.OPERATOR) -> Any:
        return await self.client.post(
            f"/v1/devices/{self.ids[device]}/commands", json=body, headers=bearer(self.keys[role])
        )

    async def get(self, path: str, role: Role = Role.AUDITOR, **params: Any) -> Any:
        response = await self.client.get(path, params=params, headers=bearer(self.keys[role]))
        assert response.status_code == 200, response.text
        return response.json()


def _settings(dsn: str) -> Settings:
    return Settings(dsn=dsn, pool_min_size=1, pool_max_size=2)


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    async for rig in modbus_rig(database_url, tmp_path, {"rate_limit": {"operations": 50}}):
        keys = await role_keys(database_url)
        app = create_app(_settings(database_url), control=rig.control)
        async with running(app) as client:
            devices = {}
            for key in ("pump-1", "pump-2"):
                target = await rig.control.find_device(key=key)
                devices[key] = target.id
            yield Api(client, rig, keys, devices)


async def test_an_operator_writes_and_gets_the_recorded_operation(api: Api) -> None:
    response = await api.command("pump-1", {"point": "speed_setpoint", "value": 1500})
    assert response.status_code == 200, response.text
    op = response.json()
    assert op["outcome"] == "verified" and op["verified"] is True
    assert (op["value_before"], op["requested_value"], op["read_back"]) == (1480, 1500, 1500)
    assert op["device"] == "pump-1" and op["device_id"] == api.ids["pump-1"]
    assert op["kind"] == "write" and op["point"] == "speed_setpoint"
    operator_prefix = api.keys[Role.OPERATOR].split("_")[1]
    assert op["requested_by"] == f"api-key:{operator_prefix}"
    assert api.rig.unit("pump-1").value("speed_setpoint") == 1500

    probe = await api.command("pump-2", {"probe": True}, role=Role.ADMIN)
    assert probe.status_code == 200, probe.text
    assert probe.json()["kind"] == "probe" and probe.json()["outcome"] == "verified"

    refused = await api.command("pump-1", {"point": "flow", "value": 1.0})
    assert refused.status_code == 200
    assert refused.json()["outcome"] == "not_allowed"


async def test_an_auditor_cannot_command_and_nothing_is_sent(api: Api) -> None:
    sent = api.rig.requests
    response = await api.command("pump-1", {"point": "speed_setpoint", "value": 1}, Role.AUDITOR)
    assert response.status_code == 403
    assert "operator role" in response.json()["detail"]
    no_key = await api.client.post(
        f"/v1/devices/{api.ids['pump-1']}/commands", json={"probe": True}
    )
    assert no_key.status_code == 401
    assert api.rig.requests == sent
    assert (await api.get("/v1/control-ops"))["total"] == 0


async def test_bad_commands_and_unknown_devices(api: Api) -> None:
    for body in ({"point": "speed_setpoint"}, {"value": 3}, {"probe": True, "value": 3}, {}):
        response = await api.command("pump-1", body)
        assert response.status_code == 422, (body, response.text)
    unknown = await api.client.post(
        "/v1/devices/999999/commands",
        json={"probe": True},
        headers=bearer(api.keys[Role.OPERATOR]),
    )
    assert unknown.status_code == 404
    assert "no registered device with id 999999" in unknown.json()["detail"]


async def test_control_ops_list_filters_and_pages_and_every_op_is_audited(api: Api) -> None:
    await api.command("pump-1", {"point": "speed_setpoint", "value": 1500})
    await api.command("pump-1", {"point": "speed_setpoint", "value": 99999})  # above 3000
    await api.command("pump-2", {"probe": True})
    everything = await api.get("/v1/control-ops")
    assert everything["total"] == 3
    assert [o["outcome"] for o in everything["items"]] == ["verified", "not_allowed", "verified"]
    page = await api.get("/v1/control-ops", limit=2)
    assert (len(page["items"]), page["next_offset"]) == (2, 2)
    last = await api.get("/v1/control-ops", limit=2, offset=2)
    assert (len(last["items"]), last["next_offset"]) == (1, None)
    verified = await api.get("/v1/control-ops", outcome="verified", device="pump-1")
    assert [o["point"] for o in verified["items"]] == ["speed_setpoint"]
    probes = await api.get("/v1/control-ops", kind="probe", device_id=api.ids["pump-2"])
    assert probes["total"] == 1
    later = await api.get("/v1/control-ops", start="2999-01-01T00:00:00Z")
    assert later["total"] == 0

    audited = [e for e in await audit_entries(api.rig.dsn) if e[1].startswith("control.")]
    assert sorted(e[3]["control_op"] for e in audited) == sorted(
        o["id"] for o in everything["items"]
    )


async def test_counts_show_managed_devices_and_types(api: Api) -> None:
    before = await api.get("/v1/counts", include_simulated="true", window="1h")
    assert (before["managed_devices"], before["managed_device_types"]) == (0, 0)
    assert "managed_devices" in before["definitions"]
    await api.command("pump-1", {"point": "speed_setpoint", "value": 1500})
    api.rig.unit("pump-2").refuse_writes("running")
    rejected = await api.command("pump-2", {"point": "running", "value": False})
    assert rejected.json()["outcome"] == "rejected"
    counts = await api.get("/v1/counts", include_simulated="true", group_by="type", window="1h")
    assert (counts["managed_devices"], counts["managed_device_types"]) == (1, 1)
    [pumps] = counts["groups"]
    assert (pumps["key"], pumps["managed_devices"], pumps["managed_device_types"]) == (
        "pump", 1, 1,
    )  # fmt: skip
    simulated_excluded = await api.get("/v1/counts", window="1h")
    assert simulated_excluded["managed_devices"] == 0  # the simulators' devices never count


async def test_an_api_without_a_collector_answers_503(database_url: str) -> None:
    keys = await role_keys(database_url)
    async with running(create_app(_settings(database_url))) as client:
        response = await client.post(
            "/v1/devices/1/commands", json={"probe": True}, headers=bearer(keys[Role.OPERATOR])
        )
        assert response.status_code == 503
        assert "control requires the collector" in response.json()["detail"]
        listing = await client.get("/v1/control-ops", headers=bearer(keys[Role.AUDITOR]))
        assert listing.status_code == 200
