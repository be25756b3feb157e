"""Failure modes of writes a test can switch on per simulated point, so control failures run.

- refuse: writes to the point are answered with a bad StatusCode (default BadOutOfService)
  and change nothing.
- misreport: writes are answered Good, but the server keeps a different value, so what is
  read back afterwards is not what was written.
- delay: writes to the point are answered only after `seconds` (the client times out first
  when `seconds` exceeds its request timeout).
- refuse calls: calls of a device's methods (SetValue) are answered with a bad StatusCode
  and change nothing.

Installed on a running asyncua server by wrapping its attribute service's write, so only
clients' writes are affected; the simulator's own value updates are not.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from asyncua import ua

PointRef = tuple[str, str]
"""(device id, point key) of a served point."""


@dataclass(frozen=True, slots=True)
class WriteFault:
    """The failure modes switched on for one point."""

    refuse: str | None = None
    """Name of the bad StatusCode answered to writes, or None."""
    misreport: bool = False
    delay: float = 0.0


def other_value(value: Any) -> Any:
    """Return a value of the same type that differs from `value`."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value - 1 if value > 0 else value + 1
    if isinstance(value, float):
        return value + 1.0
    if isinstance(value, str):
        return "?" + value[:-1] if value else "?"
    return value


class WriteFaults:
    """The write failure modes of one simulated server, by point."""

    def __init__(self) -> None:
        self._faults: dict[PointRef, WriteFault] = {}
        self.writes = 0
        """Values clients asked to write, whatever became of them."""
        self._refused_calls: dict[str, str] = {}
        self.calls = 0
        """Method calls clients made, whatever became of them."""

    def _change(self, device: str, point: str, **changes: Any) -> None:
        current = self._faults.get((device, point), WriteFault())
        self._faults[(device, point)] = dataclasses.replace(current, **changes)

    def refuse_writes(self, device: str, point: str, status: str = "BadOutOfService") -> None:
        """Answer writes to a point with a bad StatusCode, changing nothing."""
        if not hasattr(ua.StatusCodes, status) or not status.startswith("Bad"):
            raise ValueError(f"{status!r} is not the name of a bad OPC UA StatusCode")
        self._change(device, point, refuse=status)

    def misreport(self, device: str, point: str) -> None:
        """Answer writes Good but keep a different value (the read-back mismatches)."""
        self._change(device, point, misreport=True)

    def delay(self, device: str, point: str, seconds: float) -> None:
        """Hold back the answer to writes to a point."""
        self._change(device, point, delay=seconds)

    def refuse_calls(self, device: str, status: str = "BadOutOfService") -> None:
        """Answer calls of the device's methods with a bad StatusCode, changing nothing."""
        if not hasattr(ua.StatusCodes, status) or not status.startswith("Bad"):
            raise ValueError(f"{status!r} is not the name of a bad OPC UA StatusCode")
        self._refused_calls[device] = status

    def call_refusal(self, device: str) -> int | None:
        """Count a call of a device's method; return the StatusCode to refuse it with, if any."""
        self.calls += 1
        status = self._refused_calls.get(device)
        return None if status is None else int(getattr(ua.StatusCodes, status))

    def clear(self, device: str | None = None, point: str | None = None) -> None:
        """Switch off the failure modes of one point, of one device, or of everything."""
        if point is None:
            for name in list(self._refused_calls):
                if device is None or name == device:
                    del self._refused_calls[name]
        for ref in list(self._faults):
            if (device is None or ref[0] == device) and (point is None or ref[1] == point):
                del self._faults[ref]

    def install(self, service: Any, locate: Callable[[ua.NodeId], PointRef | None]) -> None:
        """Wrap `service.write` (an asyncua AttributeService) to apply the failure modes."""
        original: Callable[..., Awaitable[list[ua.StatusCode]]] = service.write

        async def write(params: ua.WriteParameters, *args: Any, **kwargs: Any) -> list[Any]:
            results: list[ua.StatusCode] = []
            for asked in params.NodesToWrite:
                self.writes += 1
                item = asked
                ref = locate(item.NodeId) if self._faults else None
                fault = self._faults.get(ref) if ref is not None else None
                if fault is not None and fault.delay > 0:
                    await asyncio.sleep(fault.delay)
                if fault is not None and fault.refuse is not None:
                    results.append(ua.StatusCode(getattr(ua.StatusCodes, fault.refuse)))
                    continue
                if fault is not None and fault.misreport and item.Value.Value is not None:
                    variant = item.Value.Value
                    changed = ua.Variant(other_value(variant.Value), variant.VariantType)
                    item = dataclasses.replace(
                        item, Value=dataclasses.replace(item.Value, Value=changed)
                    )
                one = ua.WriteParameters()
                one.NodesToWrite = [item]
                results.extend(await original(one, *args, **kwargs))
            return results

        service.write = write
