"""The evaluation answer: verdicts, the snapshot and declarations, each rule linked to its list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

import criteria
from api import drilldown_links
from api.schemas import WindowOut
from api.schemas_criteria import EvaluationOut, FigureLinkOut, LinkedEvaluation
from api.settings import Settings
from api.window import Window
from collector import __version__
from collector.store.snapshot import Evidence, gather_in
from criteria import RuleSet


def evaluation_out(
    *,
    ruleset: RuleSet,
    tier: criteria.Tier,
    evaluation: criteria.Evaluation,
    evidence: Evidence,
    window: Window,
    include_simulated: bool,
    now: datetime,
) -> EvaluationOut:
    """Assemble the evaluation answer, each rule verdict linked to its drill-down."""
    lists = drilldown_links.by_rule(ruleset, tier, evidence.declarations, include_simulated)
    links = {
        rule: [
            FigureLinkOut(metric=f.metric, url=f.drilldown.url(window.start, window.end))
            for f in found
        ]
        for rule, found in lists.items()
    }
    excluded = evidence.snapshot.simulated_excluded
    return EvaluationOut(
        programme=ruleset.programme.id,
        tier=tier.id,
        verdict=evaluation.verdict,
        window=WindowOut.of(window),
        include_simulated=include_simulated,
        simulated_devices_excluded=excluded.connected_devices if excluded else 0,
        software_version=__version__,
        generated_at=now,
        evaluation=LinkedEvaluation.of(evaluation, links),
        snapshot=evidence.snapshot,
        declarations=list(evidence.declarations),
    )


async def evaluate_in(
    conn: AsyncConnection[Any],
    *,
    settings: Settings,
    ruleset: RuleSet,
    tier: criteria.Tier,
    window: Window,
    include_simulated: bool,
    now: datetime,
) -> tuple[EvaluationOut, Evidence]:
    """Read the evidence inside the caller's view (queries.snapshot) and evaluate the tier."""
    evidence = await gather_in(
        conn,
        window.start,
        window.end,
        include_simulated=include_simulated,
        collector=settings.site,
        timezone=settings.timezone,
        generated_at=now,
    )
    evaluation = criteria.evaluate(ruleset, evidence.snapshot, evidence.declarations, tier.id)
    out = evaluation_out(
        ruleset=ruleset,
        tier=tier,
        evaluation=evaluation,
        evidence=evidence,
        window=window,
        include_simulated=include_simulated,
        now=now,
    )
    return out, evidence
