"""What a report shows, as rows and entries both the Markdown and HTML renderers format."""

from __future__ import annotations

import json
from dataclasses import dataclass

import criteria
from criteria.describe import describe, explain, number
from criteria.evaluation import RuleResult
from criteria.model import RuleSet, RuleSetError
from criteria.report import Report
from criteria.report.labels import Lang, label, source_label
from criteria.snapshot import Counts, Declaration, MetricsSnapshot

Row = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Entry:
    """One rule's verdict with its clause text, requirement and explanation."""

    clause: str
    rule: str
    verdict: str
    verdict_label: str
    source: str
    text: str
    gloss: str | None
    requirement: str | None
    measured: str | None
    explanation: tuple[str, ...]
    notes: str | None


def _ruleset(programme: str) -> RuleSet | None:
    try:
        return criteria.load_ruleset(programme)
    except RuleSetError:
        return None


def _both(zh: str, en: str | None, lang: Lang) -> str:
    if lang == "zh" or not en:
        return zh
    if lang == "en":
        return en
    return f"{zh} / {en}"


def heading(report: Report, lang: Lang) -> tuple[str, str]:
    """Return the title and the programme/tier subtitle."""
    ev = report.evaluation
    rules = _ruleset(ev.programme)
    title_en = rules.programme.title_en if rules else None
    tier_en = rules.tier(ev.tier).name_en if rules else None
    subtitle = f"{_both(ev.programme_title, title_en, lang)} — {_both(ev.tier_name, tier_en, lang)}"
    return label("title", lang), subtitle


def meta_rows(report: Report, lang: Lang) -> list[Row]:
    """Return the facts every report states: programme, tier, window, version, simulated."""
    ev = report.evaluation
    snap = report.snapshot
    yes_no = label("yes" if report.include_simulated else "no", lang)
    rows: list[Row] = [
        (label("programme", lang), f"{ev.programme_title} ({ev.programme})"),
        (label("tier", lang), f"{ev.tier_name} ({ev.tier})"),
        (
            label("window", lang),
            f"{snap.window_start.isoformat()} — {snap.window_end.isoformat()} [start, end)",
        ),
        (label("simulated", lang), yes_no),
    ]
    excluded = snap.simulated_excluded
    if not report.include_simulated and excluded is not None:
        rows.append(
            (
                label("simulated_excluded", lang),
                f"{excluded.connected_devices} connected, {excluded.managed_devices} managed, "
                f"{excluded.points} points",
            )
        )
    rows += [
        (label("software", lang), f"tally {report.software_version}"),
        (label("generated_at", lang), report.generated_at.isoformat()),
    ]
    if snap.collector:
        rows.append((label("collector", lang), snap.collector))
    return rows


def summary_rows(report: Report, lang: Lang) -> list[Row]:
    """Return the overall verdict, the verdict counts and the verdict per source."""
    ev = report.evaluation
    counts = ", ".join(f"{label(v, lang)}: {n}" for v, n in ev.counts.items())
    sources = ", ".join(
        f"{source_label(s, lang)}: {label(v, lang)}" for s, v in ev.by_source.items()
    )
    return [
        (label("overall", lang), label(ev.verdict, lang)),
        (label("counts", lang), counts),
        (label("by_source", lang), sources),
    ]


def _measured(result: RuleResult) -> str | None:
    if result.op is None:
        return None
    unit = f" {result.unit}" if result.unit else ""
    margin = f" ({number(result.margin)})" if result.margin is not None else ""
    return f"{number(result.measured)}{unit}{margin}"


def entries(report: Report, lang: Lang) -> list[Entry]:
    """Return one entry per rule, in document order."""
    rules = _ruleset(report.evaluation.programme)
    out: list[Entry] = []
    for result in report.evaluation.results:
        requirement = None
        if rules is not None:
            check = rules.rule(result.rule).check
            requirement = describe(check) if check is not None else None
        out.append(
            Entry(
                clause=result.clause,
                rule=result.rule,
                verdict=result.verdict,
                verdict_label=label(result.verdict, lang),
                source=source_label(result.source, lang),
                text=result.text,
                gloss=result.gloss if lang != "zh" else None,
                requirement=requirement,
                measured=_measured(result),
                explanation=tuple(explain(result)),
                notes=result.notes if lang != "zh" else None,
            )
        )
    return out


def _target(d: Declaration) -> str:
    parts = [
        f"{name}={value}"
        for name, value in (
            ("program", d.program),
            ("tier", d.tier),
            ("rule", d.rule),
            ("clause", d.clause),
            ("metric", d.metric),
        )
        if value is not None
    ]
    return ", ".join(parts)


def declaration_rows(report: Report) -> list[tuple[str, str, str, str, str]]:
    """Return (target, value, evidence, declared by, declared at) per declaration."""
    rows = []
    for d in report.declarations:
        value = "not applicable" if d.not_applicable else json.dumps(d.value, ensure_ascii=False)
        if d.note:
            value += f" ({d.note})"
        rows.append((_target(d), value, d.evidence_ref, d.declared_by, d.declared_at.isoformat()))
    return rows


def _counts_text(counts: Counts | None, lang: Lang) -> str:
    if counts is None:
        return label("not_recorded", lang)
    text = f"{counts.total:,}"
    if counts.by_industry:
        text += " · " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.by_industry.items()))
    return text


def figure_rows(snapshot: MetricsSnapshot, lang: Lang) -> list[Row]:
    """Return the snapshot's measured figures, and whether each registry figure was recorded."""
    missing = label("not_recorded", lang)
    rows: list[Row] = [
        ("connected_devices", _counts_text(snapshot.connected_devices, lang)),
        (
            "device_types",
            number(snapshot.device_types) if snapshot.device_types is not None else missing,
        ),
        ("managed_devices", _counts_text(snapshot.managed_devices, lang)),
        (
            "managed_device_types",
            number(snapshot.managed_device_types)
            if snapshot.managed_device_types is not None
            else missing,
        ),
        ("points", _counts_text(snapshot.points, lang)),
        ("process_points", _counts_text(snapshot.process_points, lang)),
    ]
    for name in ("apps", "subscriptions", "enterprise_users", "developers", "calls"):
        value = getattr(snapshot, name)
        rows.append((name, "recorded" if value is not None else missing))
    return rows
