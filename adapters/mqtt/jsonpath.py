"""A small JSON path: `$`, `.name`, `['name']` and `[index]` steps."""

from __future__ import annotations

import re
from typing import Any

_PATH_TOKEN = re.compile(
    r"""\.(?P<name>[^.\[\]]+)|\[(?P<index>\d+)\]|\[(?P<q>['"])(?P<quoted>.*?)(?P=q)\]"""
)


class JsonPath:
    """A small JSON path: `$`, `.name`, `['name']` and `[index]` steps."""

    def __init__(self, path: str) -> None:
        self.path = path
        text = path[1:] if path.startswith("$") else "." + path
        steps: list[str | int] = []
        pos = 0
        while pos < len(text):
            m = _PATH_TOKEN.match(text, pos)
            if m is None:
                raise ValueError(f"JSON path {path!r}: cannot parse at {text[pos:]!r}")
            if m.group("name") is not None:
                steps.append(m.group("name"))
            elif m.group("index") is not None:
                steps.append(int(m.group("index")))
            else:
                steps.append(m.group("quoted"))
            pos = m.end()
        self.steps: tuple[str | int, ...] = tuple(steps)

    def find(self, document: Any) -> tuple[bool, Any]:
        """Return (True, value) when the path exists in `document`, else (False, None)."""
        node = document
        for step in self.steps:
            if isinstance(step, int):
                if not isinstance(node, list) or step >= len(node):
                    return False, None
                node = node[step]
            else:
                if not isinstance(node, dict) or step not in node:
                    return False, None
                node = node[step]
        return True, node
