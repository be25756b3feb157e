"""The pure evaluator: (rules, metrics snapshot, declarations, tier) -> verdicts.

Nothing here reads a clock or a database, and the only file it reads is the
bundled industry table: the same inputs always give the same ``Evaluation``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from criteria import industries, metrics
from criteria.declarations import Declarations, missing, read_figure, served_area, strings
from criteria.evaluation import (
    VERDICTS,
    CheckResult,
    Evaluation,
    GroupOutcome,
    Number,
    RuleResult,
    Verdict,
    combine_all,
    combine_any,
)
from criteria.metrics import Area, GroupBy, Reading, Source, exact
from criteria.model import AllOf, AnyOf, Check, Groups, Rule, RuleSet, Threshold, Tier, thresholds
from criteria.snapshot import Declaration, MetricsSnapshot

_HUNDRED = Fraction(100)

CONVENTIONS: dict[str, str] = {
    "comparators": (
        "不少于/不低于/达到/达…以上/…以上/在…以上/至少 N mean >= N; 超过 N means > N "
        "(Civil Code of the PRC, Art. 1259); 前 N 强 means rank <= N"
    ),
    "alternatives": "'A (离散行业) or B (流程行业)' passes when either passes; both are shown",
    "groups": (
        "'K industries, each N' counts GB/T 4754-2017 divisions (大类) that each meet N; "
        "finer codes roll up to their division"
    ),
    "industry_kinds": "discrete/process marks of criteria/industries.yaml (GB/T 4754-2017)",
    "discrete_devices": "the 离散行业 device alternative counts devices of discrete divisions only",
    "monthly_calls": (
        "average = calls in the full calendar months of the window / their number; "
        "'每月' without 平均 = every full month"
    ),
    "shares": "a share is 100 x figure / base, computed exactly; its base is named by the rule",
    "absent_figures": "a figure absent from the snapshot gives insufficient_evidence, never zero",
}


@dataclass(frozen=True, slots=True)
class _Context:
    ruleset: RuleSet
    tier: Tier
    snapshot: MetricsSnapshot
    declared: Declarations


def evaluate(
    rules: RuleSet,
    snapshot: MetricsSnapshot,
    declarations: Sequence[Declaration],
    tier: str,
) -> Evaluation:
    """Evaluate one tier of a programme against a snapshot and the operator's declarations."""
    tier_obj = rules.tier(tier)
    programme = rules.programme.id
    declared = Declarations.for_tier(declarations, programme, (tier_obj.id, tier_obj.name))
    ctx = _Context(rules, tier_obj, snapshot, declared)
    warnings = _warnings(ctx)
    results = tuple(_evaluate_rule(ctx, rule, warnings) for rule in rules.rules_for(tier_obj.id))

    counts: dict[Verdict, int] = {v: 0 for v in VERDICTS}
    for result in results:
        counts[result.verdict] += 1
    by_source: dict[Source, Verdict] = {}
    for source in ("measured", "registry", "declared"):
        of_source = [r.verdict for r in results if r.source == source]
        if of_source:
            by_source[source] = combine_all(of_source)

    return Evaluation(
        programme=programme,
        programme_title=rules.programme.title,
        tier=tier_obj.id,
        tier_name=tier_obj.name,
        window_start=snapshot.window_start,
        window_end=snapshot.window_end,
        include_simulated=snapshot.include_simulated,
        snapshot_schema_version=snapshot.schema_version,
        definitions=dict(snapshot.definitions),
        conventions=dict(CONVENTIONS),
        verdict=combine_all(r.verdict for r in results),
        counts=counts,
        by_source=by_source,
        results=results,
        warnings=tuple(warnings),
    )


def _warnings(ctx: _Context) -> list[str]:
    warnings: list[str] = []
    if ctx.snapshot.include_simulated:
        warnings.append(
            "simulated devices are included in this snapshot: the verdicts do not show eligibility"
        )
    excluded = ctx.snapshot.simulated_excluded
    if not ctx.snapshot.include_simulated and excluded is not None and excluded.connected_devices:
        warnings.append(
            f"{excluded.connected_devices} simulated devices connected in the window were "
            "excluded from every figure (simulated devices never count toward eligibility)"
        )
    ids = {r.id for r in ctx.ruleset.rules}
    for declaration in ctx.declared.all:
        if declaration.rule is not None and declaration.rule not in ids:
            warnings.append(
                f"declaration for rule {declaration.rule!r} ({declaration.evidence_ref}) "
                f"matches no rule of {ctx.ruleset.programme.id} and was ignored"
            )
    return warnings


# --- rules ----------------------------------------------------------------------


