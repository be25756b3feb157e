"""The bundled rule sets against their source documents.

These tests keep the rules from drifting from the text: every rule quotes the
document verbatim, every threshold it states is in its quote with the right
comparator, and every numeric threshold sentence of the document is covered by
a rule or listed below as excluded, with the reason.
"""

from __future__ import annotations

import hashlib
import re
from fractions import Fraction
from pathlib import Path

import pytest

import criteria
from criteria.model import AllOf, AnyOf, Groups, Rule, RuleSet, Threshold, leaves, thresholds

PROGRAMS = criteria.list_programs()
SHARED_SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"

EXPECTED_TIERS = {
    "jiangxi-2022": ["综合型", "行业型", "区域型", "企业级"],
    "jiangsu-2018": ["跨行业跨领域", "行业级", "企业级", "重点培育"],
}

# Numeric phrases of the documents that are deliberately not thresholds of any rule.
EXCLUDED: dict[tuple[str, str], str] = {
    ("jiangsu-2018", "企业能明确给出近三年工业互联网平台建设的发展思路"): (
        "近三年 here is the horizon of the development plan (js-key-plan, declared), "
        "not a figure to meet"
    ),
}

KEYWORDS = ("不少于", "不低于", "达到", "以上", "超过", "至少", "应为", "达")
NUMBER = re.compile(r"(\d+(?:\.\d+)?)\s*(万|亿)?")
CHINESE_NUMBER = re.compile(r"(近|前)([一二三四五六七八九十]+)(年|强)")
CHINESE_DIGITS = {
    "一": 1,
    "二": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
}
LIST_NUMBER = re.compile(r"^(\d+[、.．](?!\d)|\d+\.\d+(?=\D))")
CLAUSE = re.compile(
    r"^(正文\.)?[一二三四五六七八九十]+(\.\([一二三四五六七八九十]+\))?(\.\d+){0,2}$"
)


def norm(text: str) -> str:
    """Drop all whitespace: the documents break lines and space numbers inconsistently."""
    return re.sub(r"\s+", "", text)


def source_text(ruleset: RuleSet) -> str:
    return (criteria.rules_dir() / ruleset.programme.source_text).read_text(encoding="utf-8")


def to_number(digits: str, multiplier: str | None) -> Fraction:
    value = Fraction(digits)
    if multiplier == "万":
        value *= 10_000
    elif multiplier == "亿":
        value *= 100_000_000
    return value


def chinese_number(text: str) -> int:
    return CHINESE_DIGITS[text] if len(text) == 1 else 10 + CHINESE_DIGITS[text[1]]


def rule_values(rule: Rule) -> set[Fraction]:
    """Every threshold a rule states: leaf values and group counts."""
    if rule.check is None:
        return set()
    values: set[Fraction] = set()
    for leaf in leaves(rule.check):
        if isinstance(leaf, Groups):
            values.add(Fraction(leaf.groups.at_least))
    for threshold in thresholds(rule.check):
        if threshold.value is not None:
            values.add(Fraction(str(threshold.value)))
    return values


def all_rules() -> list[tuple[str, Rule]]:
    return [(p, r) for p in PROGRAMS for r in criteria.load_ruleset(p).rules]


def rule_ids(cases: list[tuple[str, Rule]]) -> list[str]:
    return [rule.id for _, rule in cases]


# --- loading and shape -----------------------------------------------------------


def test_both_programmes_are_bundled() -> None:
    assert sorted(EXPECTED_TIERS) == PROGRAMS


@pytest.mark.parametrize("program", PROGRAMS)
def test_every_tier_has_rules_and_numeric_rules(program: str) -> None:
    ruleset = criteria.load_ruleset(program)
    assert [t.name for t in ruleset.tiers] == EXPECTED_TIERS[program]
    for tier in ruleset.tiers:
        rules = ruleset.rules_for(tier.id)
        assert rules, tier.id
        assert any(r.source == "measured" for r in rules), tier.id
        assert any(r.source == "declared" and r.check is None for r in rules), tier.id


def test_rule_ids_are_unique_across_programmes_and_prefixed() -> None:
    prefixes = {"jiangxi-2022": "jx-", "jiangsu-2018": "js-"}
    ids = [rule.id for _, rule in all_rules()]
    assert len(ids) == len(set(ids))
    for program, rule in all_rules():
        assert rule.id.startswith(prefixes[program]), rule.id


