"""What the evaluator returns: per-rule verdicts and the tier verdict."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from criteria.metrics import Source

Verdict = Literal["pass", "fail", "insufficient_evidence", "not_applicable"]
VERDICTS: tuple[Verdict, ...] = ("pass", "fail", "insufficient_evidence", "not_applicable")
Number = int | float

EVALUATION_SCHEMA_VERSION: Literal[1] = 1


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GroupOutcome(_Out):
    """How one group (an industry or a domain) fared against ``each``."""

    group: str
    name: str | None = Field(default=None, description="the industry's name, when known")
    verdict: Verdict
    result: CheckResult


class CheckResult(_Out):
    """The outcome of one node of a rule's check tree."""

    kind: Literal["threshold", "presence", "all", "any", "groups", "declaration"]
    label: str | None = None
    verdict: Verdict
    metric: str | None = None
    source: Source | None = None
    op: str | None = None
    threshold: Number | None = None
    measured: Number | None = None
    margin: Number | None = Field(
        default=None,
        description="how far the measured value is on the passing side (negative: short)",
    )
    unit: str | None = None
    detail: str | None = None
    evidence: tuple[str, ...] = ()
    children: tuple[CheckResult, ...] = ()
    groups: tuple[GroupOutcome, ...] = ()


class RuleResult(_Out):
    """The verdict on one rule, with the figures behind it."""

    rule: str
    programme: str
    clause: str
    text: str
    gloss: str
    source: Source
    metrics: tuple[str, ...]
    verdict: Verdict
    op: str | None = None
    threshold: Number | None = None
    measured: Number | None = None
    margin: Number | None = None
    unit: str | None = None
    alternatives: tuple[CheckResult, ...] = Field(
        default=(), description="when the rule is 'A or B': every alternative's result"
    )
    check: CheckResult
    notes: str | None = None


class Evaluation(_Out):
    """The verdicts of one programme tier over one snapshot."""

    schema_version: Literal[1] = EVALUATION_SCHEMA_VERSION
    programme: str
    programme_title: str
    tier: str
    tier_name: str
    window_start: AwareDatetime
    window_end: AwareDatetime
    include_simulated: bool
    snapshot_schema_version: int
    definitions: dict[str, str] = Field(description="the snapshot's definitions in force")
    conventions: dict[str, str] = Field(description="how the evaluator reads the documents")
    verdict: Verdict
    counts: dict[Verdict, int]
    by_source: dict[Source, Verdict]
    results: tuple[RuleResult, ...]
    warnings: tuple[str, ...] = ()

    def result(self, rule_id: str) -> RuleResult:
        """Return the result of one rule."""
        for result in self.results:
            if result.rule == rule_id:
                return result
        raise KeyError(f"no result for rule {rule_id!r}")


def combine_all(verdicts: Iterable[Verdict]) -> Verdict:
    """Combine verdicts that must all hold: any fail fails, then any gap is insufficient."""
    seen = [v for v in verdicts if v != "not_applicable"]
    if not seen:
        return "not_applicable"
    if "fail" in seen:
        return "fail"
    if "insufficient_evidence" in seen:
        return "insufficient_evidence"
    return "pass"


def combine_any(verdicts: Iterable[Verdict]) -> Verdict:
    """Combine alternatives: any pass passes, then any gap is insufficient, else fail."""
    seen = [v for v in verdicts if v != "not_applicable"]
    if not seen:
        return "not_applicable"
    if "pass" in seen:
        return "pass"
    if "insufficient_evidence" in seen:
        return "insufficient_evidence"
    return "fail"


GroupOutcome.model_rebuild()
