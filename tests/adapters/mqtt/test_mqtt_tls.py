"""TLS, client certificates and passwords against a real Mosquitto; failures said plainly."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Sample
from adapters.mqtt.adapter import MqttAdapter
from adapters.mqtt.client import BrokerSettings, MqttClient
from adapters.mqtt.config import MqttConnection
from collector.embedded.mosquitto import ThrowawayMosquitto
from collector.embedded.ports import free_port
from tests.adapters.mqtt.tls_pki import PASSWORD, USER, Site, TestAuthority, secured_broker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

CLIENT_LOG = "adapters.mqtt.client"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with secured_broker(tmp_path_factory.mktemp("pki")) as secured:
        yield secured


class ListSink:
    """Collects records."""

    def __init__(self) -> None:
        self.records: list[Any] = []

    async def put(self, record: Any) -> None:
        self.records.append(record)

    async def put_many(self, records: Any) -> None:
        self.records.extend(records)

    def values(self) -> list[Any]:
        return [r.value for r in self.records if isinstance(r, Sample)]


class Observer:
    """Records connection changes as the collector's metrics observer sees them."""

    def __init__(self) -> None:
        self.changes: list[bool] = []

    def connection_changed(self, protocol: str, endpoint: str, up: bool) -> None:
        self.changes.append(up)

    def request_observed(self, protocol: str, kind: str, seconds: float) -> None:
        pass


def connection(url: str, root: str, **overrides: Any) -> MqttConnection:
    config: dict[str, Any] = {
        "id": f"tls{uuid.uuid4().hex[:6]}",
        "protocol": "mqtt",
        "url": url,
        "reconnect_min_delay": 1,
        "reconnect_max_delay": 1,
        "topics": [{"topic": root + "/{device}/t", "points": [{"key": "n", "path": "$.n"}]}],
    }
    config.update(overrides)
    return MqttConnection.model_validate(config)


@asynccontextmanager
async def started(config: MqttConnection) -> AsyncIterator[tuple[MqttAdapter, ListSink, Observer]]:
    sink, observer = ListSink(), Observer()
    adapter = MqttAdapter(config, sink, observer=observer)
    await adapter.start()
    try:
        yield adapter, sink, observer
    finally:
        await adapter.stop()


async def until(condition: Any, within: float) -> bool:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def test_tls_with_a_client_certificate_and_a_password_delivers_every_message(
    site: Site,
) -> None:
    root = f"tls{uuid.uuid4().hex[:6]}"
    credentials = {"username": USER, "password": PASSWORD, "tls": site.tls()}
    config = connection(site.broker.url, root, **credentials)
    assert site.broker.url.startswith("mqtts://")
    async with started(config) as (adapter, sink, observer):
        assert await adapter.wait_ready(10), adapter.stats.last_error
        publisher = MqttClient(
            BrokerSettings.from_url(
                site.broker.url,
                client_id=f"pub-{root}",
                username=USER,
                password=PASSWORD,
                ca_file=str(site.ca.ca_file),
                cert_file=str(site.client.cert_file),
                key_file=str(site.client.key_file),
            ),
            lambda _: None,
        )
        publisher.start()
        try:
            assert publisher.wait_connected(10), publisher.last_error
            count = 5_000  # many TLS records a read: the bulk receive path, over TLS
            for n in range(count - 1):
                publisher.publish(f"{root}/d{n % 10}/t", json.dumps({"n": n}).encode(), qos=1)
            assert await asyncio.to_thread(
                publisher.publish_and_wait, f"{root}/d9/t", json.dumps({"n": count - 1}).encode()
            )
        finally:
            publisher.stop()
        assert await until(lambda: len(sink.values()) == count, 20), len(sink.values())
        assert sorted(sink.values()) == [float(n) for n in range(count)]
        stats = adapter.stats
        assert stats.connected and stats.last_error is None and not stats.rejections
        assert observer.changes == [True]


