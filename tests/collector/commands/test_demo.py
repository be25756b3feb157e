import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collector.embedded.ports import free_port

ROOT = Path(__file__).resolve().parents[3]


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_demo_counts_the_fleet_and_ctrl_c_leaves_nothing_running() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "collector.cli", "demo", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 90
    try:
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C stops everything" in line or time.monotonic() > deadline:
                break
        output = "".join(lines)
        assert "counts agree with the fleet's ground truth" in output, output
        took = re.search(r"first collection counted after ([\d.]+) s", output)
        assert took is not None and float(took[1]) < 30, output
        assert f"http://127.0.0.1:{port}" in output
        assert f"dashboard http://127.0.0.1:{port}/ " in output
        base = re.search(r"throwaway PostgreSQL in (\S+) ", output)
        assert base is not None, output
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, output + rest
    assert "stopped: simulators, collector and API" in rest
    assert not Path(base[1]).exists()
    assert _processes_mentioning(base[1]) == []
