"""`tally run -c FILE` as a real process: collector and API on a real configuration."""

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from psycopg import AsyncConnection

from api.auth import Role, create_key
from collector.embedded.ports import free_port
from simulators.fleet import device_configs, load_fleet
from simulators.runner import DEMO_FLEET, FleetSimulator

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.integration
@pytest.mark.timeout(120)
async def test_run_collects_serves_and_stops_on_sigterm(database_url: str, tmp_path: Path) -> None:
    async with FleetSimulator(load_fleet(DEMO_FLEET)) as manifest:
        port = free_port()
        config = {
            "version": 1,
            "site": "test-site",
            "data_dir": str(tmp_path / "data"),
            "store": {"dsn": database_url},
            "api": {"host": "127.0.0.1", "port": port},
            "pipeline": {"batch_age": 0.2},
            "logging": {"format": "json"},
            "devices": [
                d.model_dump(mode="json", exclude_defaults=True) | {"protocol": "modbus"}
                for d in device_configs(manifest)
            ],
        }
        path = tmp_path / "tally.yaml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "collector.cli", "run", "-c", str(path),
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert f"API listening on http://127.0.0.1:{port}" in line.decode()
            async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
                key, _ = await create_key(conn, Role.AUDITOR, "test")
            headers = {"Authorization": f"Bearer {key.token}"}
            params = {"include_simulated": "true", "window": "1h"}
            deadline = time.monotonic() + 30
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as c:
                while True:
                    counts = (await c.get("/v1/counts", params=params)).json()
                    if counts["connected_devices"] == len(manifest.devices):
                        break
                    assert time.monotonic() < deadline, counts
                    await asyncio.sleep(0.5)
                metrics = (await c.get("/metrics")).text
            assert 'tally_adapter_connected{endpoint="tcp://127.0.0.1:' in metrics
            assert "tally_adapter_request_seconds_count" in metrics
            assert "tally_samples_stored_total" in metrics
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, err.decode()[-2000:]
        assert b"pipeline stopped" in err
