"""A simulated device that publishes JSON telemetry and a retained identification message.

Topics (the layout `adapters/mqtt/sample.yaml` maps; `plant` is the spec's topic_root):
  plant/<industry>/<type>/<device>/identity   retained {"name", "type", ..., "writable": [...]}
  plant/<industry>/<type>/<device>/telemetry  {"ts": epoch ms, "values": {point: value}}
  plant/<industry>/<type>/<device>/set        command {"request_id", "point", "value"}
  plant/<industry>/<type>/<device>/ack        {"request_id", "point", "value", "ok", "error"}

The ack echoes the command's request id (when it has one) and carries the value the
device holds after the command: refused writes (not writable, wrong type, or a point
set to `on_write: refuse`) answer `"ok": false` with an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from adapters.base import utcnow
from adapters.mqtt.client import BrokerSettings, MqttClient, Received
from simulators.mqtt.devices import RECONNECT_MAX, DeviceSpec, DeviceValues

log = logging.getLogger(__name__)


def topic_template(root: str, leaf: str) -> str:
    """Return the collector's topic template of one message kind under `root`."""
    return f"{root}/{{industry}}/{{type}}/{{device}}/{leaf}"


def device_topic(spec: DeviceSpec, leaf: str) -> str:
    """Return the topic of one of a device's message kinds."""
    return f"{spec.topic_root}/{spec.industry}/{spec.type}/{spec.id}/{leaf}"


DEVICES_PER_CONNECTION = 100
"""JSON devices sharing one broker connection, as behind a gateway.

paho waits on its sockets with select(), which cannot watch descriptors above 1,023: with
three descriptors per client, one process holds at most about 340 paho connections, so a
connection per device would cap a simulated fleet there."""


class SharedConnection:
    """One broker connection that up to DEVICES_PER_CONNECTION simulated devices use."""

    def __init__(self, broker_url: str, client_id: str) -> None:
        self._handlers: dict[str, Callable[[Received], None]] = {}
        self.client = MqttClient(
            BrokerSettings.from_url(
                broker_url, client_id=client_id, reconnect_max_delay=RECONNECT_MAX
            ),
            self._on_message,
        )

    def listen(self, topic: str, handler: Callable[[Received], None]) -> None:
        """Subscribe to one exact topic (QoS 1) and hand its messages to `handler`."""
        self._handlers[topic] = handler
        self.client.add_subscription(topic, 1)

    async def start(self, within: float) -> None:
        """Connect and wait until the broker acknowledged every subscription."""
        self.client.start()
        if not await asyncio.to_thread(self.client.wait_subscribed, within):
            raise TimeoutError(
                f"{self.client.settings.client_id}: broker not reached in {within} s"
            )

    async def stop(self) -> None:
        """Disconnect."""
        await asyncio.to_thread(self.client.stop)

    def _on_message(self, message: Received) -> None:
        handler = self._handlers.get(message.topic or "")
        if handler is not None:
            handler(message)


class JsonDevice:
    """One device publishing JSON on a connection it may share with other devices."""

    def __init__(self, connection: SharedConnection, spec: DeviceSpec) -> None:
        self.spec = spec
        self.values = DeviceValues(spec)
        self.published = 0
        self.writes: list[tuple[str, Any]] = []
        self._start = time.monotonic()
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._commands: list[Received] = []
        self._task: asyncio.Task[None] | None = None
        self._client = connection.client
        connection.listen(device_topic(spec, "set"), self._on_message)

    def start(self) -> None:
        """Publish the retained identification and start the telemetry loop (connected)."""
        identity: dict[str, Any] = {
            **self.spec.classification(),
            "simulated": True,
            "writable": self.spec.writable(),
        }
        self._client.publish(
            device_topic(self.spec, "identity"), json.dumps(identity).encode(), 1, retain=True
        )
        self._task = asyncio.create_task(self._run(), name=f"sim-json-{self.spec.id}")

    async def stop(self, clear_identity: bool = True) -> None:
        """Stop publishing; by default also clear the retained identification."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if clear_identity and self._client.connected:
            await asyncio.to_thread(
                self._client.publish_and_wait, device_topic(self.spec, "identity"), b"", 1, True
            )

    def publish_telemetry(self) -> None:
        """Publish one telemetry message with every point now."""
        t = time.monotonic() - self._start
        body = {"ts": round(utcnow().timestamp() * 1000), "values": self.values.values(t)}
        self._client.publish(device_topic(self.spec, "telemetry"), json.dumps(body).encode(), 1)
        self.published += 1

    async def _run(self) -> None:
        next_data = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_data - time.monotonic()))
            self._wake.clear()
            commands, self._commands = self._commands, []
            for message in commands:
                self._command(message)
            if time.monotonic() >= next_data:
                self.publish_telemetry()
                next_data = time.monotonic() + self.spec.interval

    def _on_message(self, message: Received) -> None:
        self._loop.call_soon_threadsafe(self._enqueue, message)

    def _enqueue(self, message: Received) -> None:
        self._commands.append(message)
        self._wake.set()

    def _command(self, message: Received) -> None:
        try:
            body = json.loads(message.payload)
            point, value = str(body["point"]), body["value"]
            request_id = body.get("request_id")
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("device %s: ignoring malformed command", self.spec.id)
            return
        outcome = self.values.write(point, value)
        if outcome.error is None:
            self.writes.append((point, value))
        ack: dict[str, Any] = {"point": point, "value": outcome.confirmed, "ok": not outcome.error}
        if request_id is not None:
            ack = {"request_id": request_id, **ack}
        if outcome.error is not None:
            ack["error"] = outcome.error
            log.info(
                "device %s: refused write of %r to %s: %s", self.spec.id, value, point,
                outcome.error, extra={"device": self.spec.id, "point": point},
            )  # fmt: skip
        self._client.publish(device_topic(self.spec, "ack"), json.dumps(ack).encode(), 1)
        if outcome.error is None:
            self.publish_telemetry()
