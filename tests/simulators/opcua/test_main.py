"""`python -m simulators.opcua` as a process."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collector.embedded.ports import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[3]


def test_runs_as_a_module_and_stops_on_sigint() -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulators.opcua",
            "--port",
            str(port),
            "--nodeid-offset",
            "random",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        line = ""
        while "serving" not in line and time.monotonic() < deadline:
            line = process.stdout.readline()
        assert f"opc.tcp://127.0.0.1:{port}/" in line
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
