"""Request and response models of the programme, evaluation and declaration endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import Out, WindowOut
from criteria import Declaration, Evaluation, MetricsSnapshot, Rule, RuleResult, RuleSet, Verdict
from criteria.describe import describe
from criteria.evidence import EVIDENCE_FORMAT
from criteria.snapshot import DeclaredValue


class TierOut(Out):
    """One tier of a programme and the rules that apply to it."""

    id: str
    name: str
    name_en: str
    clauses: list[str]
    rules: list[str] = Field(description="Ids of the rules of this tier, in document order.")


class RuleOut(Out):
    """One requirement: clause, original text, gloss, source and how it is checked."""

    id: str
    tiers: list[str]
    clause: str
    text: str = Field(description="The document's sentence, verbatim.")
    gloss: str
    source: str = Field(description="measured, registry or declared.")
    metrics: list[str]
    requirement: str | None = Field(description="The check in one line; null: qualitative.")
    check: dict[str, Any] | None = Field(description="The check tree as in the rule set YAML.")
    notes: str | None

    @classmethod
    def of(cls, rule: Rule) -> RuleOut:
        """Describe a rule."""
        return cls(
            id=rule.id,
            tiers=list(rule.tiers),
            clause=rule.clause,
            text=rule.text,
            gloss=rule.gloss,
            source=rule.source,
            metrics=list(rule.metrics),
            requirement=describe(rule.check) if rule.check is not None else None,
            check=(
                rule.model_dump(mode="json", by_alias=True, exclude_none=True)["check"]
                if rule.check is not None
                else None
            ),
            notes=rule.notes,
        )


class ProgrammeOut(Out):
    """A programme: its document, tiers and every rule."""

    id: str
    title: str
    title_en: str
    issuer: str
    year: int
    source_sha256: str
    tiers: list[TierOut]
    rules: list[RuleOut]

    @classmethod
    def of(cls, ruleset: RuleSet) -> ProgrammeOut:
        """Describe a rule set."""
        p = ruleset.programme
        return cls(
            id=p.id,
            title=p.title,
            title_en=p.title_en,
            issuer=p.issuer,
            year=p.year,
            source_sha256=p.source_sha256,
            tiers=[
                TierOut(
                    id=t.id,
                    name=t.name,
                    name_en=t.name_en,
                    clauses=list(t.clauses),
                    rules=[r.id for r in ruleset.rules_for(t.id)],
                )
                for t in ruleset.tiers
            ],
            rules=[RuleOut.of(r) for r in ruleset.rules],
        )


class FigureLinkOut(Out):
    """One figure a rule reads and the relative URL of the list behind it."""

    metric: str
    url: str


class RuleVerdictOut(RuleResult):
    """A rule's verdict with the lists behind the figures it reads."""

    drilldown: str | None = Field(
        default=None,
        description="Relative URL of the list behind the rule's (first) figure "
        "(/v1/drilldowns/...), with the window and the rule's filters applied; null for "
        "declared rules and figures without a list.",
    )
    drilldowns: tuple[FigureLinkOut, ...] = Field(
        default=(), description="Every figure the rule reads that has a list, with its URL."
    )


class LinkedEvaluation(Evaluation):
    """An evaluation whose rule verdicts link to their drill-downs."""

    results: tuple[RuleVerdictOut, ...]

    @classmethod
    def of(cls, evaluation: Evaluation, links: dict[str, list[FigureLinkOut]]) -> LinkedEvaluation:
        """Attach each rule's drill-down URLs (rules missing from links get none)."""
        data = evaluation.model_dump()
        results = []
        for r in evaluation.results:
            found = links.get(r.rule, [])
            results.append(
                RuleVerdictOut(
                    **r.model_dump(),
                    drilldown=found[0].url if found else None,
                    drilldowns=tuple(found),
                )
            )
        data["results"] = results
        return cls(**data)


class EvaluationOut(Out):
    """A tier's verdicts over a window, with the snapshot and declarations they came from.

    Save the whole answer: ``tally evaluate --snapshot FILE`` re-evaluates it offline.
    """

    format: str = Field(EVIDENCE_FORMAT, description="Readable by `tally evaluate --snapshot`.")
    programme: str
    tier: str
    verdict: Verdict
    window: WindowOut
    include_simulated: bool
    simulated_devices_excluded: int = Field(
        description="Simulated devices connected in the window and left out (0 when included)."
    )
    software_version: str
    generated_at: datetime
    evaluation: LinkedEvaluation
    snapshot: MetricsSnapshot
    declarations: list[Declaration] = Field(description="The declarations in force, as read.")


class DeclarationIn(BaseModel):
    """A new version of a declaration: a fact telemetry cannot show, with its evidence.

    Without rule, clause or metric the key names the target: a rule id (e.g.
    ``jx-architecture``) or a declared figure (e.g. ``staff``).
    """

    model_config = ConfigDict(extra="forbid")

    value: DeclaredValue = Field(
        True, description="true/false for a clause, a number, a list of names, or a map."
    )
    evidence_ref: str = Field(
        min_length=1, max_length=2000, description="Where an auditor finds the evidence."
    )
    program: str | None = Field(None, description="Limit to one programme, e.g. jiangxi-2022.")
    tier: str | None = Field(None, description="Limit to one tier (id or name) of that programme.")
    rule: str | None = None
    clause: str | None = None
    metric: str | None = Field(None, description="A declared figure, e.g. staff.")
    not_applicable: bool = Field(False, description="The clause does not apply (declared rules).")
    note: str | None = Field(None, max_length=2000)


class DeclarationOut(Out):
    """One stored version of a declaration."""

    id: int
    key: str | None
    version: int | None
    current: bool = Field(description="True for the version in force.")
    program: str | None
    tier: str | None
    rule: str | None
    clause: str | None
    metric: str | None
    value: Any
    not_applicable: bool
    evidence_ref: str
    declared_by: str
    declared_at: datetime
    note: str | None
    superseded_at: datetime | None
    superseded_by: int | None
