"""`tally evaluate`: re-evaluate a saved snapshot offline, without the database."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import criteria
from adapters.base import utcnow
from collector import __version__
from collector.commands.criteria_io import (
    CommandError,
    add_output_options,
    add_programme_options,
    check_programme,
    run_guarded,
    write_output,
)
from criteria import Evaluation
from criteria.describe import OP_SYMBOL, number
from criteria.evidence import EvidenceError, read_evidence
from criteria.report import FORMATS, build_report, render


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Register `evaluate`."""
    parser = sub.add_parser(
        "evaluate",
        help="re-evaluate a saved snapshot offline (no database)",
        description=(
            "Evaluate a programme tier against a saved snapshot and its declarations: the "
            "file written by `tally snapshot`, a JSON report, or the API's evaluation answer. "
            "The verdicts are those the collector computed from the same inputs."
        ),
    )
    parser.add_argument("--snapshot", type=Path, required=True, help="saved snapshot (JSON)")
    add_programme_options(parser)
    add_output_options(parser, ["text", *FORMATS], "text")
    parser.set_defaults(handler=run_evaluate)


def verdict_table(evaluation: Evaluation) -> str:
    """Return one line per rule: clause, rule, source, verdict, measured against threshold."""
    lines = [
        f"{evaluation.programme_title} ({evaluation.programme}) — {evaluation.tier_name} "
        f"({evaluation.tier})",
        f"window {evaluation.window_start.isoformat()} .. {evaluation.window_end.isoformat()}; "
        f"simulated devices {'INCLUDED' if evaluation.include_simulated else 'excluded'}",
        f"verdict: {evaluation.verdict}",
        "",
        f"{'CLAUSE':<14}{'RULE':<42}{'SOURCE':<10}{'VERDICT':<23}MEASURED",
    ]
    for r in evaluation.results:
        figures = ""
        if r.op is not None:
            unit = f" {r.unit}" if r.unit else ""
            figures = (
                f"{number(r.measured)} {OP_SYMBOL.get(r.op, r.op)} {number(r.threshold)}{unit}"
            )
        lines.append(f"{r.clause:<14}{r.rule:<42}{r.source:<10}{r.verdict:<23}{figures}")
    lines += [f"warning: {w}" for w in evaluation.warnings]
    return "\n".join(lines) + "\n"


def _evaluate(args: argparse.Namespace) -> int:
    ruleset, tier = check_programme(args.program, args.tier)
    path: Path = args.snapshot
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc}") from None
    try:
        saved = read_evidence(text, str(path))
    except EvidenceError as exc:
        raise CommandError(str(exc)) from None
    evaluation = criteria.evaluate(ruleset, saved.snapshot, saved.declarations, tier.id)
    if args.format == "text":
        write_output(verdict_table(evaluation), args.output)
        return 0
    report = build_report(
        evaluation,
        saved.snapshot,
        saved.declarations,
        software_version=__version__,
        generated_at=utcnow(),
    )
    write_output(render(report, args.format, args.lang), args.output)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    """Print or write the verdicts; exit 1 with a message when the file is unusable."""
    return run_guarded("evaluate", _evaluate, args)
