"""Bounds and allowed values of a control write, checked before anything is sent."""

from __future__ import annotations

import math
from collections.abc import Sequence

from adapters.base import Value


def same_value(a: Value, b: Value) -> bool:
    """Tell whether two values are the same value: booleans never equal numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def limit_violation(
    value: Value,
    minimum: float | None = None,
    maximum: float | None = None,
    allowed: Sequence[Value] | None = None,
) -> str | None:
    """Say why `value` breaks the bounds or the allowed values; None when it does not."""
    if allowed is not None and not any(same_value(value, a) for a in allowed):
        shown = ", ".join(repr(a) for a in allowed)
        return f"{value!r} is not one of the allowed values ({shown})"
    if minimum is None and maximum is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return f"{value!r} is not a number, and the point is bounded to numbers"
    if minimum is not None and value < minimum:
        return f"{value!r} is below the minimum {minimum:g}"
    if maximum is not None and value > maximum:
        return f"{value!r} is above the maximum {maximum:g}"
    return None
