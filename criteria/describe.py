"""Plain-text descriptions of rule checks and their results, for listings and reports."""

from __future__ import annotations

from criteria.evaluation import CheckResult, Number, RuleResult
from criteria.model import AllOf, AnyOf, Check, Threshold

OP_SYMBOL = {">=": "≥", ">": ">", "<=": "≤"}


def number(value: Number | None) -> str:
    """Format a figure: integers as such, fractions with up to 6 significant decimals."""
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.6g}"
    return f"{int(value):,}"


def _figure(leaf: Threshold) -> str:
    name = leaf.metric
    narrowing: list[str] = []
    if leaf.industry_class is not None:
        narrowing.append(leaf.industry_class)
    if leaf.cross_platform:
        narrowing.append("cross-platform")
    if leaf.scope is not None:
        narrowing.append("in the served area")
    if leaf.kinds:
        narrowing.append("+".join(leaf.kinds))
    if narrowing:
        name += f" ({', '.join(narrowing)})"
    if leaf.reduce == "count":
        name = f"count of {name}" + (f" among {'/'.join(leaf.choices)}" if leaf.choices else "")
    elif leaf.reduce == "min":
        name = f"lowest of {name}"
    if leaf.share_of is not None:
        name = f"{name} as a share of {leaf.share_of}"
    return name


def describe(check: Check) -> str:
    """Describe a check tree in one line: ``connected_devices (discrete) ≥ 500 台 or …``."""
    label = f"{check.label}: " if check.label else ""
    if isinstance(check, Threshold):
        if check.op is None or check.value is None:
            return f"{label}{check.metric} is declared"
        unit = f" {check.unit}" if check.unit else ""
        return f"{label}{_figure(check)} {OP_SYMBOL[check.op]} {number(check.value)}{unit}"
    if isinstance(check, AllOf):
        return label + " and ".join(f"({describe(part)})" for part in check.all_of)
    if isinstance(check, AnyOf):
        return label + " or ".join(f"({describe(part)})" for part in check.any_of)
    spec = check.groups
    noun = "industries" if spec.by == "industry" else "domains"
    within = f" among {spec.within}" if spec.within else ""
    return f"{label}≥ {spec.at_least} {noun}{within}, each: {describe(spec.each)}"


def describe_result(check: CheckResult) -> str:
    """Describe one evaluated node: ``connected_devices 0 ≥ 500 台 (margin -500)``."""
    label = f"{check.label}: " if check.label else ""
    if check.kind in ("threshold", "groups") and check.op is not None:
        unit = f" {check.unit}" if check.unit else ""
        what = check.metric or "groups"
        margin = f" (margin {number(check.margin)})" if check.margin is not None else ""
        return (
            f"{label}{what} {number(check.measured)} {OP_SYMBOL.get(check.op, check.op)} "
            f"{number(check.threshold)}{unit}{margin}"
        )
    if check.kind == "presence":
        return f"{label}{check.metric} declared"
    if check.kind == "declaration":
        return f"{label}declaration"
    return label + check.kind


def explain(result: RuleResult) -> list[str]:
    """List why a rule got its verdict: each evaluated node with its figures and detail."""
    lines: list[str] = []

    def walk(node: CheckResult, depth: int) -> None:
        text = f"{describe_result(node)} → {node.verdict}"
        if node.detail:
            text += f": {node.detail}"
        if node.evidence:
            text += f" [evidence: {', '.join(node.evidence)}]"
        lines.append("  " * depth + text)
        for child in node.children:
            walk(child, depth + 1)
        for outcome in node.groups:
            name = f" {outcome.name}" if outcome.name else ""
            lines.append("  " * (depth + 1) + f"{outcome.group}{name} → {outcome.verdict}")
            walk(outcome.result, depth + 2)

    walk(result.check, 0)
    return lines
