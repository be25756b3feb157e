"""The probe schedule over the demo fleet: managed devices and types = the writable ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.config import parse_config
from collector.control.outcome import SCHEDULE, Kind, Outcome
from collector.service import CollectorService
from simulators.fleet import device_configs, load_fleet
from simulators.runner import DEMO_FLEET, FleetSimulator
from tests.collector.control.controltest import audit_entries, managed, ops, until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


async def test_the_probe_schedule_manages_exactly_the_writable_devices(
    database_url: str, tmp_path: Path
) -> None:
    config = parse_config(
        {
            "version": 1,
            "data_dir": str(tmp_path),
            "store": {"dsn": database_url},
            "pipeline": {"batch_age": 0.2},
            "control": {"probe": {"enabled": True, "interval": 3600, "exclude": ["c36-meter-*"]}},
        },
        "<test>",
        environ={},
    )
    async with FleetSimulator(load_fleet(DEMO_FLEET)) as manifest:
        writable = [d for d in manifest.devices if any(p.writable for p in d.points)]
        assert 0 < len(writable) < len(manifest.devices)  # meters have no writable point
        expected = (len(writable), len({d.type for d in writable}))
        async with CollectorService(config, device_configs(manifest)) as collector:

            async def all_managed() -> bool:
                return await managed(database_url) == expected

            try:
                await until(all_managed, "every writable device to be managed by the probe")
            except AssertionError as exc:
                seen = [(o.device, o.outcome.value, o.detail) for o in await ops(database_url)]
                raise AssertionError(f"{exc}; recorded: {seen}") from None
            assert await collector.probe.probe_due() == []  # each device once per interval
            assert collector.probe.passes >= 1
            assert await managed(database_url) == expected
    recorded = await ops(database_url)
    assert len(recorded) == len(writable)
    assert {o.device for o in recorded} == {d.id for d in writable}
    assert all(o.kind is Kind.PROBE and o.requested_by == SCHEDULE for o in recorded)
    assert all(o.outcome is Outcome.VERIFIED for o in recorded), [o.detail for o in recorded]
    assert all(o.requested_value == o.value_before for o in recorded)  # nothing changed
    audited = [e for e in await audit_entries(database_url) if e[1] == "control.probe"]
    assert len(audited) == len(writable)
