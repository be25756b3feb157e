"""The Modbus adapter: one poll loop per connection, registering devices and emitting samples.

Lifecycle: building the adapter only validates; nothing touches the network before
`start()` (or `async with adapter:`). `run()` starts if needed and returns once `stop()`
is called; `stop()` leaves no task running and no connection open.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from types import TracebackType

from adapters.base import NULL_OBSERVER, AdapterObserver, Sample, Sink, Value
from adapters.modbus.backoff import Backoff
from adapters.modbus.config import ModbusDevice
from adapters.modbus.endpoint import Endpoint
from adapters.modbus.errors import DeviceUnavailableError, UnknownDeviceError
from adapters.modbus.session import ConnectionSession

log = logging.getLogger("tally.adapters.modbus")


class ModbusAdapter:
    """Polls Modbus devices (TCP, RTU over TCP, serial RTU) and emits to a Sink."""

    protocol = "modbus"

    def __init__(
        self,
        devices: Sequence[ModbusDevice],
        sink: Sink,
        *,
        reconnect_initial: float = 0.5,
        reconnect_max: float = 30.0,
        observer: AdapterObserver = NULL_OBSERVER,
    ) -> None:
        enabled = [d for d in devices if d.enabled]
        seen: set[str] = set()
        for device in enabled:
            if device.id in seen:
                raise ValueError(f"modbus device id {device.id!r} is configured twice")
            seen.add(device.id)
        by_connection: dict[str, list[ModbusDevice]] = {}
        for device in enabled:
            by_connection.setdefault(device.endpoint, []).append(device)
        for endpoint, members in by_connection.items():
            units = [d.device_id for d in members]
            dupes = sorted({u for u in units if units.count(u) > 1})
            if dupes:
                raise ValueError(f"{endpoint}: unit id(s) {dupes} are used by more than one device")
        self.sink = sink
        self.sessions = [
            ConnectionSession(
                Endpoint.parse(endpoint),
                members,
                sink,
                reconnect=Backoff(reconnect_initial, reconnect_max),
                device_backoff=(reconnect_initial, reconnect_max),
                observer=observer,
            )
            for endpoint, members in by_connection.items()
        ]
        self._session_of = {
            device_id: session for session in self.sessions for device_id in session.states
        }
        self._stopping: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def devices(self) -> list[ModbusDevice]:
        """The enabled devices, in configuration order within each connection."""
        return [state.config for s in self.sessions for state in s.states.values()]

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return bool(self._tasks)

    @property
    def requests(self) -> int:
        """Modbus requests sent so far (reads, writes and identification)."""
        return sum(s.client.requests for s in self.sessions)

    async def start(self) -> None:
        """Start one poll loop per connection (idempotent)."""
        if self._tasks:
            return
        self._stopping = asyncio.Event()
        for session in self.sessions:
            session.running = True  # reads and writes may wait for the connection from now
        self._tasks = [
            asyncio.create_task(s.run(self._stopping), name=f"modbus {s.endpoint}")
            for s in self.sessions
        ]

    async def run(self) -> None:
        """Poll until stop() is called; then return (raise if a poll loop failed)."""
        await self.start()
        tasks = list(self._tasks)
        if not tasks:
            return
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        except asyncio.CancelledError:
            await self.stop()
            raise
        failed = [t for t in done if not t.cancelled() and t.exception() is not None]
        if failed:
            await self.stop()
            error = failed[0].exception()
            assert error is not None
            raise error
        await asyncio.wait(tasks)

    async def stop(self) -> None:
        """Stop every poll loop, close every connection, and wait until they are gone."""
        tasks, self._tasks = self._tasks, []
        if self._stopping is not None:
            self._stopping.set()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        for session in self.sessions:
            session.running = False  # also when a loop was cancelled before it began
            session.client.close()

    async def __aenter__(self) -> ModbusAdapter:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _session(self, device: str) -> ConnectionSession:
        try:
            return self._session_of[device]
        except KeyError:
            raise UnknownDeviceError(
                f"no enabled modbus device {device!r} (configured: "
                f"{', '.join(sorted(self._session_of)) or 'none'})"
            ) from None

    def controls(self, device: str) -> bool:
        """Report whether `device` is an enabled device of this adapter (control contract)."""
        return device in self._session_of

    def check_point(self, device: str, point: str) -> None:
        """Raise the error any write to this point would end with; no I/O."""
        self._session(device).check_point(device, point)

    def check_write(self, device: str, point: str, value: Value) -> None:
        """Raise the error a write would end with before sending anything; no I/O."""
        self._session(device).check_write(device, point, value)

    async def read(self, device: str, point: str) -> Sample:
        """Read one point of one device now; return a good sample or raise a ModbusError."""
        session = self._session(device)
        if not self.running:
            raise DeviceUnavailableError(f"device {device!r}: the modbus adapter is not running")
        return await session.read_point(device, point)

    async def write(self, device: str, point: str, value: Value) -> None:
        """Write a value to a writable point; refuse other points before sending anything.

        Returns None: Modbus confirms nothing in-band, so the control service reads back.
        """
        await self._session(device).write_point(device, point, value)
