"""`tally snapshot`: save the metrics snapshot and declarations of a window for offline checks."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from adapters.base import utcnow
from collector import __version__
from collector.commands.criteria_io import (
    add_store_options,
    evidence_from_store,
    run_guarded,
    write_output,
)
from criteria.evidence import EvidenceFile


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Register `snapshot`."""
    parser = sub.add_parser(
        "snapshot",
        help="save a window's metrics snapshot and declarations as JSON (for `tally evaluate`)",
    )
    add_store_options(parser)
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    parser.set_defaults(handler=run_snapshot)


def _snapshot(args: argparse.Namespace) -> int:
    evidence = evidence_from_store(args)
    saved = EvidenceFile(
        software_version=__version__,
        saved_at=utcnow(),
        snapshot=evidence.snapshot,
        declarations=evidence.declarations,
    )
    write_output(saved.model_dump_json(indent=2) + "\n", args.output)
    return 0


def run_snapshot(args: argparse.Namespace) -> int:
    """Write the snapshot file; exit 1 with a message when the store is unusable."""
    return run_guarded("snapshot", _snapshot, args)
