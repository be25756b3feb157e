"""A report as one self-contained HTML page: inline CSS, no scripts, no external assets."""

from __future__ import annotations

from html import escape

from criteria.report import Report
from criteria.report.content import (
    Row,
    declaration_rows,
    entries,
    figure_rows,
    heading,
    meta_rows,
    summary_rows,
)
from criteria.report.labels import Lang, label

_CSS = """
body{font-family:"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",system-ui,sans-serif;
margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1b1f24;line-height:1.5}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{border-bottom:1px solid #ccd;margin-top:2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}
th,td{border:1px solid #ccd;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f4f8}
.rule{border:1px solid #ccd;border-left-width:6px;padding:.5rem 1rem;margin:1rem 0}
.rule.pass{border-left-color:#1a7f37}.rule.fail{border-left-color:#cf222e}
.rule.insufficient_evidence{border-left-color:#bf8700}.rule.not_applicable{border-left-color:#888}
.verdict{font-weight:bold}.clause-text{font-size:1.05rem;margin:.3rem 0}
.gloss{color:#555;font-style:italic}pre{background:#f6f8fa;padding:.5rem;white-space:pre-wrap}
.sim{background:#cf222e;color:#fff;font-weight:bold;padding:.5rem 1rem;margin:.5rem 0}
.print-sim{display:none}
@media print{.print-sim{display:block;position:fixed;top:0;left:0;right:0}
body{margin-top:3rem}.rule{break-inside:avoid}}
footer{margin-top:2rem;color:#555;font-size:.9rem}
"""


def _rows(rows: list[Row]) -> str:
    return "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)


def render_html(report: Report, lang: Lang) -> str:
    """Render a report as a self-contained HTML page in `lang` (zh, en or both)."""
    simulated = report.include_simulated
    sim = (
        f'<div class="sim" role="alert">⚠ {escape(label("simulated_banner", lang))}</div>'
        if simulated
        else ""
    )
    title, subtitle = heading(report, lang)
    html_lang = "en" if lang == "en" else "zh-CN"
    parts: list[str] = [
        "<!DOCTYPE html>",
        f'<html lang="{html_lang}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{'[SIMULATED] ' if simulated else ''}{escape(title)} — {escape(subtitle)}</title>",
        f"<style>{_CSS}</style></head><body>",
    ]
    if simulated:
        parts.append(
            f'<div class="sim print-sim">⚠ {escape(label("simulated_banner", lang))}</div>'
        )
    parts += [f"<header><h1>{escape(title)}</h1><p><strong>{escape(subtitle)}</strong></p>", sim]
    parts.append(
        f"<table>{_rows(meta_rows(report, lang))}{_rows(summary_rows(report, lang))}</table>"
    )
    parts.append("</header>")

    def section(key: str, body: str) -> None:
        parts.append(f"<section><h2>{escape(label(key, lang))}</h2>{sim}{body}</section>")

    if report.evaluation.warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in report.evaluation.warnings)
        section("warnings", f"<ul>{items}</ul>")

    blocks: list[str] = []
    for e in entries(report, lang):
        facts = [
            f"<tr><th>{escape(label('clause', lang))}</th><td>{escape(e.clause)}</td></tr>",
            f"<tr><th>{escape(label('source', lang))}</th><td>{escape(e.source)}</td></tr>",
        ]
        if e.requirement:
            facts.append(
                f"<tr><th>{escape(label('threshold', lang))}</th>"
                f"<td>{escape(e.requirement)}</td></tr>"
            )
        if e.measured:
            facts.append(
                f"<tr><th>{escape(label('measured', lang))}</th><td>{escape(e.measured)}</td></tr>"
            )
        gloss = f'<p class="gloss">{escape(e.gloss)}</p>' if e.gloss else ""
        notes = (
            f"<p><strong>{escape(label('notes', lang))}:</strong> {escape(e.notes)}</p>"
            if e.notes
            else ""
        )
        blocks.append(
            f'<article class="rule {e.verdict}" id="{escape(e.rule)}">'
            f"<h3>{escape(e.clause)} · <code>{escape(e.rule)}</code> — "
            f'<span class="verdict">{escape(e.verdict_label)}</span></h3>'
            f'<p class="clause-text" lang="zh-CN"><strong>{escape(label("text", lang))}:</strong> '
            f"{escape(e.text)}</p>{gloss}"
            f"<table>{''.join(facts)}</table>"
            f"<p><strong>{escape(label('explanation', lang))}:</strong></p>"
            f"<pre>{escape(chr(10).join(e.explanation))}</pre>{notes}</article>"
        )
    section("results", "".join(blocks))

    rows = declaration_rows(report)
    if rows:
        head = "".join(
            f"<th>{escape(label(k, lang))}</th>"
            for k in ("declaration_target", "value", "evidence", "declared_by", "declared_at")
        )
        body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
        section("declarations", f"<table><tr>{head}</tr>{body}</table>")
    else:
        section("declarations", f"<p>{escape(label('no_declarations', lang))}</p>")

    section("figures", f"<table>{_rows(figure_rows(report.snapshot, lang))}</table>")
    section("definitions", f"<table>{_rows(sorted(report.snapshot.definitions.items()))}</table>")
    section("conventions", f"<table>{_rows(sorted(report.evaluation.conventions.items()))}</table>")
    parts.append(
        f"<footer>{sim}<p>tally {escape(report.software_version)} · "
        f"{escape(report.generated_at.isoformat())}</p></footer></body></html>"
    )
    return "\n".join(parts) + "\n"
