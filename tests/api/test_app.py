"""The application as a whole: docs, /metrics, request latency by route, store outages."""

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.auth import Role
from collector.embedded.postgres import ThrowawayPostgres
from collector.store.migrate import migrate
from tests.api.apitest import add_key, api_client, bearer

pytestmark = pytest.mark.integration


async def test_openapi_and_docs_are_served(database_url: str) -> None:
    async with api_client(database_url) as (client, _):
        spec = await client.get("/openapi.json")
        docs = await client.get("/docs")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    for path in ("/v1/health", "/v1/devices", "/v1/devices/{device_id}", "/v1/counts",
                 "/v1/keys", "/v1/keys/{prefix}", "/v1/spot-checks",
                 "/v1/spot-checks/{check_id}", "/metrics"):  # fmt: skip
        assert path in paths, path
    assert "HTTPBearer" in spec.json()["components"]["securitySchemes"]
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_metrics_are_prometheus_text_with_request_latency_by_route_template(
    database_url: str,
) -> None:
    key = await add_key(database_url, Role.AUDITOR)
    async with api_client(database_url) as (client, _):
        for device_id in (101, 102, 103):
            answer = await client.get(f"/v1/devices/{device_id}", headers=bearer(key))
            assert answer.status_code == 404
        assert (await client.get("/v1/counts", headers=bearer(key))).status_code == 200
        assert (await client.get("/no/such/path")).status_code == 404
        metrics = await client.get("/metrics", headers=bearer(key))
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    latency = families["tally_api_request_seconds"]
    counts = {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for s in latency.samples
        if s.name == "tally_api_request_seconds_count"
    }
    assert counts[("/v1/devices/{device_id}", "GET", "404")] >= 3
    assert counts[("/v1/counts", "GET", "200")] >= 1
    assert counts[("<unmatched>", "GET", "404")] >= 1
    routes = {route for route, _, _ in counts}
    assert not any(r.startswith("/v1/devices/1") for r in routes), routes
    assert "tally_samples_stored" in families  # the collector's metrics share the registry


@pytest.mark.timeout(120)
async def test_store_outage_gives_503_and_the_api_recovers(
    private_postgres: ThrowawayPostgres,
) -> None:
    dsn = private_postgres.dsn
    await asyncio.to_thread(migrate, dsn)
    key = await add_key(dsn, Role.AUDITOR)
    async with api_client(dsn, connect_timeout=1) as (client, _):
        assert (await client.get("/v1/health")).json()["store"] == "up"
        await asyncio.to_thread(private_postgres.stop)
        health = await client.get("/v1/health")
        assert health.status_code == 503
        assert health.json()["store"] == "down" and health.json()["status"] == "degraded"
        counts = await client.get("/v1/counts", headers=bearer(key))
        assert counts.status_code == 503
        assert "store is unavailable" in counts.json()["detail"]
        assert counts.headers["retry-after"] == "5"
        await asyncio.to_thread(private_postgres.start)
        recovered = None
        for _ in range(100):
            recovered = await client.get("/v1/counts", headers=bearer(key))
            if recovered.status_code == 200:
                break
            await asyncio.sleep(0.2)
        assert recovered is not None and recovered.status_code == 200
        assert (await client.get("/v1/health")).status_code == 200
