"""Call events from a real Mosquitto into a real PostgreSQL, bad messages counted."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from psycopg import AsyncConnection

from adapters.mqtt.client import BrokerSettings, MqttClient
from collector.calls.mqtt import CallConsumer, events_of
from collector.registry.models import AppRecord
from collector.store import registry


def _event(n: int, app: str = "m1") -> dict[str, str]:
    return {"id": f"q{n}", "ts": "2026-01-15T08:00:00+08:00", "app": app, "outcome": "ok"}


def test_a_message_holds_an_event_an_array_or_an_events_object() -> None:
    assert events_of(b'{"id": "x"}') == [{"id": "x"}]
    assert events_of(b'[{"id": "x"}, 3]') == [{"id": "x"}, 3]
    assert events_of(b'{"events": [{"id": "x"}]}') == [{"id": "x"}]
    assert events_of(b"42") is None
    assert events_of(b"\xff") is None


@pytest.mark.integration
async def test_consumer_stores_events_once_and_counts_bad_messages(
    database_url: str, mqtt_url: str
) -> None:
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        await registry.register(conn, "apps", [AppRecord(key="m1", name="M", kind="algorithm")])
    topic = f"test/{uuid.uuid4().hex[:8]}/calls"
    consumer = CallConsumer(mqtt_url, database_url, "Asia/Shanghai", topic=topic, batch_age=0.1)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(consumer.run(stop, ready=ready))
    await asyncio.wait_for(ready.wait(), 15)
    publisher = MqttClient(BrokerSettings.from_url(mqtt_url), lambda _: None)
    publisher.start()
    try:
        assert await asyncio.to_thread(publisher.wait_connected, 10)
        payloads = [
            json.dumps(_event(1)).encode(),
            json.dumps([_event(2), _event(3), _event(1)]).encode(),
            json.dumps({"events": [_event(4), _event(5, app="nope")]}).encode(),
            b"not json at all",
        ]
        for payload in payloads:
            assert await asyncio.to_thread(publisher.publish_and_wait, topic, payload, 1)
        for _ in range(100):
            if consumer.stats.events >= 6 and consumer.stats.bad_messages >= 1:
                break
            await asyncio.sleep(0.1)
    finally:
        publisher.stop()
        stop.set()
        stats = await asyncio.wait_for(task, 15)
    assert (stats.messages, stats.bad_messages) == (4, 1)
    assert (stats.stored, stats.duplicates, stats.rejected) == (4, 1, 1)
    assert "app 'nope' is not registered" in stats.last_rejections[0]
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute("SELECT sum(calls) FROM call_monthly")
        assert await cur.fetchone() == (4,)
