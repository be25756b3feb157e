"""One Modbus connection and its poll loop, serving every device (unit id) behind it.

The loop never starts a poll while the last one runs: it polls the devices that are due,
one request at a time, then sleeps until the next is due. A device that times out is
marked unavailable and re-probed with backoff while the others go on; a lost connection
marks all its devices unavailable and is reopened with exponential backoff. Each change
of availability is logged once and reported to the sink as a DeviceEvent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from adapters.base import (
    NULL_OBSERVER,
    AdapterObserver,
    DeviceEvent,
    DeviceEventKind,
    DeviceInfo,
    PointInfo,
    Quality,
    Sample,
    Sink,
    Value,
    utcnow,
)
from adapters.limits import limit_violation
from adapters.modbus.backoff import Backoff
from adapters.modbus.client import ModbusClient
from adapters.modbus.codec import CodecError, decode, encode
from adapters.modbus.config import ModbusDevice, ModbusPoint, Table
from adapters.modbus.endpoint import Endpoint
from adapters.modbus.errors import (
    DeviceUnavailableError,
    ModbusConnectionError,
    ModbusExceptionResponse,
    ModbusTimeout,
    PointNotWritableError,
    UnknownPointError,
    ValueNotAllowedError,
)
from adapters.modbus.identity import identity_fields, is_simulated
from adapters.modbus.planner import ReadRequest, plan_reads, split

log = logging.getLogger("tally.adapters.modbus")

_SPLIT_CODES = frozenset({0x02, 0x03})  # illegal address / value: read the points apart


def device_endpoint(device: ModbusDevice) -> str:
    """Where one device lives: its connection plus its unit id, e.g. tcp://host:502/3."""
    ep = Endpoint.parse(device.endpoint)
    base = (
        f"rtu://{ep.serial_port}" if ep.is_serial else f"{ep.framing.value}://{ep.host}:{ep.port}"
    )
    return f"{base}/{device.device_id}"


@dataclass(eq=False)
class DeviceState:
    """What the poll loop knows about one device."""

    config: ModbusDevice
    requests: list[ReadRequest]
    backoff: Backoff
    info: DeviceInfo | None = None
    available: bool | None = None  # None until first contact
    due: float = 0.0
    bad_points: set[str] = field(default_factory=set)

    def point(self, key: str) -> ModbusPoint:
        """Return a point of this device or raise UnknownPointError."""
        for point in self.config.points:
            if point.key == key:
                return point
        keys = ", ".join(p.key for p in self.config.points)
        raise UnknownPointError(f"device {self.config.id!r} has no point {key!r} (points: {keys})")