@pytest.mark.parametrize(("program", "rule"), all_rules(), ids=rule_ids(all_rules()))
def test_clause_paths_are_well_formed_and_belong_to_the_tier(program: str, rule: Rule) -> None:
    assert CLAUSE.match(rule.clause), rule.clause
    ruleset = criteria.load_ruleset(program)
    for tier_id in rule.tiers:
        tier = ruleset.tier(tier_id)
        assert any(rule.clause == c or rule.clause.startswith(c + ".") for c in tier.clauses), (
            f"{rule.id}: clause {rule.clause} is outside tier {tier_id} ({tier.clauses})"
        )


@pytest.mark.parametrize("program", PROGRAMS)
def test_source_text_is_the_seed(program: str) -> None:
    ruleset = criteria.load_ruleset(program)
    data = (criteria.rules_dir() / ruleset.programme.source_text).read_bytes()
    assert hashlib.sha256(data).hexdigest() == ruleset.programme.source_sha256
    assert ruleset.programme.seed is not None
    seed = SHARED_SEEDS / ruleset.programme.seed
    if not seed.exists():
        pytest.skip(f"shared seed {seed} is not checked out next to the repository")
    assert seed.read_bytes() == data


# --- the text of every rule is in the document ---------------------------------------


@pytest.mark.parametrize(("program", "rule"), all_rules(), ids=rule_ids(all_rules()))
def test_rule_text_occurs_in_the_source(program: str, rule: Rule) -> None:
    source = norm(source_text(criteria.load_ruleset(program)))
    assert norm(rule.text) in source, f"{rule.id}: text not found verbatim in {program}"


@pytest.mark.parametrize(("program", "rule"), all_rules(), ids=rule_ids(all_rules()))
def test_stated_thresholds_are_in_the_text_with_their_comparator(program: str, rule: Rule) -> None:
    if rule.check is None:
        return
    text = norm(rule.text)
    found: dict[Fraction, set[str]] = {}
    for match in NUMBER.finditer(text):
        value = to_number(match.group(1), match.group(2))
        before = text[max(0, match.start() - 6) : match.start()]
        found.setdefault(value, set()).add(">" if "超过" in before else ">=")
    for threshold in thresholds(rule.check):
        if threshold.value is None:
            continue
        value = Fraction(str(threshold.value))
        if threshold.implied:
            assert rule.notes or threshold.value == 1, f"{rule.id}: implied threshold needs a note"
            continue
        assert value in found, f"{rule.id}: threshold {threshold.value} is not in its text"
        assert threshold.op in found[value], (
            f"{rule.id}: {threshold.value} is read with {threshold.op}, text says {found[value]}"
        )
    for leaf in leaves(rule.check):
        if isinstance(leaf, Groups) and leaf.groups.at_least > 1:
            assert Fraction(leaf.groups.at_least) in found, (
                f"{rule.id}: group count not in its text"
            )


def test_only_chaoguo_is_strict() -> None:
    for _, rule in all_rules():
        if rule.check is None:
            continue
        for threshold in thresholds(rule.check):
            if threshold.op == ">":
                assert "超过" in rule.text, rule.id


# --- every numeric threshold of the document is covered ------------------------------


def numeric_phrases(text: str) -> list[tuple[str, Fraction]]:
    """Return (clause, value) for each number in a clause that states a threshold."""
    found: list[tuple[str, Fraction]] = []
    for raw in re.split(r"[，。；：！？\n]", text):
        # Drop markdown and list numbering ("2、", "3.1"), which are not thresholds.
        clause = LIST_NUMBER.sub("", norm(raw).strip("*#- "))
        if not clause:
            continue
        for match in CHINESE_NUMBER.finditer(clause):
            found.append((clause, Fraction(chinese_number(match.group(2)))))
        if not any(k in clause for k in KEYWORDS):
            continue
        for match in NUMBER.finditer(clause):
            found.append((clause, to_number(match.group(1), match.group(2))))
    return found


