"""Secure channels, user identities and server-certificate trust against the simulator."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from adapters.opcua.adapter import OpcUaAdapter
from adapters.opcua.client import ConnectError, OpcUaClient
from adapters.opcua.pki import TrustStore, ensure_client_certificate
from collector.embedded.ports import free_port
from simulators.opcua.defaults import default_devices
from simulators.opcua.server import OpcUaSimulatorServer, generate_certificate
from tests.adapters.opcua.opcuatest import RecordingSink, eventually, source

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

USERS = {"operator": "s3cret"}
SECURE = {"policy": "Basic256Sha256", "mode": "SignAndEncrypt"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sim() -> AsyncIterator[OpcUaSimulatorServer]:
    server = OpcUaSimulatorServer(default_devices(), port=free_port(), security="both", users=USERS)
    await server.start()
    yield server
    await server.stop()


async def _collects(config: Any, tmp_path: Path) -> OpcUaAdapter:
    sink = RecordingSink()
    async with OpcUaAdapter(config, sink, data_dir=tmp_path) as adapter:
        assert await adapter.wait_ready(20), adapter.last_error
        await eventually(lambda: len(sink.samples()) >= 10, 10, "samples over the secure channel")
        assert len(adapter.devices) == 3
        return adapter


@pytest.mark.parametrize("mode", ["SignAndEncrypt", "Sign"])
async def test_basic256sha256_with_username_and_password(
    sim: OpcUaSimulatorServer, tmp_path: Path, mode: str
) -> None:
    config = source(
        sim.endpoint,
        security={"policy": "Basic256Sha256", "mode": mode},
        auth={"kind": "username", "username": "operator", "password": "s3cret"},
    )
    await _collects(config, tmp_path)
    pinned = list((tmp_path / "opcua-pki" / "trusted").iterdir())
    assert [p.read_bytes() for p in pinned] == [
        sim.certificate.cert_der if sim.certificate else b""
    ]
    assert (tmp_path / "opcua-pki" / "own" / "cert.der").is_file()


async def test_certificate_login(sim: OpcUaSimulatorServer, tmp_path: Path) -> None:
    await _collects(source(sim.endpoint, security=SECURE, auth={"kind": "certificate"}), tmp_path)


async def test_wrong_password_and_anonymous_are_refused(
    sim: OpcUaSimulatorServer, tmp_path: Path
) -> None:
    certificate = ensure_client_certificate(tmp_path, "urn:tally:collector")
    trust = TrustStore(tmp_path, source(sim.endpoint).trust.mode)
    for auth in ({"kind": "username", "username": "operator", "password": "nope"}, {}):
        client = OpcUaClient(source(sim.endpoint, security=SECURE, auth=auth), certificate, trust)
        with pytest.raises(ConnectError, match="refused the session"):
            await client.connect()
        await client.disconnect()


async def test_changed_server_certificate_is_refused_once_pinned(tmp_path: Path) -> None:
    original = generate_certificate("urn:tally:simulator:opcua:main")
    sim = OpcUaSimulatorServer(
        default_devices(), port=free_port(), security="secure", certificate=original
    )
    await sim.start()
    sink = RecordingSink()
    try:
        async with OpcUaAdapter(
            source(sim.endpoint, security=SECURE), sink, data_dir=tmp_path
        ) as adapter:
            assert await adapter.wait_ready(20), adapter.last_error
            await sim.stop()
            sim.certificate = generate_certificate(sim.application_uri)
            await sim.start()
            await eventually(
                lambda: "differs from the certificate pinned" in (adapter.last_error or ""),
                15,
                "the changed certificate to be refused",
            )
            assert adapter.sessions == 1
            assert not adapter.connected
            rejected = list((tmp_path / "opcua-pki" / "rejected").iterdir())
            assert [p.read_bytes() for p in rejected] == [sim.certificate.cert_der]
            # the pinned certificate is accepted again
            await sim.stop()
            sim.certificate = original
            await sim.start()
            await eventually(lambda: adapter.sessions == 2, 15, "reconnecting to the pinned server")
    finally:
        await sim.stop()


async def test_untrusted_server_is_refused_in_list_mode_until_its_certificate_is_moved(
    sim: OpcUaSimulatorServer, tmp_path: Path
) -> None:
    config = source(
        sim.endpoint,
        security=SECURE,
        auth={"kind": "username", "username": "operator", "password": "s3cret"},
        trust={"mode": "list"},
    )
    sink = RecordingSink()
    async with OpcUaAdapter(config, sink, data_dir=tmp_path) as adapter:
        await eventually(lambda: adapter.last_error is not None, 10, "the refusal")
        pki = tmp_path / "opcua-pki"
        [rejected] = list((pki / "rejected").iterdir())
        assert sim.certificate is not None and rejected.read_bytes() == sim.certificate.cert_der
        message = adapter.last_error or ""
        # what was refused, and what to do about it
        assert sim.endpoint in message and sim.application_uri in message
        assert f"not in the trust list {pki / 'trusted'}" in message
        assert f"move {rejected} into {pki / 'trusted'}" in message
        assert not adapter.connected and not sink.samples()
        (pki / "trusted").mkdir(exist_ok=True)
        rejected.rename(pki / "trusted" / rejected.name)
        # the next attempt (back-off at most 1 s here) trusts it: no restart needed
        assert await adapter.wait_ready(10), adapter.last_error
        await eventually(lambda: bool(sink.samples()), 10, "samples over SignAndEncrypt")
        assert adapter.sessions == 1