class ConnectionSession:
    """The poll loop of one connection and the devices it serves."""

    def __init__(
        self,
        endpoint: Endpoint,
        devices: Sequence[ModbusDevice],
        sink: Sink,
        *,
        reconnect: Backoff,
        device_backoff: tuple[float, float],
        observer: AdapterObserver = NULL_OBSERVER,
    ) -> None:
        self.endpoint = endpoint
        self.observer = observer
        self.sink = sink
        self.client = ModbusClient(endpoint, timeout=max(d.timeout for d in devices))
        self.reconnect = reconnect
        self.states = {
            d.id: DeviceState(d, plan_reads(d.points, d.max_gap), Backoff(*device_backoff))
            for d in devices
        }
        self.connection_up: bool | None = None
        self._up = asyncio.Event()
        self.running = False
        self.polls = 0

    # -- the loop -------------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> None:
        """Poll until `stopping` is set; reconnect with backoff whenever the connection drops."""
        loop = asyncio.get_running_loop()
        self.running = True
        try:
            while not stopping.is_set():
                if not self.client.connected and not await self._connect():
                    await _wait(stopping, self.reconnect.next_delay())
                    continue
                await self._poll_due(stopping)
                if not self.client.connected:
                    continue
                delay = min(s.due for s in self.states.values()) - loop.time()
                if delay > 0:
                    await _wait(stopping, delay)
        finally:
            self.running = False
            self._up.clear()
            self.client.close()

    async def _connect(self) -> bool:
        try:
            await self.client.connect()
        except ModbusConnectionError as exc:
            await self._connection_down(str(exc))
            return False
        self.reconnect.reset()
        self._up.set()
        if self.connection_up is False:
            log.info(
                "modbus connection %s restored",
                self.endpoint,
                extra={"endpoint": str(self.endpoint)},
            )
        if self.connection_up is not True:
            self.observer.connection_changed("modbus", str(self.endpoint), True)
        self.connection_up = True
        now = asyncio.get_running_loop().time()
        for state in self.states.values():
            state.due = min(state.due, now)
        return True

    async def _connection_down(self, reason: str) -> None:
        self.client.close()
        self._up.clear()
        if self.connection_up is not False:
            log.warning(
                "modbus connection %s unavailable: %s", self.endpoint, reason,
                extra={"endpoint": str(self.endpoint)},
            )  # fmt: skip
            self.observer.connection_changed("modbus", str(self.endpoint), False)
        self.connection_up = False
        for state in self.states.values():
            await self._unavailable(state, reason)

    async def _poll_due(self, stopping: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for state in sorted(self.states.values(), key=lambda s: s.due):
            if state.due > now or stopping.is_set():
                continue
            started = loop.time()
            try:
                await self._poll_device(state)
                self.observer.request_observed("modbus", "poll", loop.time() - started)
            except ModbusConnectionError as exc:
                await self._connection_down(str(exc))
                return
            except (ModbusTimeout, ModbusExceptionResponse) as exc:
                await self._unavailable(state, str(exc))
                retry = max(state.backoff.next_delay(), state.config.poll_interval)
                state.due = loop.time() + retry
                continue
            state.backoff.reset()
            following = state.due + state.config.poll_interval
            state.due = (
                following if following > loop.time() else loop.time() + (state.config.poll_interval)
            )
        self.polls += 1

    async def _poll_device(self, state: DeviceState) -> None:
        if state.info is None:
            await self._register(state)
        unit = state.config.device_id
        samples: list[Sample] = []
        index = 0
        while index < len(state.requests):
            request = state.requests[index]
            try:
                values = await self.client.read(unit, request.table, request.address, request.count)
            except ModbusExceptionResponse as exc:
                if exc.device_unreachable:
                    raise
                if exc.code in _SPLIT_CODES and len(request.points) > 1:
                    parts = split(request)
                    log.info(
                        "modbus device %s refused %s (%s); reading it as %d smaller request(s)",
                        state.config.id,
                        request,
                        exc,
                        len(parts),
                        extra={"device": state.config.id},
                    )
                    state.requests[index : index + 1] = parts
                    continue
                ts = utcnow()
                for point in request.points:
                    self._point_bad(state, point, str(exc))
                    samples.append(Sample(state.config.id, point.key, ts, None, Quality.BAD))
                index += 1
                continue
            ts = utcnow()
            for point in request.points:
                samples.append(self._sample(state, point, request, values, ts))
            index += 1
        await self._available(state)
        for sample in samples:
            await self.sink.put(sample)

    def _sample(
        self,
        state: DeviceState,
        point: ModbusPoint,
        request: ReadRequest,
        values: list[int] | list[bool],
        ts: datetime,
    ) -> Sample:
        try:
            value = decode(point, request.values_of(point, values))
        except CodecError as exc:
            self._point_bad(state, point, str(exc))
            return Sample(state.config.id, point.key, utcnow(), None, Quality.BAD)
        if point.key in state.bad_points:
            state.bad_points.discard(point.key)
            log.info(
                "modbus device %s point %s reads again", state.config.id, point.key,
                extra={"device": state.config.id, "point": point.key},
            )  # fmt: skip
        return Sample(state.config.id, point.key, ts, value)

    def _point_bad(self, state: DeviceState, point: ModbusPoint, reason: str) -> None:
        if point.key not in state.bad_points:
            state.bad_points.add(point.key)
            log.warning(
                "modbus device %s point %s (%s %d): %s; its samples are marked bad",
                state.config.id,
                point.key,
                point.table.value,
                point.address,
                reason,
                extra={"device": state.config.id, "point": point.key},
            )

    # -- registration and availability ----------------------------------------------------

    async def _register(self, state: DeviceState) -> None:
        config = state.config
        identity: dict[str, str] = {}
        if config.identify:
            try:
                identity = identity_fields(await self.client.identify(config.device_id))
            except ModbusExceptionResponse as exc:
                if exc.device_unreachable:
                    raise
                log.debug(
                    "modbus device %s offers no identification: %s", config.id, exc,
                    extra={"device": config.id},
                )  # fmt: skip
            except ModbusTimeout:
                # Some devices ignore function 43 instead of refusing it: if the device
                # answers an ordinary read, register it without identity.
                first = state.requests[0]
                try:  # a timeout here propagates: the device is down
                    await self.client.read(config.device_id, first.table, first.address, 1)
                except ModbusExceptionResponse as exc:
                    if exc.device_unreachable:
                        raise
                log.info(
                    "modbus device %s does not answer Read Device Identification; "
                    "registering it without identity",
                    config.id,
                    extra={"device": config.id},
                )
        state.info = DeviceInfo(
            key=config.id,
            protocol="modbus",
            endpoint=device_endpoint(config),
            device_type=config.type,
            industry=config.industry,
            region=config.region,
            park=config.park,
            enterprise=config.enterprise,
            name=config.name,
            simulated=is_simulated(identity),
            identity=identity,
            points=tuple(
                PointInfo(
                    key=p.key,
                    address=f"{p.table.value}:{p.address}",
                    data_type=p.data_type.value,
                    unit=p.unit,
                    writable=p.writable,
                    description=p.description,
                )
                for p in config.points
            ),
        )
        await self.sink.put(
            DeviceEvent(DeviceEventKind.REGISTERED, config.id, utcnow(), info=state.info)
        )

    async def _available(self, state: DeviceState) -> None:
        if state.available is True:
            return
        if state.available is False:
            log.info(
                "modbus device %s is available again", state.config.id,
                extra={"device": state.config.id},
            )  # fmt: skip
        state.available = True
        await self.sink.put(
            DeviceEvent(
                DeviceEventKind.ONLINE, state.config.id, utcnow(), detail=str(self.endpoint)
            )
        )

    async def _unavailable(self, state: DeviceState, reason: str) -> None:
        if state.available is False:
            return
        state.available = False
        log.warning(
            "modbus device %s is unavailable: %s", state.config.id, reason,
            extra={"device": state.config.id},
        )  # fmt: skip
        if state.info is not None:
            await self.sink.put(
                DeviceEvent(DeviceEventKind.OFFLINE, state.config.id, utcnow(), detail=reason)
            )

    # -- on-demand read and write ---------------------------------------------------------

    async def _require_connection(self, state: DeviceState) -> None:
        """Wait (up to the device timeout) for the connection; raise if it is not up."""
        if self.running and not self.client.connected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._up.wait(), timeout=state.config.timeout)
        if not self.running or not self.client.connected:
            raise DeviceUnavailableError(
                f"device {state.config.id!r}: not connected to {self.endpoint} "
                "(is the adapter running and the device reachable?)"
            )

    async def read_point(self, device: str, key: str) -> Sample:
        """Read one point now and return a good sample; raise a ModbusError on failure."""
        state = self.states[device]
        point = state.point(key)
        await self._require_connection(state)
        label = f"device {device!r} point {key!r}: "
        values = await self.client.read(
            state.config.device_id, point.table, point.address, point.register_count, label
        )
        return Sample(device, key, utcnow(), decode(point, values))

    def check_point(self, device: str, key: str) -> ModbusPoint:
        """Return a point that may be written; raise a ModbusError if none may."""
        point = self.states[device].point(key)
        if not point.writable:
            raise PointNotWritableError(
                f"device {device!r} point {key!r} ({point.table.value} {point.address}) is not "
                "writable: set `writable: true` in its register map to allow writes; nothing "
                "was sent"
            )
        return point

    def check_write(self, device: str, key: str, value: Value) -> list[int] | list[bool]:
        """Return the words a write would send; raise a ModbusError if it may not be sent."""
        point = self.check_point(device, key)
        where = f"device {device!r} point {key!r} ({point.table.value} {point.address})"
        why = limit_violation(value, point.min, point.max, point.allowed)
        if why is not None:
            raise ValueNotAllowedError(f"{where}: {why}; nothing was sent")
        try:
            return encode(point, value)
        except CodecError as exc:
            raise ValueNotAllowedError(f"device {device!r}: {exc}; nothing was sent") from None

    async def write_point(self, device: str, key: str, value: Value) -> None:
        """Write one writable point; refuse non-writable points and bad values before sending."""
        state = self.states[device]
        point = state.point(key)
        words = self.check_write(device, key, value)
        await self._require_connection(state)
        label = f"device {device!r} point {key!r}: "
        unit = state.config.device_id
        if point.table is Table.COIL:
            await self.client.write_coil(unit, point.address, bool(words[0]), label)
        else:
            await self.client.write_registers(unit, point.address, [int(w) for w in words], label)


async def _wait(stopping: asyncio.Event, delay: float) -> None:
    """Sleep `delay` seconds, or less if `stopping` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), timeout=delay)
