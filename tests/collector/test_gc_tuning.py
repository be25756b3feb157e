"""The collector's garbage-collector settings (process-wide, so checked in a child)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from collector.gc_tuning import YOUNG_THRESHOLD

ROOT = Path(__file__).resolve().parents[2]


def test_tune_gc_freezes_start_up_objects_and_raises_the_young_threshold() -> None:
    code = (
        "import gc, json; from collector.gc_tuning import tune_gc; tune_gc(); "
        "print(json.dumps([gc.get_threshold(), gc.get_freeze_count(), gc.isenabled()]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    threshold, frozen, enabled = json.loads(out.stdout)
    assert threshold[0] == YOUNG_THRESHOLD > 700
    assert frozen > 1000  # the modules imported so far
    assert enabled  # cycles are still collected
