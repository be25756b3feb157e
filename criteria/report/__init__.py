"""Reports: an evaluation with its snapshot and declarations, rendered as JSON, Markdown or HTML.

Rendering is pure: ``render(report, "html", "both")`` depends on nothing but the
report. Every format states the window, the definitions in force, the software
version and whether simulated devices were included; when they were, every page
(section, header and footer) says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from criteria.evaluation import Evaluation
from criteria.report.labels import LANGS, Lang, label
from criteria.snapshot import Declaration, MetricsSnapshot

Format = Literal["json", "md", "html"]
FORMATS: tuple[Format, ...] = ("json", "md", "html")
REPORT_FORMAT: Literal["tally-report/1"] = "tally-report/1"

__all__ = [
    "FORMATS",
    "LANGS",
    "Format",
    "Lang",
    "Report",
    "build_report",
    "render",
]


class Report(BaseModel):
    """Everything a report shows; its JSON form is the JSON report."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["tally-report/1"] = REPORT_FORMAT
    software_version: str
    generated_at: AwareDatetime
    programme: str
    tier: str
    include_simulated: bool
    simulated_notice: str | None
    evaluation: Evaluation
    snapshot: MetricsSnapshot
    declarations: tuple[Declaration, ...]


def build_report(
    evaluation: Evaluation,
    snapshot: MetricsSnapshot,
    declarations: Sequence[Declaration],
    *,
    software_version: str,
    generated_at: AwareDatetime,
) -> Report:
    """Assemble a report from an evaluation and the inputs it was computed from."""
    notice = label("simulated_banner", "both") if snapshot.include_simulated else None
    return Report(
        software_version=software_version,
        generated_at=generated_at,
        programme=evaluation.programme,
        tier=evaluation.tier,
        include_simulated=snapshot.include_simulated,
        simulated_notice=notice,
        evaluation=evaluation,
        snapshot=snapshot,
        declarations=tuple(declarations),
    )


def render(report: Report, fmt: Format, lang: Lang = "both") -> str:
    """Render a report; JSON carries every figure, Markdown and HTML label them in `lang`."""
    if fmt == "json":
        return report.model_dump_json(indent=2) + "\n"
    if fmt == "md":
        from criteria.report.markdown import render_markdown

        return render_markdown(report, lang)
    if fmt == "html":
        from criteria.report.html import render_html

        return render_html(report, lang)
    raise ValueError(f"unknown report format {fmt!r}; formats: {', '.join(FORMATS)}")
