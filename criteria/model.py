"""Rule sets as data: pydantic models of a programme's rules, loaded from YAML."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    Tag,
    ValidationError,
    model_validator,
)

from criteria import metrics
from criteria.industries import IndustryKind
from criteria.metrics import CATALOGUE, DECLARED_PREFIX, SOURCE_RANK, Filters, GroupBy, Source
from criteria.snapshot import AppKind

Comparator = Literal[">=", ">", "<="]
RULESET_SCHEMA_VERSION = 1

_SLUG = r"^[a-z0-9]+(-[a-z0-9]+)*$"
SERVED_REGION = "declared.served_region"
SERVED_PARKS = "declared.served_parks"
_DECLARED = r"^declared\.[a-z][a-z0-9_]*$"


class RuleSetError(ValueError):
    """A rule set file that cannot be read or does not validate."""


class UnknownTierError(KeyError):
    """A tier that the programme does not have."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown tier"


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    label: str | None = Field(default=None, description="short name shown in results")


class Threshold(_Node):
    """Compare one metric with a threshold, or (declared figures only) require it to be declared.

    ``share_of`` turns the metric into a percentage of another metric.
    ``implied`` marks a threshold that the text states in words rather than digits
    (具有 -> at least 1, 前十强 -> rank at most 10).
    """

    metric: str
    op: Comparator | None = None
    value: NonNegativeInt | NonNegativeFloat | None = None
    unit: str | None = None
    implied: bool = False
    industry_class: IndustryKind | None = None
    cross_platform: bool = False
    kinds: tuple[AppKind, ...] | None = None
    scope: Literal["served_area"] | None = None
    share_of: str | None = None
    reduce: Literal["number", "count", "min"] = "number"
    choices: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _valid(self) -> Threshold:
        _known_metric(self.metric)
        if (self.op is None) != (self.value is None):
            raise ValueError("op and value go together: give both, or neither for a presence check")
        declared = metrics.is_declared(self.metric)
        if declared:
            used = [f for f in ("industry_class", "kinds", "scope") if getattr(self, f) is not None]
            if self.cross_platform:
                used.append("cross_platform")
            if used:
                raise ValueError(f"declared figures take no filters, got {', '.join(used)}")
        else:
            if self.op is None:
                raise ValueError(
                    f"{self.metric} needs op and value; "
                    "only declared figures can be checked for presence"
                )
            if self.reduce != "number" or self.choices is not None:
                raise ValueError("reduce and choices apply to declared figures only")
            self._check_filters()
        if self.choices is not None and self.reduce != "count":
            raise ValueError("choices go with reduce: count")
        if self.share_of is not None:
            _known_metric(self.share_of)
            if self.unit != "%":
                raise ValueError("a share is a percentage: set unit to '%'")
        return self

    def _check_filters(self) -> None:
        spec = CATALOGUE[self.metric]
        given: dict[str, bool] = {
            "industry_class": self.industry_class is not None,
            "cross_platform": self.cross_platform,
            "kinds": self.kinds is not None,
            "scope": self.scope is not None,
        }
        for name, used in given.items():
            if used and name not in spec.filters:
                allowed = ", ".join(sorted(spec.filters)) or "none"
                raise ValueError(f"{self.metric} does not take {name} (it takes: {allowed})")
        if "kinds" in spec.filters and not self.kinds:
            raise ValueError(f"{self.metric} needs kinds: the app kinds whose calls count")

    @property
    def declared(self) -> bool:
        """Tell whether this reads a declared figure."""
        return metrics.is_declared(self.metric)

    @property
    def declared_name(self) -> str:
        """Return the declared figure's name (``staff`` for ``declared.staff``)."""
        return self.metric.removeprefix(DECLARED_PREFIX)

    def filters(self) -> Filters:
        """Return the filters to read the metric with."""
        return Filters(self.industry_class, self.cross_platform, self.kinds)


def _known_metric(name: str) -> None:
    if metrics.is_declared(name):
        if not re.match(_DECLARED, name):
            raise ValueError(f"declared figure {name!r} must look like declared.some_name")
        return
    if name not in CATALOGUE:
        known = ", ".join(sorted(CATALOGUE))
        raise ValueError(f"unknown metric {name!r}; known metrics: {known}, or declared.<name>")


class AllOf(_Node):
    """Pass when every part passes (e.g. categories AND count)."""

    all_of: tuple[Check, ...] = Field(alias="all", min_length=2)


