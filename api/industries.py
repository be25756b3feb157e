"""Whether a device's industry is a process industry (流程行业), per the bundled GB/T 4754 table.

The one place the API asks this question; the table and its loader live in criteria/.
"""

from __future__ import annotations

from criteria.industries import classify

PROCESS_DEFINITION = (
    "Process-industry points are points with a good live sample in the window whose device's "
    "GB/T 4754-2017 industry (the device's own, else its enterprise's) is marked process (流程) "
    "in the bundled table criteria/industries.yaml (codes at any level roll up to their "
    "division); devices without an industry, or with a code the table does not classify "
    "(listed in unclassified_industries), contribute no process points."
)


def is_process_industry(code: str | None) -> bool | None:
    """Tell whether code is a process industry (False: discrete, None: unknown or absent)."""
    if code is None or not code.strip():
        return None
    kind = classify(code)
    return None if kind is None else kind == "process"
