"""The OPC UA adapter: connect, discover, subscribe (or poll), reconnect, read and write.

One adapter per configured connection. `run()` keeps a session alive until `stop()`:
on connection loss or a server restart it backs off, reconnects, re-browses (so
Objects are found again by browse path even when the server gave them new NodeIds),
recreates the subscription and resumes, with no restart of the collector.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from adapters.base import (
    NULL_OBSERVER,
    AdapterObserver,
    DeviceEvent,
    DeviceEventKind,
    DeviceInfo,
    Quality,
    Sample,
    Sink,
    Value,
    new_sample,
    utcnow,
)
from adapters.control import MethodCheck
from adapters.opcua.client import (
    WIRE_ERRORS,
    ConnectError,
    DataSubscription,
    MonitorRequest,
    OpcUaClient,
    SubscriptionLost,
    SubscriptionsUnsupported,
    node_gone_statuses,
    status_name,
)
from adapters.opcua.config import DataMode, Method, OpcUaSource
from adapters.opcua.discovery import (
    PROTOCOL,
    DiscoveryError,
    DiscoveryResult,
    FoundDevice,
    FoundPoint,
    discover,
)
from adapters.opcua.errors import (
    CallRejected,
    NotConnected,
    PointNotWritable,
    RequestTimeout,
    UnknownDevice,
    UnknownMethod,
    UnknownPoint,
    WriteRejected,
)
from adapters.opcua.nodes import Reading, normalize_for_write, quality_of
from adapters.opcua.pki import ServerNotTrusted, TrustStore, ensure_client_certificate

log = logging.getLogger(__name__)

_TICK = 0.5
_EARLY_REBROWSE_SPACING = 2.0  # s between re-browses brought forward by a node that is gone
NODE_GONE = node_gone_statuses()


class _Rebuild(Exception):
    """Data acquisition must be rebuilt (silent or lost subscription)."""


@dataclass(frozen=True, slots=True)
class _Target:
    device: str
    point: str
    node_id: str
    numeric: bool


def _sample(target: _Target, reading: Reading) -> Sample:
    return new_sample(
        target.device,
        target.point,
        reading.source_ts or reading.server_ts or utcnow(),
        reading.value,
        reading.quality,
        True,
    )


class OpcUaAdapter:
    """Collects every device behind one OPC UA server endpoint into a sink."""

    protocol = PROTOCOL

    def __init__(
        self,
        source: OpcUaSource,
        sink: Sink,
        *,
        data_dir: Path | None = None,
        observer: AdapterObserver = NULL_OBSERVER,
    ) -> None:
        self.source = source
        self._sink = sink
        self._observer = observer
        self._reported_up: bool | None = None
        self._bad_points: set[tuple[str, str]] = set()
        self._node_gone = False
        self._last_browse = 0.0
        pki = source.pki_dir
        if not pki.is_absolute() and data_dir is not None:
            pki = data_dir / pki
        self.pki_dir = pki
        self._trust = TrustStore(pki, source.trust.mode)
        self._client: OpcUaClient | None = None
        self._found: dict[str, FoundDevice] = {}
        self._registered: dict[str, DeviceInfo] = {}
        self._online: set[str] = set()
        self._stopping = asyncio.Event()
        self._ready = asyncio.Event()
        self.last_error: str | None = None
        self._last_logged: str | None = None
        self.sessions = 0
        self.rebuilds = 0
        self.data_mode: DataMode | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def devices(self) -> Mapping[str, DeviceInfo]:
        """Devices registered and not vanished, by key."""
        return dict(self._registered)

    @property
    def connected(self) -> bool:
        """True while a session is up and collecting."""
        return self._ready.is_set() and self._client is not None and self._client.alive

    async def wait_ready(self, within: float) -> bool:
        """Wait until a session is up and collecting; False on timeout."""
        try:
            await asyncio.wait_for(self._ready.wait(), within)
        except TimeoutError:
            return False
        return True

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._task is not None

    async def start(self) -> None:
        """Start collecting in the background (idempotent); never touches the network itself."""
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._supervise(), name=f"opcua-{self.source.id}")

    async def run(self) -> None:
        """Collect until stop() is called."""
        await self.start()
        task = self._task
        if task is not None:
            await asyncio.shield(task)

    async def stop(self, within: float = 10.0) -> None:
        """End the session, emit OFFLINE for its devices, and wait for the loop to finish."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), within)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> OpcUaAdapter:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _supervise(self) -> None:
        """Connect, discover, acquire; on any failure back off and start over."""
        log.info("OPC UA %s (%s): %s", self.source.id, self.source.endpoint, self._trust.describe())
        delay = self.source.reconnect.initial_delay
        failing = False
        try:
            while not self._stopping.is_set():
                established = self.sessions
                try:
                    await self._session()
                except ServerNotTrusted as exc:
                    self._note_failure(str(exc), failing, logging.ERROR)
                    failing = True
                except (ConnectError, DiscoveryError) as exc:
                    self._note_failure(str(exc), failing, logging.WARNING)
                    failing = True
                except Exception as exc:
                    # The supervision boundary: whatever broke the session, reconnect.
                    detail = f"OPC UA {self.source.endpoint}: session ended: {exc!r}"
                    self._note_failure(detail, failing, logging.WARNING)
                    log.debug("session failure", exc_info=True)
                    failing = True
                finally:
                    await self._end_session()
                if self.sessions > established:
                    delay = self.source.reconnect.initial_delay
                if self._stopping.is_set():
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                delay = min(delay * 2, self.source.reconnect.max_delay)
        finally:
            await self._end_session()

    def _note_failure(self, message: str, repeated: bool, level: int) -> None:
        self.last_error = message
        if repeated and message == self._last_logged:
            log.debug("%s (retrying)", message)
            return
        self._last_logged = message
        log.log(level, "%s; retrying with back-off", message)

    async def _session(self) -> None:
        certificate = await asyncio.to_thread(
            ensure_client_certificate, self.pki_dir, self.source.application_uri
        )
        client = OpcUaClient(self.source, certificate, self._trust)
        self._client = client
        application_uri = await client.connect()
        await self._reconcile(await self._discover(client, application_uri))
        await self._acquire(client)

    async def _discover(self, client: OpcUaClient, application_uri: str) -> DiscoveryResult:
        started = time.monotonic()
        self._node_gone = False
        result = await discover(client, self.source, application_uri)
        self._last_browse = time.monotonic()
        self._observer.request_observed(PROTOCOL, "browse", self._last_browse - started)
        return result

    def _report_connection(self, up: bool) -> None:
        """Tell the observer when the session's state differs from what it last heard."""
        if self._reported_up is not up:
            self._reported_up = up
            self._observer.connection_changed(PROTOCOL, self.source.endpoint, up)

    def _collecting(self, client: OpcUaClient) -> None:
        """Note that a session is up and its data acquisition started."""
        self.sessions += 1
        self.last_error = None
        self._last_logged = None
        self._ready.set()
        self._report_connection(True)
        log.info(
            "OPC UA %s: connected to %s (%s): %d device(s), %d point(s), %s",
            self.source.id,
            self.source.endpoint,
            client.application_uri,
            len(self._found),
            sum(len(d.points) for d in self._found.values()),
            "subscribed" if self.data_mode is DataMode.SUBSCRIBE else "polling",
            extra={"protocol": PROTOCOL, "endpoint": self.source.endpoint},
        )

    async def _end_session(self) -> None:
        self._ready.clear()
        self._report_connection(False)
        self._bad_points.clear()
        client, self._client = self._client, None
        if client is not None:
            await client.disconnect()
        for key in sorted(self._online):
            await self._sink.put(
                DeviceEvent(DeviceEventKind.OFFLINE, key, utcnow(), detail="OPC UA session ended")
            )
        if self._online:
            log.warning(
                "OPC UA %s: %d device(s) offline: session to %s ended",
                self.source.id,
                len(self._online),
                self.source.endpoint,
            )
        self._online.clear()

    async def _reconcile(self, result: DiscoveryResult) -> None:
        """Register new or changed devices, mark vanished ones, report online ones."""
        found = {d.info.key: d for d in result.devices}
        now = utcnow()
        for key, device in found.items():
            if self._registered.get(key) != device.info:
                self._registered[key] = device.info
                await self._sink.put(DeviceEvent(DeviceEventKind.REGISTERED, key, now, device.info))
        if result.complete:
            explicit = set(result.missing)
            for key in sorted(set(self._registered) - set(found) - explicit):
                del self._registered[key]
                self._online.discard(key)
                log.warning(
                    "OPC UA %s: device %s vanished from the server",
                    self.source.id,
                    key,
                    extra={"device": key},
                )
                await self._sink.put(
                    DeviceEvent(
                        DeviceEventKind.VANISHED,
                        key,
                        now,
                        detail=f"no longer found when browsing {self.source.endpoint}",
                    )
                )
        for key in sorted(set(self._online) - set(found)):
            self._online.discard(key)
            await self._sink.put(
                DeviceEvent(
                    DeviceEventKind.OFFLINE, key, now, detail="not found by the last browse"
                )
            )
        for key in sorted(set(found) - self._online):
            self._online.add(key)
            await self._sink.put(DeviceEvent(DeviceEventKind.ONLINE, key, now))
        self._found = found

    def _targets(self) -> dict[int, _Target]:
        targets: dict[int, _Target] = {}
        for device in sorted(self._found.values(), key=lambda d: d.info.key):
            for point in device.points:
                targets[len(targets) + 1] = _Target(
                    device.info.key, point.key, point.node_id, point.numeric
                )
        return targets

    async def _acquire(self, client: OpcUaClient) -> None:
        """Subscribe or poll, re-browse on schedule, rebuild silent subscriptions."""
        interval = self.source.discovery.interval
        targets = self._targets()
        subscription, polled = await self._start_data(client, targets)
        self._collecting(client)
        try:
            while not self._stopping.is_set():
                until = time.monotonic() + interval if interval > 0 else float("inf")
                rebuild = False
                try:
                    await self._pump(client, targets, subscription, polled, until)
                except _Rebuild as exc:
                    log.warning("OPC UA %s: %s; re-browsing and resubscribing", self.source.id, exc)
                    self.rebuilds += 1
                    rebuild = True
                if self._stopping.is_set():
                    return
                await self._reconcile(await self._discover(client, client.application_uri or ""))
                new_targets = self._targets()
                if rebuild or new_targets != targets:
                    if subscription is not None:
                        await subscription.close()
                        subscription = None
                    targets = new_targets
                    current = {(t.device, t.point) for t in targets.values()}
                    self._bad_points &= current
                    subscription, polled = await self._start_data(client, targets)
        finally:
            if subscription is not None:
                await subscription.close()

    async def _start_data(
        self, client: OpcUaClient, targets: dict[int, _Target]
    ) -> tuple[DataSubscription | None, list[int]]:
        mode = self.source.data.mode
        if not targets or mode is DataMode.POLL:
            self.data_mode = DataMode.POLL
            return None, sorted(targets)
        requests = [MonitorRequest(h, t.node_id, t.numeric) for h, t in targets.items()]
        try:
            subscription, refused = await client.subscribe(requests)
        except SubscriptionsUnsupported as exc:
            if mode is DataMode.SUBSCRIBE:
                raise
            log.warning(
                "OPC UA %s: %s; polling every %.3g s instead",
                self.source.id,
                exc,
                self.source.data.poll_interval,
            )
            self.data_mode = DataMode.POLL
            return None, sorted(targets)
        self.data_mode = DataMode.SUBSCRIBE
        for handle, status in sorted(refused.items()):
            target = targets[handle]
            log.warning(
                "OPC UA %s: device %s point %s (%s): monitored item refused with %s%s",
                self.source.id,
                target.device,
                target.point,
                target.node_id,
                status_name(status),
                "; polling it" if mode is DataMode.AUTO else "",
                extra={"device": target.device, "point": target.point},
            )
        polled = sorted(refused) if mode is DataMode.AUTO else []
        return subscription, polled

    async def _pump(
        self,
        client: OpcUaClient,
        targets: dict[int, _Target],
        subscription: DataSubscription | None,
        polled: list[int],
        until: float,
    ) -> None:
        """Move data to the sink until `until`; raise when the session or subscription dies."""
        poll_interval = self.source.data.poll_interval
        next_poll = time.monotonic()
        while not self._stopping.is_set():
            now = time.monotonic()
            if now >= until:
                return
            if not client.alive:
                raise ConnectionError(f"OPC UA {self.source.endpoint}: connection lost")
            if self._node_gone and now - self._last_browse >= _EARLY_REBROWSE_SPACING:
                log.info(
                    "OPC UA %s: a monitored node is gone from %s; re-browsing now",
                    self.source.id,
                    self.source.endpoint,
                    extra={"protocol": PROTOCOL, "endpoint": self.source.endpoint},
                )
                return
            if polled and now >= next_poll:
                readings = await client.read([targets[h].node_id for h in polled])
                self._observer.request_observed(PROTOCOL, "poll", time.monotonic() - now)
                await self._put_many(
                    (targets[handle], reading)
                    for handle, reading in zip(polled, readings, strict=True)
                )
                next_poll = max(next_poll + poll_interval, time.monotonic())
            wait = min(_TICK, max(0.0, until - time.monotonic()))
            if polled:
                wait = min(wait, max(0.0, next_poll - time.monotonic()))
            if subscription is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), wait)
                continue
            if subscription.silent_for > subscription.keepalive_timeout:
                raise _Rebuild(
                    f"subscription silent for {subscription.silent_for:.1f} s "
                    f"(keep-alive due within {subscription.keepalive_timeout:.1f} s)"
                )
            try:
                changes = await subscription.next_changes(max(wait, 0.01))
            except SubscriptionLost as exc:
                raise _Rebuild(str(exc)) from exc
            get = targets.get
            await self._put_many(
                (target, reading)
                for handle, reading in changes
                if (target := get(handle)) is not None
            )

    async def _put_many(self, readings: Iterable[tuple[_Target, Reading]]) -> None:
        """Put the readings' samples in one call; log once when a point turns Bad and back."""
        samples = []
        for target, reading in readings:
            if reading.status or self._bad_points:
                self._note_quality(target, reading)
            samples.append(_sample(target, reading))
        if samples:
            await self._sink.put_many(samples)

    def _note_quality(self, target: _Target, reading: Reading) -> None:
        where = (target.device, target.point)
        bad = reading.quality is Quality.BAD
        if bad and where not in self._bad_points:
            self._bad_points.add(where)
            # The address space changed under us: re-browse soon rather than at the interval.
            self._node_gone = self._node_gone or reading.status in NODE_GONE
            log.warning(
                "OPC UA %s: device %s point %s reports %s; its samples are stored as BAD "
                "quality and do not count as good",
                self.source.id,
                target.device,
                target.point,
                status_name(reading.status),
                extra={"device": target.device, "point": target.point},
            )
        elif not bad and where in self._bad_points:
            self._bad_points.discard(where)
            log.info(
                "OPC UA %s: device %s point %s reports %s again",
                self.source.id,
                target.device,
                target.point,
                status_name(reading.status),
                extra={"device": target.device, "point": target.point},
            )

    def _point(self, device: str, point: str) -> tuple[FoundDevice, FoundPoint]:
        found = self._found.get(device)
        if found is None:
            known = ", ".join(sorted(self._found)) or "none"
            raise UnknownDevice(
                f"OPC UA {self.source.id}: no device {device!r} on this connection (known: {known})"
            )
        for candidate in found.points:
            if candidate.key == point:
                return found, candidate
        keys = ", ".join(p.key for p in found.points) or "none"
        raise UnknownPoint(f"OPC UA device {device!r} has no point {point!r} (points: {keys})")

    def _live_client(self, device: str) -> OpcUaClient:
        client = self._client
        if client is None or not self._ready.is_set() or not client.alive:
            raise NotConnected(
                f"OPC UA device {device!r}: the session to {self.source.endpoint} is down "
                f"(last error: {self.last_error or 'none'}); the adapter is reconnecting"
            )
        return client

    def controls(self, device: str) -> bool:
        """Report whether `device` is registered through this connection (control contract)."""
        return device in self._registered

    def _writable(self, device: str, point: str) -> tuple[FoundPoint, str]:
        _, found = self._point(device, point)
        where = f"OPC UA device {device!r} point {point!r}"
        if not found.info.writable:
            raise PointNotWritable(
                f"{where} is read-only (the server's access level does not let this user "
                "write it); nothing was sent"
            )
        target = f"{device}/{point}"
        if not any(fnmatch.fnmatchcase(target, glob) for glob in self.source.control.writable):
            raise PointNotWritable(
                f"{where} is writable on the server but not allowed by the configuration: add "
                f"a glob matching {target!r} to control.writable of connection "
                f"{self.source.id!r}; nothing was sent"
            )
        return found, where

    def check_point(self, device: str, point: str) -> None:
        """Raise the error any write to this point would end with; no I/O."""
        self._writable(device, point)

    def check_write(self, device: str, point: str, value: Value) -> None:
        """Raise the error a write would end with before sending anything; no I/O."""
        found, where = self._writable(device, point)
        normalize_for_write(value, found.info.data_type, where)

    async def read(self, device: str, point: str) -> Sample:
        """Read one point now and return it as a sample (not put into the sink)."""
        _, found = self._point(device, point)
        client = self._live_client(device)
        where = f"OPC UA device {device!r} point {point!r}: read"
        started = time.monotonic()
        async with _control_errors(where, self.source.timeout):
            [reading] = await client.read([found.node_id])
        self._observer.request_observed(PROTOCOL, "read", time.monotonic() - started)
        return _sample(_Target(device, point, found.node_id, found.numeric), reading)

    async def write(self, device: str, point: str, value: Value) -> None:
        """Write one point; refuses read-only, not allowed points and unfit values before sending.

        Returns None: the server's status only says it accepted the write, so the control
        service verifies by reading back.
        """
        found, where = self._writable(device, point)
        normalized = normalize_for_write(value, found.info.data_type, where)
        client = self._live_client(device)
        started = time.monotonic()
        async with _control_errors(f"{where}: write", self.source.timeout):
            status = await client.write(found.node_id, normalized, found.info.data_type)
        self._observer.request_observed(PROTOCOL, "write", time.monotonic() - started)
        if quality_of(status) is not Quality.GOOD:
            raise WriteRejected(
                f"{where}: the server refused writing {value!r}: {status_name(status)}"
            )

    def _method(self, device: str, method: str) -> Method:
        for configured in self.source.control.methods:
            if configured.key == method and configured.serves(device):
                return configured
        keys = ", ".join(m.key for m in self.source.control.methods if m.serves(device))
        raise UnknownMethod(
            f"OPC UA device {device!r} has no configured method {method!r} (configured: "
            f"{keys or 'none'}; add it to control.methods of connection {self.source.id!r}); "
            "nothing was sent"
        )

    def check_method(self, device: str, method: str) -> MethodCheck:
        """Return how a call of a configured method is verified; no I/O."""
        configured = self._method(device, method)
        self._point(device, configured.verify.point)
        return MethodCheck(
            configured.key,
            tuple(configured.arguments),
            configured.verify.point,
            configured.verify.equals,
        )

    async def call(self, device: str, method: str) -> list[Value]:
        """Call a configured method of a device now; return its output arguments."""
        configured = self._method(device, method)
        found, _ = self._point(device, configured.verify.point)
        client = self._live_client(device)
        parts = [p for p in configured.object.split("/") if p]
        start: str | None = found.node_id
        if parts[:1] == ["Objects"]:
            start, parts = None, parts[1:]
        where = f"OPC UA device {device!r} method {method!r} ({configured.method})"
        started = time.monotonic()
        async with _control_errors(f"{where}: call", self.source.timeout):
            try:
                status, outputs = await client.call(
                    start, parts, configured.method, configured.arguments
                )
            except LookupError as exc:
                raise UnknownMethod(f"{where}: not found on the server: {exc}") from None
        self._observer.request_observed(PROTOCOL, "call", time.monotonic() - started)
        if quality_of(status) is not Quality.GOOD:
            raise CallRejected(f"{where}: the server refused the call: {status_name(status)}")
        return outputs