class AnyOf(_Node):
    """Pass when any alternative passes; results show every alternative."""

    any_of: tuple[Check, ...] = Field(alias="any", min_length=2)


class GroupSpec(BaseModel):
    """Count the groups (industries, domains) that each meet ``each``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    by: GroupBy
    at_least: PositiveInt
    each: Check
    within: str | None = Field(
        default=None,
        pattern=_DECLARED,
        description="only these groups count: a declared figure listing them (e.g. its industry)",
    )

    @model_validator(mode="after")
    def _groupable(self) -> GroupSpec:
        for leaf in leaves(self.each):
            if isinstance(leaf, Groups):
                raise ValueError("groups cannot be nested")
            if leaf.declared:
                raise ValueError("declared figures cannot be read per group")
            if self.by not in CATALOGUE[leaf.metric].groups:
                raise ValueError(f"{leaf.metric} cannot be grouped by {self.by}")
            if leaf.scope is not None or leaf.share_of is not None:
                raise ValueError("scope and share_of cannot be used per group")
            if leaf.industry_class is not None and self.by != "industry":
                raise ValueError("industry_class needs groups by industry")
        return self


class Groups(_Node):
    """K groups that each meet N: ``覆盖不少于 K 个行业，每个行业不少于 N``."""

    groups: GroupSpec


def _check_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        for key, tag in (
            ("all", "{all}"),
            ("any", "{any}"),
            ("groups", "{groups}"),
            ("metric", "{metric}"),
        ):
            if key in value:
                return tag
        return None
    if isinstance(value, AllOf):
        return "{all}"
    if isinstance(value, AnyOf):
        return "{any}"
    if isinstance(value, Groups):
        return "{groups}"
    if isinstance(value, Threshold):
        return "{metric}"
    return None


Check = Annotated[
    Annotated[Threshold, Tag("{metric}")]
    | Annotated[AllOf, Tag("{all}")]
    | Annotated[AnyOf, Tag("{any}")]
    | Annotated[Groups, Tag("{groups}")],
    Discriminator(
        _check_tag,
        custom_error_type="invalid_check",
        custom_error_message="a check needs one of the keys: metric, all, any, groups",
    ),
]

AllOf.model_rebuild()
AnyOf.model_rebuild()
GroupSpec.model_rebuild()
Groups.model_rebuild()


def leaves(check: Check) -> Iterator[Threshold | Groups]:
    """Yield the thresholds of a check tree, and groups nodes without descending into them."""
    if isinstance(check, Threshold | Groups):
        yield check
    elif isinstance(check, AllOf):
        for part in check.all_of:
            yield from leaves(part)
    else:
        for part in check.any_of:
            yield from leaves(part)


def thresholds(check: Check) -> Iterator[Threshold]:
    """Yield every threshold in a check tree, including those inside groups."""
    for leaf in leaves(check):
        if isinstance(leaf, Groups):
            yield from thresholds(leaf.groups.each)
        else:
            yield leaf


class Rule(BaseModel):
    """One requirement of a programme, with its source text and how it is checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_SLUG)
    tiers: tuple[str, ...] = Field(min_length=1)
    clause: str = Field(min_length=1, description="clause path in the document, e.g. 二.(一).1")
    text: str = Field(min_length=1, description="the original sentence, verbatim")
    gloss: str = Field(min_length=1, description="English gloss")
    source: Source
    check: Check | None = Field(
        default=None, description="none: a qualitative requirement, declared"
    )
    notes: str | None = Field(
        default=None, description="reading chosen and the alternative reading"
    )

    @model_validator(mode="after")
    def _source(self) -> Rule:
        if self.check is None:
            if self.source != "declared":
                raise ValueError(
                    f"rule {self.id}: a rule without a check is declared; set source: declared"
                )
            return self
        sources: set[Source] = set()
        for leaf in thresholds(self.check):
            sources.add(metrics.source_of(leaf.metric))
            if leaf.share_of is not None:
                sources.add(metrics.source_of(leaf.share_of))
        primary = max(sources, key=lambda s: SOURCE_RANK[s])
        if self.source != primary:
            raise ValueError(
                f"rule {self.id}: source is {self.source} but it reads {primary} figures; "
                f"set source: {primary}"
            )
        return self

    @property
    def metrics(self) -> tuple[str, ...]:
        """Return the metrics and declared figures this rule reads, in order of appearance."""
        if self.check is None:
            return ()
        names: list[str] = []
        for node in leaves(self.check):
            found: list[str | None] = []
            if isinstance(node, Groups):
                found.append(node.groups.within)
                for leaf in thresholds(node.groups.each):
                    found += [leaf.metric, leaf.share_of]
            else:
                found += [node.metric, node.share_of]
                if node.scope == "served_area":
                    found += [SERVED_REGION, SERVED_PARKS]
            for name in found:
                if name is not None and name not in names:
                    names.append(name)
        return tuple(names)


