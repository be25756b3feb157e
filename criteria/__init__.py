"""Programme criteria: rule sets as data and a pure evaluator."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from criteria.evaluation import CheckResult, Evaluation, GroupOutcome, RuleResult, Verdict
from criteria.evaluator import evaluate
from criteria.model import Rule, RuleSet, RuleSetError, Tier, UnknownTierError, load_ruleset_file
from criteria.snapshot import SCHEMA_VERSION, Declaration, MetricsSnapshot

__all__ = [
    "SCHEMA_VERSION",
    "CheckResult",
    "Declaration",
    "Evaluation",
    "GroupOutcome",
    "MetricsSnapshot",
    "Rule",
    "RuleResult",
    "RuleSet",
    "RuleSetError",
    "Tier",
    "UnknownTierError",
    "Verdict",
    "evaluate",
    "list_programs",
    "load_ruleset",
    "rules_dir",
]


def rules_dir() -> Path:
    """Return the directory holding the bundled rule sets."""
    return Path(str(resources.files("criteria").joinpath("rules")))


def list_programs() -> list[str]:
    """Return the ids of the bundled programmes, e.g. ``jiangsu-2018``."""
    return sorted(p.stem for p in rules_dir().glob("*.yaml"))


@cache
def load_ruleset(program: str) -> RuleSet:
    """Load a bundled programme's rule set by id; unknown ids list the valid ones."""
    if program not in list_programs():
        raise RuleSetError(
            f"no programme {program!r}; bundled programmes: {', '.join(list_programs())}"
        )
    ruleset = load_ruleset_file(rules_dir() / f"{program}.yaml")
    if ruleset.programme.id != program:
        raise RuleSetError(
            f"{program}.yaml: programme.id is {ruleset.programme.id!r}; it must match the file name"
        )
    return ruleset
