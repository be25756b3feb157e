"""Reports rendered from an evaluation: both languages, clause text, simulated on every page."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from pydantic import TypeAdapter

import criteria
from criteria import Declaration, MetricsSnapshot
from criteria.evidence import read_evidence
from criteria.report import Lang, Report, build_report, render
from criteria.report.labels import LABELS

EXAMPLES = criteria.rules_dir().parent / "examples"
WHEN = datetime(2024, 4, 1, 1, tzinfo=UTC)
# Labels every Markdown and HTML report shows whatever it evaluates.
ALWAYS = ("title", "programme", "tier", "window", "overall", "software", "simulated",
          "results", "clause", "verdict", "source", "definitions", "conventions",
          "declarations", "explanation")  # fmt: skip


def example(include_simulated: bool = False, program: str = "jiangxi-2022") -> Report:
    snap = MetricsSnapshot.model_validate_json((EXAMPLES / "snapshot.json").read_text("utf-8"))
    if include_simulated:
        snap = snap.model_copy(update={"include_simulated": True})
    decls = TypeAdapter(list[Declaration]).validate_json(
        (EXAMPLES / "declarations.json").read_text("utf-8")
    )
    evaluation = criteria.evaluate(criteria.load_ruleset(program), snap, decls, "enterprise")
    return build_report(evaluation, snap, decls, software_version="9.8.7", generated_at=WHEN)


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_both_languages_show_both_label_sets(fmt: str) -> None:
    text = render(example(), fmt, "both")  # type: ignore[arg-type]
    for key in ALWAYS:
        zh, en = LABELS[key]
        assert zh in text, key
        assert en in text, key


@pytest.mark.parametrize("fmt", ["md", "html"])
@pytest.mark.parametrize(("lang", "other"), [("zh", 1), ("en", 0)])
def test_one_language_shows_only_its_labels(fmt: str, lang: Lang, other: int) -> None:
    text = render(example(), fmt, lang)  # type: ignore[arg-type]
    mine = 0 if lang == "zh" else 1
    for key in ALWAYS:
        assert LABELS[key][mine] in text, key
    for key in ("overall", "explanation", "conventions", "declarations"):
        assert LABELS[key][other] not in text, key


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_clause_text_stands_beside_each_verdict(fmt: str) -> None:
    report = example()
    text = render(report, fmt, "both")  # type: ignore[arg-type]
    for result in report.evaluation.results:
        heading = text.index(result.rule)
        verdict = LABELS[result.verdict][0]
        # The verdict follows the rule id in its heading and the clause text comes right after.
        following = text[heading : heading + 400 + len(result.text)]
        assert verdict in following, result.rule
        assert result.text in following, result.rule


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_window_version_definitions_and_declarations_are_stated(fmt: str) -> None:
    report = example()
    text = render(report, fmt, "en")  # type: ignore[arg-type]
    assert "2024-01-01T00:00:00+08:00" in text and "2024-04-01T00:00:00+08:00" in text
    assert "tally 9.8.7" in text
    for definition in report.snapshot.definitions.values():
        assert definition in text or definition.replace("'", "&#x27;") in text
    for declaration in report.declarations:
        assert declaration.evidence_ref in text
    assert "Simulated devices included" in text
    assert LABELS["simulated_banner"][1] not in text


@pytest.mark.parametrize("fmt", ["md", "html"])
@pytest.mark.parametrize("lang", ["zh", "en", "both"])
def test_simulated_reports_say_so_on_every_page(fmt: str, lang: Lang) -> None:
    text = render(example(include_simulated=True), fmt, lang)  # type: ignore[arg-type]
    zh, en = LABELS["simulated_banner"]
    banner = zh if lang == "zh" else en
    sections = text.count("<h2>") if fmt == "html" else len(re.findall(r"^## ", text, re.M))
    assert sections >= 5
    # The head, every section and the footer each carry the banner.
    assert text.count(banner) >= sections + 2
    tail = text[text.rindex("<h2>" if fmt == "html" else "\n## ") :]
    assert banner in tail[-600:]


def test_html_is_one_self_contained_page() -> None:
    text = render(example(include_simulated=True), "html", "both")
    assert text.startswith("<!DOCTYPE html>")
    assert text.count("<html") == 1 and text.rstrip().endswith("</html>")
    for external in ("<script", "<link", "src=", "url(", "@import"):
        assert external not in text
    assert "position:fixed" in text  # the printed banner repeats on every printed page
    assert "<title>[SIMULATED]" in text


def test_text_from_the_documents_is_escaped_in_html() -> None:
    report = example()
    evil = report.evaluation.model_copy(
        update={"programme_title": "<b>x</b> & y", "warnings": ("<script>alert(1)</script>",)}
    )
    text = render(report.model_copy(update={"evaluation": evil}), "html", "en")
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;" in text and "&lt;b&gt;x&lt;/b&gt; &amp; y" in text


def test_json_report_carries_everything_and_reads_back_as_evidence() -> None:
    report = example(include_simulated=True)
    text = render(report, "json")
    data = json.loads(text)
    assert data["format"] == "tally-report/1"
    assert data["software_version"] == "9.8.7"
    assert data["include_simulated"] is True
    assert (
        data["simulated_notice"]
        == f"{LABELS['simulated_banner'][0]} / " + (LABELS["simulated_banner"][1])
    )
    assert Report.model_validate_json(text) == report
    saved = read_evidence(text, "report.json")
    assert saved.snapshot == report.snapshot
    assert saved.declarations == report.declarations


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="json, md, html"):
        render(example(), "pdf")  # type: ignore[arg-type]
