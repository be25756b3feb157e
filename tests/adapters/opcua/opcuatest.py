"""Helpers of the OPC UA tests: a recording sink, bounded waits and test configurations."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from adapters.base import DeviceEvent, DeviceEventKind, Record, Sample
from adapters.opcua.config import OpcUaSource


class RecordingSink:
    """A sink that keeps every record (the adapter under test is the only producer)."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    async def put(self, record: Record) -> None:
        """Keep one record."""
        self.records.append(record)

    async def put_many(self, records: Sequence[Record]) -> None:
        """Keep records in order."""
        self.records.extend(records)

    def samples(self, since: int = 0) -> list[Sample]:
        """Return the samples put after index `since`."""
        return [r for r in self.records[since:] if isinstance(r, Sample)]

    def events(self, kind: DeviceEventKind, since: int = 0) -> list[DeviceEvent]:
        """Return the device events of one kind put after index `since`."""
        return [r for r in self.records[since:] if isinstance(r, DeviceEvent) and r.kind is kind]


async def eventually(check: Callable[[], bool], within: float, what: str) -> None:
    """Wait until check() holds; fail the test with `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.05)


def source(endpoint: str, **overrides: Any) -> OpcUaSource:
    """Return a fast-reacting connection config for tests (short intervals and back-off)."""
    raw: dict[str, Any] = {
        "protocol": "opcua",
        "id": "sim",
        "endpoint": endpoint,
        "discovery": {"root": "Objects/DeviceSet"},
        "data": {"publishing_interval": 0.1, "sampling_interval": 0.05, "poll_interval": 0.2},
        "reconnect": {"initial_delay": 0.2, "max_delay": 1.0},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return OpcUaSource.model_validate(raw)


class RecordingObserver:
    """An AdapterObserver that keeps every connection change and request kind it hears."""

    def __init__(self) -> None:
        self.connections: list[tuple[str, str, bool]] = []
        self.requests: list[tuple[str, str, float]] = []

    def connection_changed(self, protocol: str, endpoint: str, up: bool) -> None:
        """Keep one connection change."""
        self.connections.append((protocol, endpoint, up))

    def request_observed(self, protocol: str, kind: str, seconds: float) -> None:
        """Keep one request latency."""
        self.requests.append((protocol, kind, seconds))

    def kinds(self) -> set[str]:
        """Return the request kinds observed so far."""
        return {kind for _, kind, _ in self.requests}