@contextlib.asynccontextmanager
async def _control_errors(where: str, within: float) -> AsyncIterator[None]:
    """Turn the wire's errors during an on-demand read or write into control errors."""
    try:
        yield
    except TimeoutError:
        raise RequestTimeout(f"{where}: no answer within {within:g} s") from None
    except WIRE_ERRORS as exc:
        raise NotConnected(f"{where}: the session failed: {exc!r}") from None


class OpcUaAdapters:
    """Every configured OPC UA server, run together (the registry's adapter for `opcua`)."""

    protocol = PROTOCOL

    def __init__(
        self,
        sources: Sequence[OpcUaSource],
        sink: Sink,
        *,
        data_dir: Path | None = None,
        observer: AdapterObserver = NULL_OBSERVER,
    ) -> None:
        self.adapters = [
            OpcUaAdapter(s, sink, data_dir=data_dir, observer=observer)
            for s in sources
            if s.enabled
        ]

    async def run(self) -> None:
        """Run every server connection until stop() is called."""
        await asyncio.gather(*(a.run() for a in self.adapters))

    async def stop(self) -> None:
        """Stop every server connection."""
        await asyncio.gather(*(a.stop() for a in self.adapters))

    def _serving(self, device: str) -> OpcUaAdapter:
        for adapter in self.adapters:
            if adapter.controls(device):
                return adapter
        raise UnknownDevice(
            f"no OPC UA connection has registered device {device!r} "
            f"(connections: {', '.join(a.source.id for a in self.adapters) or 'none'})"
        )

    def controls(self, device: str) -> bool:
        """Report whether one of the connections has registered `device` (control contract)."""
        return any(a.controls(device) for a in self.adapters)

    def check_point(self, device: str, point: str) -> None:
        """Raise the error any write to this point would end with; no I/O."""
        self._serving(device).check_point(device, point)

    def check_write(self, device: str, point: str, value: Value) -> None:
        """Raise the error a write would end with before sending anything; no I/O."""
        self._serving(device).check_write(device, point, value)

    async def read(self, device: str, point: str) -> Sample:
        """Read one point of a device now, through the connection that registered it."""
        return await self._serving(device).read(device, point)

    async def write(self, device: str, point: str, value: Value) -> None:
        """Write one point of a device, through the connection that registered it."""
        await self._serving(device).write(device, point, value)

    def check_method(self, device: str, method: str) -> MethodCheck:
        """Return how a call of a configured method is verified; no I/O."""
        return self._serving(device).check_method(device, method)

    async def call(self, device: str, method: str) -> list[Value]:
        """Call a configured method of a device, through the connection that registered it."""
        return await self._serving(device).call(device, method)
