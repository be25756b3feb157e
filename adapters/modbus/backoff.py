"""Exponential backoff between reconnect (or re-probe) attempts."""

from __future__ import annotations


class Backoff:
    """Delays that double from `initial` up to `maximum`; reset after a success."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0, factor: float = 2.0) -> None:
        if initial <= 0 or maximum < initial or factor < 1:
            raise ValueError(
                f"backoff needs 0 < initial <= maximum and factor >= 1 "
                f"(got initial={initial}, maximum={maximum}, factor={factor})"
            )
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self._next = initial

    def next_delay(self) -> float:
        """Return the delay to wait now, and lengthen the next one."""
        delay = self._next
        self._next = min(self._next * self.factor, self.maximum)
        return delay

    def reset(self) -> None:
        """Start again from the initial delay."""
        self._next = self.initial