def _evaluate_rule(ctx: _Context, rule: Rule, warnings: list[str]) -> RuleResult:
    declaration = ctx.declared.for_rule(rule)
    if rule.check is None:
        check = _qualitative(rule, declaration)
    elif declaration is not None and declaration.not_applicable and rule.source == "declared":
        check = CheckResult(
            kind="declaration",
            verdict="not_applicable",
            source="declared",
            detail=f"declared not applicable by {declaration.declared_by}",
            evidence=(declaration.evidence_ref,),
        )
    else:
        if declaration is not None and declaration.not_applicable:
            warnings.append(
                f"rule {rule.id} reads {rule.source} figures; the declaration that it is not "
                f"applicable ({declaration.evidence_ref}) was ignored"
            )
        check = _check(ctx, rule, rule.check)

    top = check if check.kind in ("threshold", "presence", "groups") else None
    return RuleResult(
        rule=rule.id,
        programme=ctx.ruleset.programme.id,
        clause=rule.clause,
        text=rule.text,
        gloss=rule.gloss,
        source=rule.source,
        metrics=rule.metrics,
        verdict=check.verdict,
        op=top.op if top else None,
        threshold=top.threshold if top else None,
        measured=top.measured if top else None,
        margin=top.margin if top else None,
        unit=top.unit if top else None,
        alternatives=check.children if isinstance(rule.check, AnyOf) else (),
        check=check,
        notes=rule.notes,
    )


def _qualitative(rule: Rule, declaration: Declaration | None) -> CheckResult:
    base = CheckResult(kind="declaration", source="declared", verdict="insufficient_evidence")
    if declaration is None:
        detail = (
            f"no declaration for rule {rule.id} (clause {rule.clause}); "
            "declare it with an evidence reference"
        )
        return base.model_copy(update={"detail": detail})
    update: dict[str, object] = {"evidence": (declaration.evidence_ref,)}
    if declaration.not_applicable:
        update |= {
            "verdict": "not_applicable",
            "detail": f"declared not applicable by {declaration.declared_by}",
        }
    elif declaration.value is True:
        update |= {"verdict": "pass", "detail": f"declared met by {declaration.declared_by}"}
    elif declaration.value is False:
        update |= {"verdict": "fail", "detail": f"declared not met by {declaration.declared_by}"}
    else:
        update["detail"] = (
            f"the declaration's value must be true or false, got {declaration.value!r}"
        )
    return base.model_copy(update=update)


# --- check trees ----------------------------------------------------------------


def _check(
    ctx: _Context, rule: Rule, node: Check, group: str | None = None, by: GroupBy | None = None
) -> CheckResult:
    if isinstance(node, Threshold):
        return _threshold(ctx, rule, node, group, by)
    if isinstance(node, AllOf):
        parts = tuple(_check(ctx, rule, part, group, by) for part in node.all_of)
        return CheckResult(
            kind="all",
            label=node.label,
            verdict=combine_all(p.verdict for p in parts),
            children=parts,
        )
    if isinstance(node, AnyOf):
        parts = tuple(_check(ctx, rule, part, group, by) for part in node.any_of)
        return CheckResult(
            kind="any",
            label=node.label,
            verdict=combine_any(p.verdict for p in parts),
            children=parts,
        )
    return _groups(ctx, rule, node)


def _num(value: Fraction | None) -> Number | None:
    if value is None:
        return None
    if value.denominator == 1:
        return int(value)
    return round(float(value), 6)


def _compare(op: str, measured: Fraction, threshold: Fraction) -> tuple[bool, Fraction]:
    if op == ">=":
        return measured >= threshold, measured - threshold
    if op == ">":
        return measured > threshold, measured - threshold
    return measured <= threshold, threshold - measured


def _threshold(
    ctx: _Context, rule: Rule, leaf: Threshold, group: str | None, by: GroupBy | None
) -> CheckResult:
    base = CheckResult(
        kind="threshold" if leaf.op is not None else "presence",
        label=leaf.label,
        verdict="insufficient_evidence",
        metric=leaf.metric,
        source=metrics.source_of(leaf.metric),
        op=leaf.op,
        threshold=_num(exact(leaf.value)) if leaf.value is not None else None,
        unit=leaf.unit,
    )
    if leaf.op is None:
        return _presence(ctx, rule, leaf, base)

    reading, evidence = _read(ctx, rule, leaf.metric, leaf=leaf, group=group, by=by)
    details = [reading.detail] if reading.detail else []
    value = reading.value
    applicable = reading.applicable
    if leaf.share_of is not None and applicable and value is not None:
        denominator, more = _read(ctx, rule, leaf.share_of)
        evidence += more
        if denominator.detail:
            details.append(denominator.detail)
        applicable = denominator.applicable
        if denominator.value is None:
            value = None
        elif denominator.value == 0:
            value = None
            details.append(f"{leaf.share_of} is zero, so no share can be computed")
        else:
            details.append(f"{_num(value)} of {_num(denominator.value)}")
            value = value * _HUNDRED / denominator.value
    detail = "; ".join(details) or None

    if not applicable:
        return base.model_copy(
            update={"verdict": "not_applicable", "detail": detail, "evidence": evidence}
        )
    if value is None:
        return base.model_copy(update={"detail": detail, "evidence": evidence})
    assert leaf.value is not None
    passed, margin = _compare(leaf.op, value, exact(leaf.value))
    return base.model_copy(
        update={
            "verdict": "pass" if passed else "fail",
            "measured": _num(value),
            "margin": _num(margin),
            "detail": detail,
            "evidence": evidence,
        }
    )


