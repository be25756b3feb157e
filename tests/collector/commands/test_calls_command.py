"""`tally calls consume`: login and TLS options, checked before anything connects."""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from psycopg import AsyncConnection

from adapters.mqtt.client import BrokerSettings, MqttClient
from collector.calls.mqtt import CallConsumer, ConsumerStats
from collector.cli import build_parser, main
from collector.commands.calls import PASSWORD_VAR, broker_options
from collector.registry.models import AppRecord
from collector.store import registry
from tests.adapters.mqtt.tls_pki import PASSWORD, USER, Site, TestAuthority, secured_broker


def parsed(*options: str) -> argparse.Namespace:
    return build_parser().parse_args(
        ["calls", "consume", "--broker", "mqtts://127.0.0.1:8883", *options]
    )


def test_the_password_comes_from_a_file_or_the_environment(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-file\n")
    args = parsed("--username", "u", "--password-file", str(secret))
    assert broker_options(args, {PASSWORD_VAR: "from-env"}) == {
        "username": "u",
        "password": "from-file",
    }
    from_env = broker_options(parsed("--username", "u"), {PASSWORD_VAR: "from-env"})
    assert from_env == {"username": "u", "password": "from-env"}
    assert broker_options(parsed(), {}) == {}


def test_tls_files_are_checked_and_turn_tls_on(tmp_path: Path) -> None:
    ca = TestAuthority(tmp_path / "pki")
    client = ca.issue("c", "c", server=False)
    args = parsed(
        "--ca-file", str(ca.ca_file), "--cert-file", str(client.cert_file),
        "--key-file", str(client.key_file),
    )  # fmt: skip
    assert broker_options(args, {}) == {
        "tls": True,
        "ca_file": str(ca.ca_file),
        "cert_file": str(client.cert_file),
        "key_file": str(client.key_file),
    }


@pytest.mark.parametrize(
    ("options", "environ", "message"),
    [
        (("--password-file", "{missing}"), {}, "--password-file {missing}: No such file"),
        ((), {PASSWORD_VAR: "x"}, f"a password ({PASSWORD_VAR}) needs --username"),
        (("--cert-file", "c.pem"), {}, "--cert-file and --key-file go together"),
        (("--ca-file", "{missing}"), {}, "--ca-file {missing}: no such file"),
        (("--session", "persistent"), {}, "--session persistent needs --client-id"),
    ],
)
def test_bad_options_exit_2_naming_the_option(
    options: tuple[str, ...],
    environ: dict[str, str],
    message: str,
    *,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing = tmp_path / "missing"
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    argv = ["calls", "consume", "--broker", "mqtts://127.0.0.1:1", "--dsn", "postgresql://x"]
    assert main([*argv, *(o.format(missing=missing) for o in options)]) == 2
    assert message.format(missing=missing) in capsys.readouterr().err


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with secured_broker(tmp_path_factory.mktemp("pki")) as secured:
        yield secured


async def register_app(dsn: str) -> None:
    async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
        await registry.register(conn, "apps", [AppRecord(key="m1", name="M", kind="algorithm")])


def call(event_id: str) -> dict[str, str]:
    return {"id": event_id, "ts": "2026-01-15T08:00:00+08:00", "app": "m1", "outcome": "ok"}


async def publish_calls(
    url: str, options: dict[str, Any], topic: str, payloads: list[bytes]
) -> None:
    """Publish each payload at QoS 1 and wait until the broker has it."""
    publisher = MqttClient(BrokerSettings.from_url(url, **options), lambda _: None)
    publisher.start()
    try:
        assert await asyncio.to_thread(publisher.wait_connected, 10), publisher.last_error
        for payload in payloads:
            assert await asyncio.to_thread(publisher.publish_and_wait, topic, payload, 1)
    finally:
        publisher.stop()


async def consume_until(
    consumer: CallConsumer,
    done: Callable[[ConsumerStats], bool],
    publish: Callable[[], Awaitable[None]] | None = None,
) -> tuple[ConsumerStats, bool]:
    """Run `consumer` until subscribed, call `publish`, wait for `done(stats)` (10 s), stop."""
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(consumer.run(stop, ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 15)
        if publish is not None:
            await publish()
        for _ in range(100):
            if done(consumer.stats):
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        stats = await asyncio.wait_for(task, 15)
    return stats, done(stats)


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_calls_consumed_from_a_broker_with_tls_and_login(
    site: Site, database_url: str, tmp_path: Path
) -> None:
    await register_app(database_url)
    secret = tmp_path / "password"
    secret.write_text(PASSWORD)
    tls = site.tls()
    args = parsed(
        "--username", USER, "--password-file", str(secret), "--ca-file", tls["ca_file"],
        "--cert-file", tls["cert_file"], "--key-file", tls["key_file"],
    )  # fmt: skip
    options = broker_options(args, {})
    topic = f"test/{uuid.uuid4().hex[:8]}/calls"
    consumer = CallConsumer(
        site.broker.url, database_url, "Asia/Shanghai", topic=topic, batch_age=0.1,
        broker_options=options,
    )  # fmt: skip
    payload = json.dumps([call(f"t{n}") for n in range(50)]).encode()

    async def publish() -> None:
        await publish_calls(site.broker.url, options, topic, [payload])

    stats, done = await consume_until(consumer, lambda stats: stats.stored >= 50, publish)
    assert done and (stats.messages, stats.stored, stats.rejected) == (1, 50, 0)


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_a_persistent_session_keeps_the_calls_published_while_away(
    database_url: str, mqtt_url: str
) -> None:
    await register_app(database_url)
    topic = f"test/{uuid.uuid4().hex[:8]}/calls"
    client_id = f"calls-{uuid.uuid4().hex[:8]}"
    args = build_parser().parse_args(
        ["calls", "consume", "--broker", mqtt_url, "--client-id", client_id,
         "--session", "persistent"]
    )  # fmt: skip
    options = broker_options(args, {})

    def consumer() -> CallConsumer:
        return CallConsumer(
            mqtt_url, database_url, "Asia/Shanghai", topic=topic, batch_age=0.1,
            client_id=client_id, broker_options=options,
        )  # fmt: skip

    # First run: the broker learns the session and its subscription; then the consumer goes.
    await consume_until(consumer(), lambda stats: True)
    away = [json.dumps(call(f"away{n}")).encode() for n in range(20)]
    await publish_calls(mqtt_url, {}, topic, away)  # while no consumer is connected
    stats, done = await consume_until(consumer(), lambda stats: stats.stored >= 20)
    assert done and (stats.messages, stats.stored, stats.rejected) == (20, 20, 0)
