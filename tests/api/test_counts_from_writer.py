"""The read side against rows written by the real store writer (not hand-built rollups)."""

from datetime import timedelta

import pytest

from adapters.base import DeviceEvent, DeviceEventKind, DeviceInfo, PointInfo, Quality, Sample
from api.auth import Role
from collector.batch import Batch
from collector.store.writer import SampleWriter
from tests.api.apitest import add_key, api_client, bearer, utc

pytestmark = pytest.mark.integration

T0 = utc(2024, 7, 1, 8, 0)


def _device(key: str, industry: str, simulated: bool = False) -> DeviceInfo:
    return DeviceInfo(
        key=key,
        protocol="modbus",
        endpoint=f"127.0.0.1:502/{key}",
        device_type="pump",
        industry=industry,
        simulated=simulated,
        points=(PointInfo("flow", "40001", "float32"), PointInfo("run", "00001", "bool")),
    )


async def test_counts_and_drill_down_agree_with_what_the_writer_stored(database_url: str) -> None:
    fleet = [
        _device("good", "C26"),
        _device("bad-only", "C26"),
        _device("imported-only", "C26"),
        _device("sim", "C26", simulated=True),
    ]
    records: list[DeviceEvent | Sample] = [
        DeviceEvent(DeviceEventKind.REGISTERED, d.key, T0, info=d) for d in fleet
    ]
    records.append(DeviceEvent(DeviceEventKind.ONLINE, "good", T0))
    for minute in range(0, 120, 10):  # two hours of samples
        ts = T0 + timedelta(minutes=minute)
        records += [
            Sample("good", "flow", ts, 1.5 + minute),
            Sample("good", "run", ts, True, quality=Quality.BAD),
            Sample("bad-only", "flow", ts, 0.0, quality=Quality.BAD),
            Sample("imported-only", "flow", ts, 2.0, live=False),
            Sample("sim", "flow", ts, 3.0),
        ]
    async with SampleWriter(database_url) as writer:
        await writer.write(Batch(tuple(records)))

    key = await add_key(database_url, Role.AUDITOR)
    window = {"start": "2024-07-01T00:00:00Z", "end": "2024-07-02T00:00:00Z"}
    async with api_client(database_url) as (client, _):
        counts = (await client.get("/v1/counts", params=window, headers=bearer(key))).json()
        with_sim = (
            await client.get(
                "/v1/counts", params={**window, "include_simulated": "true"}, headers=bearer(key)
            )
        ).json()
        listing = (await client.get("/v1/devices", params=window, headers=bearer(key))).json()
        later = (
            await client.get(
                "/v1/counts",
                params={"start": "2024-07-01T10:00:00Z", "end": "2024-07-01T11:00:00Z"},
                headers=bearer(key),
            )
        ).json()
    assert (counts["connected_devices"], counts["points"], counts["process_points"]) == (1, 1, 1)
    assert counts["simulated_devices_excluded"] == 1 and counts["online_now"] == 1
    assert (with_sim["connected_devices"], with_sim["points"]) == (2, 2)
    assert later["connected_devices"] == 0  # the samples stopped at 09:50
    devices = {d["key"]: d for d in listing["items"]}
    assert set(devices) == {"good", "bad-only", "imported-only"}
    good = devices["good"]
    assert (good["connected"], good["samples"], good["good_samples"]) == (True, 24, 12)
    assert good["first_sample"] == "2024-07-01T08:00:00Z"
    assert good["last_good_sample"] == "2024-07-01T09:50:00Z"
    assert (devices["bad-only"]["connected"], devices["bad-only"]["samples"]) == (False, 12)
    imported = devices["imported-only"]
    assert (imported["connected"], imported["samples"], imported["imported_samples"]) == (
        False,
        0,
        12,
    )
