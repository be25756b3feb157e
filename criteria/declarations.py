"""Finding and reading the operator's declarations for a rule."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from criteria.metrics import Area, Reading, exact
from criteria.model import Rule, Threshold
from criteria.snapshot import Declaration

_HOW = "with an evidence reference"


@dataclass(frozen=True, slots=True)
class Declarations:
    """The declarations that apply to one programme tier, with lookups by rule and figure."""

    all: tuple[Declaration, ...]

    @classmethod
    def for_tier(
        cls, declarations: Iterable[Declaration], programme: str, tier: tuple[str, ...]
    ) -> Declarations:
        """Keep the declarations whose programme and tier (id or name) match, or are unset."""
        return cls(
            tuple(
                d
                for d in declarations
                if (d.program is None or d.program == programme)
                and (d.tier is None or d.tier in tier)
            )
        )

    def for_rule(self, rule: Rule) -> Declaration | None:
        """Return the latest declaration about a rule as a whole (by rule id or clause)."""
        return _latest(
            d for d in self.all if d.metric is None and (d.rule or d.clause) and _targets(d, rule)
        )

    def figure(self, rule: Rule, name: str) -> Declaration | None:
        """Return the latest declaration of a figure (``staff``) that a rule reads."""
        return _latest(d for d in self.all if d.metric == name and _targets(d, rule))


def _targets(declaration: Declaration, rule: Rule) -> bool:
    return (declaration.rule is None or declaration.rule == rule.id) and (
        declaration.clause is None or declaration.clause == rule.clause
    )


def _latest(found: Iterable[Declaration]) -> Declaration | None:
    # Latest declared_at wins; among equal times the later one in the input.
    best: Declaration | None = None
    for declaration in found:
        if best is None or declaration.declared_at >= best.declared_at:
            best = declaration
    return best


def missing(name: str) -> str:
    """Say what to declare when a figure is absent."""
    return f"no declaration of {name}; declare metric {name!r} {_HOW}"


def read_figure(
    declared: Declarations, rule: Rule, name: str, leaf: Threshold | None
) -> tuple[Reading, tuple[str, ...]]:
    """Read a declared figure as a number, reduced as the rule says; with its evidence."""
    declaration = declared.figure(rule, name)
    if declaration is None:
        return Reading(None, missing(name)), ()
    evidence = (declaration.evidence_ref,)
    if declaration.not_applicable:
        return Reading(None, f"{name} declared not applicable", applicable=False), evidence
    value = declaration.value
    reduce = leaf.reduce if leaf is not None else "number"
    if reduce == "count":
        return _count(name, value, leaf.choices if leaf is not None else None), evidence
    if reduce == "min":
        if isinstance(value, dict) and value:
            listing = ", ".join(f"{k}: {v}" for k, v in sorted(value.items()))
            return Reading(exact(min(value.values())), f"declared per item: {listing}"), evidence
        return Reading(None, f"declared {name} must map items to numbers, got {value!r}"), evidence
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Reading(exact(value), f"declared {name} = {value}"), evidence
    return Reading(None, f"declared {name} must be a number, got {value!r}"), evidence


def _count(name: str, value: object, choices: tuple[str, ...] | None) -> Reading:
    if isinstance(value, int) and not isinstance(value, bool):
        return Reading(Fraction(value), f"declared count {value}")
    if not isinstance(value, list):
        return Reading(None, f"declared {name} must be a list or a count, got {value!r}")
    items = sorted({str(v) for v in value})
    detail = ""
    if choices is not None:
        ignored = [i for i in items if i not in choices]
        items = [i for i in items if i in choices]
        if ignored:
            detail = f"; not counted (not one of {', '.join(choices)}): {', '.join(ignored)}"
    return Reading(Fraction(len(items)), f"declared: {', '.join(items) or 'none'}{detail}")


def strings(value: object) -> list[str] | None:
    """Return a declared string or list of strings as a list, or None if it is neither."""
    if isinstance(value, str) and value.strip():
        return [value.strip()]
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return [v.strip() for v in value]
    return None


def served_area(declared: Declarations, rule: Rule) -> tuple[Area | None, tuple[str, ...], str]:
    """Return the declared served area (region codes, else park names), its evidence, or why not."""
    region = declared.figure(rule, "served_region")
    if region is not None and not region.not_applicable:
        codes = strings(region.value)
        if codes is None or not all(c.isdigit() and len(c) == 6 for c in codes):
            problem = (
                f"declared served_region must be GB/T 2260 six-digit codes, got {region.value!r}"
            )
            return None, (region.evidence_ref,), problem
        return Area(regions=tuple(codes)), (region.evidence_ref,), ""
    parks = declared.figure(rule, "served_parks")
    if parks is not None and not parks.not_applicable:
        names = strings(parks.value)
        if names is None:
            problem = f"declared served_parks must be park names, got {parks.value!r}"
            return None, (parks.evidence_ref,), problem
        return Area(parks=tuple(names)), (parks.evidence_ref,), ""
    problem = (
        "the served area is not declared: declare served_region (GB/T 2260 codes) or "
        f"served_parks (park names) {_HOW}, so devices inside it can be counted"
    )
    return None, (), problem