def _read(
    ctx: _Context,
    rule: Rule,
    metric: str,
    *,
    leaf: Threshold | None = None,
    group: str | None = None,
    by: GroupBy | None = None,
) -> tuple[Reading, tuple[str, ...]]:
    """Read a snapshot metric or a declared figure; leaf None reads it unfiltered."""
    if metrics.is_declared(metric):
        name = metric.removeprefix(metrics.DECLARED_PREFIX)
        return read_figure(ctx.declared, rule, name, leaf)
    filters = leaf.filters() if leaf is not None else metrics.Filters()
    evidence: tuple[str, ...] = ()
    area: Area | None = None
    if leaf is not None and leaf.scope == "served_area":
        area, evidence, problem = served_area(ctx.declared, rule)
        if area is None:
            return Reading(None, problem), evidence
    return metrics.read(metric, filters, ctx.snapshot, group=group, by=by, area=area), evidence


def _presence(ctx: _Context, rule: Rule, leaf: Threshold, base: CheckResult) -> CheckResult:
    name = leaf.declared_name
    declaration = ctx.declared.figure(rule, name)
    if declaration is None:
        detail = missing(name)
        return base.model_copy(update={"detail": detail})
    evidence = (declaration.evidence_ref,)
    if declaration.not_applicable:
        return base.model_copy(
            update={
                "verdict": "not_applicable",
                "evidence": evidence,
                "detail": f"{name} not applicable",
            }
        )
    value = declaration.value
    present = value is not False and value not in ("", [], {})
    return base.model_copy(
        update={
            "verdict": "pass" if present else "fail",
            "evidence": evidence,
            "detail": f"declared {name}: {value!r}",
        }
    )


# --- groups -----------------------------------------------------------------------


def _group_name(key: str, by: GroupBy) -> str | None:
    if by != "industry":
        return None
    try:
        return industries.lookup(key).name
    except industries.UnknownIndustryError:
        return None


def _groups(ctx: _Context, rule: Rule, node: Groups) -> CheckResult:
    spec = node.groups
    noun = "industries" if spec.by == "industry" else "domains"
    base = CheckResult(
        kind="groups",
        label=node.label,
        verdict="insufficient_evidence",
        op=">=",
        threshold=spec.at_least,
        unit=noun,
    )
    keys: set[str] = set()
    missing: list[str] = []
    for leaf in thresholds(spec.each):
        found = metrics.group_keys(leaf.metric, leaf.filters(), ctx.snapshot, spec.by)
        if found is None:
            missing.append(f"{leaf.metric} by {spec.by}")
        else:
            keys |= found
    evidence: tuple[str, ...] = ()
    if spec.within is not None:
        name = spec.within.removeprefix(metrics.DECLARED_PREFIX)
        declaration = ctx.declared.figure(rule, name)
        if declaration is None:
            return base.model_copy(
                update={"detail": f"declare {name!r}: the {noun} this rule is limited to"}
            )
        evidence = (declaration.evidence_ref,)
        listed = strings(declaration.value)
        if listed is None:
            return base.model_copy(
                update={
                    "evidence": evidence,
                    "detail": f"declared {name} must name {noun}, got {declaration.value!r}",
                }
            )
        if spec.by == "industry":
            try:
                listed = [industries.division_code(code) for code in listed]
            except industries.UnknownIndustryError as exc:
                return base.model_copy(update={"evidence": evidence, "detail": str(exc)})
        keys = set(listed)

    outcomes = []
    for key in sorted(keys):
        result = _check(ctx, rule, spec.each, group=key, by=spec.by)
        outcomes.append(
            GroupOutcome(
                group=key, name=_group_name(key, spec.by), verdict=result.verdict, result=result
            )
        )
    passed = [o.group for o in outcomes if o.verdict == "pass"]
    pending = sum(1 for o in outcomes if o.verdict == "insufficient_evidence")
    if len(passed) >= spec.at_least:
        verdict: Verdict = "pass"
    elif missing or len(passed) + pending >= spec.at_least:
        verdict = "insufficient_evidence"
    else:
        verdict = "fail"
    details = [f"{len(passed)} {noun} qualify: {', '.join(passed) or 'none'}"]
    if pending:
        details.append(f"{pending} {noun} lack evidence")
    if missing:
        details.append(f"not in the snapshot: {', '.join(missing)}")
    for note in dict.fromkeys(
        metrics.simulated_note(leaf.metric, ctx.snapshot) for leaf in thresholds(spec.each)
    ):
        if note is not None:
            details.append(note)
    # Without full evidence the count is only a lower bound: report no measured value.
    known = verdict != "insufficient_evidence"
    return base.model_copy(
        update={
            "verdict": verdict,
            "measured": len(passed) if known else None,
            "margin": len(passed) - spec.at_least if known else None,
            "detail": "; ".join(details),
            "evidence": evidence,
            "groups": tuple(outcomes),
        }
    )
