"""Report labels in Chinese and English, and how a language choice renders them."""

from __future__ import annotations

from typing import Literal

Lang = Literal["zh", "en", "both"]
LANGS: tuple[Lang, ...] = ("zh", "en", "both")

LABELS: dict[str, tuple[str, str]] = {
    "title": ("工业互联网平台评估报告", "Industrial internet platform evaluation report"),
    "programme": ("评估依据", "Programme"),
    "tier": ("平台类别", "Tier"),
    "window": ("统计区间", "Window"),
    "overall": ("总体结论", "Overall verdict"),
    "by_source": ("按证据来源", "By evidence source"),
    "counts": ("结论统计", "Verdicts counted"),
    "software": ("软件版本", "Software version"),
    "generated_at": ("生成时间", "Generated at"),
    "collector": ("采集站点", "Collector site"),
    "simulated": ("是否计入模拟设备", "Simulated devices included"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "simulated_banner": (
        "本报告计入了模拟设备，不能证明平台达标。",
        "SIMULATED DEVICES ARE INCLUDED IN THIS REPORT: it shows no eligibility.",
    ),
    "simulated_excluded": ("已排除的模拟设备", "Simulated devices excluded"),
    "results": ("逐条评估结果", "Results by rule"),
    "clause": ("条款", "Clause"),
    "rule": ("规则", "Rule"),
    "text": ("条款原文", "Clause text"),
    "gloss": ("英文释义", "English gloss"),
    "source": ("证据来源", "Source"),
    "verdict": ("结论", "Verdict"),
    "measured": ("实测值", "Measured"),
    "threshold": ("要求", "Requirement"),
    "margin": ("差额", "Margin"),
    "explanation": ("说明", "Explanation"),
    "notes": ("解读", "Reading"),
    "figures": ("指标快照", "Metrics snapshot"),
    "figure": ("指标", "Figure"),
    "value": ("数值", "Value"),
    "declarations": ("运营方声明（非实测）", "Operator declarations (declared, not measured)"),
    "declaration_target": ("声明对象", "Declares"),
    "evidence": ("证明材料", "Evidence"),
    "declared_by": ("声明人", "Declared by"),
    "declared_at": ("声明时间", "Declared at"),
    "no_declarations": ("无声明", "No declarations"),
    "definitions": ("口径定义", "Definitions in force"),
    "conventions": ("解读约定", "Reading conventions"),
    "warnings": ("提示", "Warnings"),
    "not_recorded": ("未记录（证据不足）", "not recorded (insufficient evidence)"),
    "pass": ("达标", "pass"),
    "fail": ("未达标", "fail"),
    "insufficient_evidence": ("证据不足", "insufficient evidence"),
    "not_applicable": ("不适用", "not applicable"),
    "measured_source": ("实测", "measured"),
    "registry_source": ("登记记录", "registry"),
    "declared_source": ("声明", "declared"),
}


def label(key: str, lang: Lang) -> str:
    """Return a label in one language, or both as ``中文 / English``."""
    zh, en = LABELS[key]
    if lang == "zh":
        return zh
    if lang == "en":
        return en
    return f"{zh} / {en}"


def source_label(source: str, lang: Lang) -> str:
    """Return the label of an evidence source (measured, registry, declared)."""
    return label(f"{source}_source", lang)