@pytest.mark.parametrize("program", PROGRAMS)
def test_every_numeric_threshold_is_covered(program: str) -> None:
    ruleset = criteria.load_ruleset(program)
    phrases = numeric_phrases(source_text(ruleset))
    assert len(phrases) >= 20  # the guard must actually see the thresholds
    uncovered = []
    used_exclusions = set()
    for clause, value in phrases:
        excluded = [k for k in EXCLUDED if k[0] == program and k[1] in clause]
        if excluded:
            used_exclusions.update(excluded)
            continue
        covering = [r for r in ruleset.rules if clause in norm(r.text)]
        values = set().union(*(rule_values(r) for r in covering)) if covering else set()
        if value not in values:
            uncovered.append(f"{clause} -> {value} (rules quoting it: {[r.id for r in covering]})")
    assert uncovered == []
    stale = {k for k in EXCLUDED if k[0] == program} - used_exclusions
    assert stale == set(), "exclusions that no longer match the text"


def test_guard_sees_units_and_wan() -> None:
    phrases = numeric_phrases(
        "连接不少于 3 万个采集点，或不少于 1 万个。达 30 以上；近三年连续盈利\n"
        "2、申报单位应为企业\n3.1 运行与管理能力。不少于 2 类。超过 1.5 亿"
    )
    assert [v for _, v in phrases] == [30000, 10000, 30, 3, 2, 150_000_000]


# --- spot checks of readings ---------------------------------------------------------


def leaf_values(program: str, rule_id: str) -> list[tuple[str, str | None, float | int | None]]:
    rule = criteria.load_ruleset(program).rule(rule_id)
    assert rule.check is not None
    return [(t.metric, t.op, t.value) for t in thresholds(rule.check)]


@pytest.mark.parametrize(
    ("program", "rule_id", "expected"),
    [
        (
            "jiangsu-2018",
            "js-cross-connections",
            [
                ("connected_devices", ">=", 5000),
                ("device_types", ">=", 30),
                ("process_points", ">=", 30000),
            ],
        ),
        (
            "jiangsu-2018",
            "js-industry-connections",
            [("connected_devices", ">=", 1500), ("process_points", ">=", 10000)],
        ),
        (
            "jiangxi-2022",
            "jx-comprehensive-connections",
            [
                ("connected_devices", ">=", 1000),
                ("device_types", ">", 10),
                ("process_points", ">=", 5000),
            ],
        ),
        (
            "jiangxi-2022",
            "jx-comprehensive-managed",
            [("managed_device_types", ">=", 2), ("managed_devices", ">=", 100)],
        ),
        ("jiangxi-2022", "jx-enterprise-connected-share", [("connected_devices", ">=", 50)]),
        ("jiangxi-2022", "jx-enterprise-managed-share", [("managed_devices", ">=", 5)]),
        ("jiangsu-2018", "js-key-revenue-rank", [("declared.revenue_rank", "<=", 10)]),
        ("jiangsu-2018", "js-cross-dev-tool-calls", [("monthly_calls_min", ">=", 3000)]),
        ("jiangsu-2018", "js-cross-model-calls", [("monthly_calls", ">=", 1000)]),
    ],
)
def test_spot_readings(program: str, rule_id: str, expected: list[tuple[str, str, int]]) -> None:
    assert leaf_values(program, rule_id) == expected


def test_shares_divide_by_the_declared_inventory() -> None:
    ruleset = criteria.load_ruleset("jiangxi-2022")
    for rule_id in ("jx-enterprise-connected-share", "jx-enterprise-managed-share"):
        check = ruleset.rule(rule_id).check
        assert isinstance(check, Threshold)
        assert (check.share_of, check.unit) == ("declared.device_inventory", "%")


def top_alternatives(rule: Rule) -> list[Threshold | AllOf | AnyOf | Groups]:
    """Return the alternatives of an 'A or B' rule, at the top or inside its groups."""
    check = rule.check
    if isinstance(check, Groups) and isinstance(check.groups.each, AnyOf):
        return list(check.groups.each.any_of)
    if isinstance(check, AnyOf):
        return list(check.any_of)
    return []


@pytest.mark.parametrize("program", PROGRAMS)
def test_discrete_or_process_is_one_rule_with_both_alternatives(program: str) -> None:
    ruleset = criteria.load_ruleset(program)
    rules = [r for r in ruleset.rules if "（流程行业）" in r.text and r.check is not None]
    assert len(rules) >= 3
    for rule in rules:
        labels = [node.label for node in top_alternatives(rule)]
        assert labels == ["离散行业", "流程行业"], rule.id
