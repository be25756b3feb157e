"""`tally report`: evaluate a programme tier over a window from the store and render it."""

from __future__ import annotations

import argparse
from typing import Any

import criteria
from adapters.base import utcnow
from collector import __version__
from collector.commands.criteria_io import (
    add_output_options,
    add_programme_options,
    add_store_options,
    check_programme,
    evidence_from_store,
    run_guarded,
    write_output,
)
from criteria.report import FORMATS, build_report, render


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Register `report`."""
    parser = sub.add_parser(
        "report",
        help="evaluate a programme tier over a window and write a report (json, md, html)",
        description=(
            "Evaluate one tier of a programme from the store's rollups and the declarations in "
            "force, and render the verdicts with the clause text, the window, the definitions "
            "and the software version. The JSON report embeds the snapshot and declarations, "
            "so `tally evaluate --snapshot REPORT.json` re-checks it offline."
        ),
    )
    add_programme_options(parser)
    add_store_options(parser)
    add_output_options(parser, list(FORMATS), "md")
    parser.set_defaults(handler=run_report)


def _report(args: argparse.Namespace) -> int:
    ruleset, tier = check_programme(args.program, args.tier)
    evidence = evidence_from_store(args)
    evaluation = criteria.evaluate(ruleset, evidence.snapshot, evidence.declarations, tier.id)
    report = build_report(
        evaluation,
        evidence.snapshot,
        evidence.declarations,
        software_version=__version__,
        generated_at=utcnow(),
    )
    write_output(render(report, args.format, args.lang), args.output)
    return 0


def run_report(args: argparse.Namespace) -> int:
    """Write the report; exit 1 with a message when the store or options are unusable."""
    return run_guarded("report", _report, args)
