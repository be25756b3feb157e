"""`tally sim` and `python -m simulators.modbus` serve a fleet and write its manifest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from adapters.modbus.client import ModbusClient
from adapters.modbus.config import Table
from adapters.modbus.endpoint import Endpoint
from simulators.fleet import read_manifest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

FLEET = {
    "version": 1,
    "name": "cli-test",
    "protocols": {"modbus": {"servers": [{"name": "a"}, {"name": "b", "framing": "rtu+tcp"}]}},
    "devices": [
        {
            "id": f"dev-{n}",
            "protocol": "modbus",
            "type": "meter",
            "industry": "C26",
            "server": "a" if n < 3 else "b",
            "device_id": n,
            "points": [{"key": "v", "address": 0, "signal": {"value": 40 + n}}],
        }
        for n in range(1, 5)
    ],
}


def serve(command: list[str], fleet: Path, manifest: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*command, "--fleet", str(fleet), "--manifest", str(manifest)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def wait_for_file(path: Path, process: subprocess.Popen[str], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            _, err = process.communicate()
            raise AssertionError(f"simulator exited with {process.returncode}: {err}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"no manifest after {timeout} s")
        time.sleep(0.05)


async def read_value(endpoint: str, unit: int) -> list[int] | list[bool]:
    client = ModbusClient(Endpoint.parse(endpoint), timeout=2.0)
    await client.connect()
    try:
        return await client.read(unit, Table.HOLDING, 0, 1)
    finally:
        client.close()


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "simulators.modbus"],
        [sys.executable, "-m", "collector.cli", "sim"],
    ],
    ids=["python -m simulators.modbus", "tally sim"],
)
async def test_serves_the_fleet_and_writes_the_manifest(command: list[str], tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(yaml.safe_dump(FLEET), encoding="utf-8")
    manifest_path = tmp_path / "manifest.json"
    process = serve(command, fleet, manifest_path)
    try:
        wait_for_file(manifest_path, process)
        manifest = read_manifest(manifest_path)
        assert [d.id for d in manifest.devices] == ["dev-1", "dev-2", "dev-3", "dev-4"]
        assert manifest.simulated is True
        assert all(
            d.simulated and d.identity["vendor"].endswith("(simulated)") for d in manifest.devices
        )
        assert len({d.endpoint for d in manifest.devices}) == 2
        for device in manifest.devices:
            unit = int(device.settings["device_id"])
            assert await read_value(device.endpoint, unit) == [40 + unit]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            out, err = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0, err
    assert "serving 4 simulated device(s)" in out


def test_a_bad_fleet_exits_2_with_the_bad_key(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(yaml.safe_dump({**FLEET, "devices": [{"id": "x", "protocol": "modbus"}]}))
    result = subprocess.run(
        [sys.executable, "-m", "simulators.modbus", "--fleet", str(fleet)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "devices[0] (x).points: Field required" in result.stderr
