"""Call events from an MQTT topic: subscribe at QoS 1, batch, store each event once.

A message holds one event (a JSON object), a JSON array of events, or ``{"events": [...]}``.
Messages that are not JSON objects or arrays are counted as bad
(``tally_calls_rejected{source="mqtt", reason="not_json"}``) and dropped; bad events
inside a good message are rejected one by one like on the HTTP route.

paho's network thread hands each message to the event loop and waits while the
queue is full, so a slow store slows the subscription instead of growing memory.
The client (adapters/mqtt/client.py) acknowledges QoS 1 messages when they arrive:
a message received but not yet stored when the process dies is lost unless the
publisher sends it again; a repeat is harmless because events are stored once per id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import AsyncConnection

from adapters.mqtt.client import BrokerSettings, MqttClient, Received
from collector import metrics
from collector.store.calls import MAX_BATCH, CallIngest

log = logging.getLogger(__name__)

DEFAULT_TOPIC = "tally/calls"
_HANDOFF_TIMEOUT = 30.0
_RETRY_DELAY = 1.0


@dataclass(slots=True)
class ConsumerStats:
    """What the consumer did since it started."""

    messages: int = 0
    bad_messages: int = 0
    events: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    last_rejections: list[str] = field(default_factory=list)


def events_of(payload: bytes) -> list[Any] | None:
    """Return the events a message carries, or None when it is not a call message."""
    try:
        parsed = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if isinstance(parsed, list):
        return parsed
    if isinstance(parsed, dict):
        events = parsed.get("events")
        if isinstance(events, list) and set(parsed) == {"events"}:
            return events
        return [parsed]
    return None


class CallConsumer:
    """Subscribes to a topic and stores the call events it receives until stopped."""

    def __init__(
        self,
        broker_url: str,
        dsn: str,
        zone: str,
        *,
        topic: str = DEFAULT_TOPIC,
        qos: int = 1,
        client_id: str = "",
        batch_size: int = 1000,
        batch_age: float = 0.5,
        queue_size: int = 10_000,
        broker_options: dict[str, Any] | None = None,
    ) -> None:
        """Consume `topic` of `broker_url`; broker_options: login and TLS (BrokerSettings)."""
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size {batch_size} is outside 1..{MAX_BATCH}")
        self.topic = topic
        self.qos = qos
        self.stats = ConsumerStats()
        self._dsn = dsn
        self._ingest = CallIngest(zone, source="mqtt")
        self._batch_size = batch_size
        self._batch_age = batch_age
        self._queue: asyncio.Queue[list[Any]] = asyncio.Queue(queue_size)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client = MqttClient(
            BrokerSettings.from_url(broker_url, client_id=client_id, **(broker_options or {})),
            self._on_message,
        )

    def _on_message(self, message: Received) -> None:
        """Parse on paho's thread, then hand the events to the loop (waiting while it is full)."""
        self.stats.messages += 1
        events = events_of(message.payload)
        if events is None:
            self.stats.bad_messages += 1
            metrics.calls_rejected.labels(source="mqtt", reason="not_json").inc()
            log.warning(
                "call message on %s is not JSON or not an event, array or {events: [...]}: dropped",
                message.topic,
            )
            return
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        future = asyncio.run_coroutine_threadsafe(self._queue.put(events), loop)
        try:
            future.result(_HANDOFF_TIMEOUT)
        except Exception:  # the loop is gone or stuck: nothing else can take the message
            log.exception("could not hand a call message to the writer")

    async def run(
        self, stop: asyncio.Event, *, ready: asyncio.Event | None = None
    ) -> ConsumerStats:
        """Consume until `stop` is set, then store what was received and disconnect."""
        self._loop = asyncio.get_running_loop()
        self._client.add_subscription(self.topic, self.qos)
        self._client.start()
        writer = asyncio.create_task(self._write(stop), name="tally-calls-mqtt")
        try:
            subscribed = await asyncio.to_thread(self._client.wait_subscribed, 30.0)
            if not subscribed:
                log.warning("not subscribed to %s after 30 s; still trying", self.topic)
            elif ready is not None:
                ready.set()
            await stop.wait()
        finally:
            await asyncio.to_thread(self._client.stop)
            stop.set()
            await writer
            self._loop = None
        return self.stats

    async def _write(self, stop: asyncio.Event) -> None:
        conn: AsyncConnection[Any] | None = None
        try:
            while not (stop.is_set() and self._queue.empty()):
                batch = await self._collect(stop)
                while batch:
                    try:
                        if conn is None or conn.closed:
                            conn = await AsyncConnection.connect(self._dsn, autocommit=True)
                        await self._store(conn, batch)
                        batch = []
                    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                        log.warning("store unavailable for call events, retrying: %s", exc)
                        if conn is not None:
                            await conn.close()
                        conn = None
                        await asyncio.sleep(_RETRY_DELAY)
        finally:
            if conn is not None:
                await conn.close()

    async def _collect(self, stop: asyncio.Event) -> list[Any]:
        """Gather events until the batch is full, old enough, or stop is set."""
        batch: list[Any] = []
        deadline = time.monotonic() + self._batch_age
        while len(batch) < self._batch_size:
            timeout = deadline - time.monotonic()
            if timeout <= 0 or (stop.is_set() and self._queue.empty()):
                break
            with contextlib.suppress(TimeoutError):
                batch.extend(await asyncio.wait_for(self._queue.get(), min(timeout, 0.1)))
        return batch

    async def _store(self, conn: AsyncConnection[Any], batch: list[Any]) -> None:
        for start in range(0, len(batch), MAX_BATCH):
            result = await self._ingest.ingest(conn, batch[start : start + MAX_BATCH])
            self.stats.events += result.received
            self.stats.stored += result.stored
            self.stats.duplicates += result.duplicates
            self.stats.rejected += len(result.rejected)
            for rejection in result.rejected[:5]:
                log.warning(
                    "call event %s from MQTT rejected: %s", rejection.event_id, rejection.reason
                )
                self.stats.last_rejections = [*self.stats.last_rejections[-19:], rejection.reason]