LOGIN = {"username": USER, "password": PASSWORD}
FAILURES: dict[str, tuple[dict[str, str], str | None, str]] = {
    # case: (login, TLS variant, what last_error and the one warning say)
    "wrong password": (
        {"username": USER, "password": "wrong"},
        "good",
        "broker refused the connection: Not authorized (check username and password",
    ),
    "untrusted broker": (
        LOGIN,
        "rogue-ca",
        "TLS: the broker's certificate was refused: self-signed certificate in certificate "
        "chain (check tls.ca_file",
    ),
    "no client certificate": (
        LOGIN,
        "no-client-cert",
        "the broker requires a client certificate: set tls.cert_file and tls.key_file",
    ),
    "client certificate of another CA": (
        LOGIN,
        "rogue-client-cert",
        "the broker does not trust the issuer of tls.cert_file",
    ),
    "plain MQTT to the TLS port": (
        LOGIN,
        None,
        "the broker closed the connection before accepting it",
    ),
}


@pytest.mark.parametrize("case", list(FAILURES))
async def test_a_refused_connection_says_why_once_and_reports_the_endpoint_down(
    case: str, site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    login, tls, expected = FAILURES[case]
    url = site.broker.url
    settings: dict[str, Any] = dict(login)
    if tls == "good":
        settings["tls"] = site.tls()
    elif tls == "rogue-ca":
        settings["tls"] = site.tls(ca_file=site.rogue.ca_file)
    elif tls == "no-client-cert":
        settings["tls"] = site.tls(cert_file=None, key_file=None)
    elif tls == "rogue-client-cert":
        rogue = site.rogue_client
        settings["tls"] = site.tls(cert_file=rogue.cert_file, key_file=rogue.key_file)
    else:
        url = url.replace("mqtts://", "mqtt://")
    caplog.set_level(logging.INFO, logger=CLIENT_LOG)
    config = connection(url, f"tls{uuid.uuid4().hex[:6]}", **settings)
    async with started(config) as (adapter, sink, observer):
        client = adapter._get_client()
        assert client is not None
        assert await until(lambda: client.failed_attempts >= 3, 15), client.failed_attempts
        stats = adapter.stats
        assert not stats.connected and stats.connects == 0
        assert stats.last_error is not None and expected in stats.last_error, stats.last_error
        assert observer.changes and not any(observer.changes)  # down, never up
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == CLIENT_LOG and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 1, warnings  # once, not at every retry
    assert expected in warnings[0] and "retrying every 1-1 s" in warnings[0]
    assert sink.values() == []


async def test_a_broker_that_is_not_up_yet_is_reported_once_then_connected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=CLIENT_LOG)
    broker = ThrowawayMosquitto(port=free_port())
    try:
        config = connection(broker.url, f"late{uuid.uuid4().hex[:6]}")
        async with started(config) as (adapter, _, observer):
            client = adapter._get_client()
            assert client is not None
            assert await until(lambda: client.failed_attempts >= 2, 10)
            assert adapter.stats.last_error is not None
            assert "connection refused" in adapter.stats.last_error
            await asyncio.to_thread(broker.start)
            assert await adapter.wait_ready(10)
            after = adapter.stats
            assert after.connected and after.last_error is None and observer.changes[-1] is True
    finally:
        broker.remove()
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == CLIENT_LOG]
    refused = [m for level, m in messages if level == logging.WARNING]
    assert len(refused) == 1 and "cannot connect: connection refused" in refused[0], messages
    assert any(
        level == logging.INFO and "connected after" in m and "failed attempt(s)" in m
        for level, m in messages
    ), messages


def test_the_broker_config_carries_tls_and_passwords(site: Site) -> None:
    conf = (site.broker.base / "mosquitto.conf").read_text()
    assert f"certfile {site.broker.security.cert_file}" in conf
    assert "require_certificate true" in conf and "allow_anonymous false" in conf
    passwords = (site.broker.base / "passwords").read_text()
    assert passwords.startswith(f"{USER}:$") and PASSWORD not in passwords


def test_issued_files_are_pem(tmp_path: Path) -> None:
    ca = TestAuthority(tmp_path)
    issued = ca.issue("x", "x", server=False)
    assert issued.cert_file.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert issued.key_file.stat().st_mode & 0o077 == 0
