"""A report as Markdown: one section per part, the clause text beside each verdict."""

from __future__ import annotations

from criteria.report import Report
from criteria.report.content import (
    declaration_rows,
    entries,
    figure_rows,
    heading,
    meta_rows,
    summary_rows,
)
from criteria.report.labels import Lang, label


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def render_markdown(report: Report, lang: Lang) -> str:
    """Render a report as Markdown in `lang` (zh, en or both)."""
    banner = f"> **⚠ {label('simulated_banner', lang)}**\n" if report.include_simulated else ""
    title, subtitle = heading(report, lang)
    out: list[str] = [f"# {title}", "", f"**{subtitle}**", ""]

    def section(key: str) -> None:
        out.extend([f"## {label(key, lang)}", ""])
        if banner:
            out.extend([banner])

    if banner:
        out.append(banner)
    out += _table((label("figure", lang), label("value", lang)), list(meta_rows(report, lang)))
    out += _table((label("verdict", lang), ""), list(summary_rows(report, lang)))

    if report.evaluation.warnings:
        section("warnings")
        out += [f"- {w}" for w in report.evaluation.warnings] + [""]

    section("results")
    for e in entries(report, lang):
        out += [f"### {e.clause} · `{e.rule}` — **{e.verdict_label}**", ""]
        out += [f"> **{label('text', lang)}**: {e.text}", ""]
        if e.gloss:
            out += [f"*{e.gloss}*", ""]
        facts = [f"- {label('clause', lang)}: {e.clause}", f"- {label('source', lang)}: {e.source}"]
        if e.requirement:
            facts.append(f"- {label('threshold', lang)}: {e.requirement}")
        if e.measured:
            facts.append(f"- {label('measured', lang)}: {e.measured}")
        out += [*facts, ""]
        out += [f"{label('explanation', lang)}:", "", "```text", *e.explanation, "```", ""]
        if e.notes:
            out += [f"{label('notes', lang)}: {e.notes}", ""]

    section("declarations")
    rows = declaration_rows(report)
    if rows:
        head = tuple(
            label(k, lang)
            for k in ("declaration_target", "value", "evidence", "declared_by", "declared_at")
        )
        out += _table(head, list(rows))
    else:
        out += [label("no_declarations", lang), ""]

    section("figures")
    out += _table(
        (label("figure", lang), label("value", lang)), list(figure_rows(report.snapshot, lang))
    )

    section("definitions")
    out += [f"- **{k}**: {v}" for k, v in sorted(report.snapshot.definitions.items())] + [""]
    section("conventions")
    out += [f"- **{k}**: {v}" for k, v in sorted(report.evaluation.conventions.items())] + [""]

    out += ["---", ""]
    if banner:
        out.append(banner)
    out.append(f"tally {report.software_version} · {report.generated_at.isoformat()}")
    return "\n".join(out) + "\n"