class Programme(BaseModel):
    """The document a rule set encodes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_SLUG)
    title: str
    title_en: str
    issuer: str
    year: int
    source_text: str = Field(description="the document's text, relative to the rule set file")
    source_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    seed: str | None = Field(default=None, description="the seed file it was taken from")
    scope: str | None = Field(default=None, description="which parts of the document are encoded")


class Tier(BaseModel):
    """One tier (category) of platform the programme recognises."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_SLUG)
    name: str
    name_en: str
    clauses: tuple[str, ...] = Field(
        default=(), description="sections of the document for this tier"
    )


class RuleSet(BaseModel):
    """A programme's tiers and rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1]
    programme: Programme
    tiers: tuple[Tier, ...] = Field(min_length=1)
    rules: tuple[Rule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> RuleSet:
        tier_ids = [t.id for t in self.tiers]
        names = [t.name for t in self.tiers]
        if len(set(tier_ids)) != len(tier_ids) or len(set(names)) != len(names):
            raise ValueError("tier ids and names must be unique")
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id} is used twice")
            seen.add(rule.id)
            unknown = [t for t in rule.tiers if t not in tier_ids]
            if unknown:
                raise ValueError(f"rule {rule.id}: unknown tiers {unknown}; tiers are {tier_ids}")
        for tier in self.tiers:
            if not self.rules_for(tier.id):
                raise ValueError(f"tier {tier.id} has no rules")
        return self

    def tier(self, key: str) -> Tier:
        """Return a tier by id or Chinese name; raises UnknownTierError listing the valid ones."""
        for tier in self.tiers:
            if key in (tier.id, tier.name):
                return tier
        valid = ", ".join(f"{t.id} ({t.name})" for t in self.tiers)
        raise UnknownTierError(f"programme {self.programme.id} has no tier {key!r}; tiers: {valid}")

    def rules_for(self, tier: str) -> tuple[Rule, ...]:
        """Return the rules that apply to a tier id, in document order."""
        return tuple(r for r in self.rules if tier in r.tiers)

    def rule(self, rule_id: str) -> Rule:
        """Return a rule by id."""
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(f"programme {self.programme.id} has no rule {rule_id!r}")


def _format_loc(loc: Sequence[int | str], data: Any) -> str:
    """Render an error location as a YAML key path, naming rules by id."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, str) and item.startswith("{"):
            continue  # discriminator tag, not a key
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node):
                node = node[item]
                if isinstance(node, dict) and "id" in node and parts and parts[-1] == "rules":
                    label = f"[{item}](id={node['id']})"
            else:
                node = None
            parts.append(label)
        else:
            node = node.get(item) if isinstance(node, dict) else None
            parts.append(item)
    text = ""
    for part in parts:
        text += part if part.startswith("[") or not text else f".{part}"
    return text or "(top level)"


def parse_ruleset(data: Any, origin: str) -> RuleSet:
    """Validate parsed YAML into a RuleSet; errors name the origin and key path."""
    try:
        return RuleSet.model_validate(data)
    except ValidationError as exc:
        lines = [f"{origin}: {len(exc.errors())} error(s) in rule set"]
        for error in exc.errors():
            lines.append(f"  {_format_loc(error['loc'], data)}: {error['msg']}")
        raise RuleSetError("\n".join(lines)) from exc


def load_ruleset_file(path: Path) -> RuleSet:
    """Read and validate one rule set file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleSetError(f"{path}: cannot read rule set: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise RuleSetError(f"{path}: not valid YAML{where}: {exc}") from exc
    if not isinstance(data, dict):
        raise RuleSetError(
            f"{path}: a rule set is a mapping with schema_version, programme, tiers, rules"
        )
    return parse_ruleset(data, str(path))
