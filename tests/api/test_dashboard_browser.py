"""The dashboard in a real headless Chromium (Debian's), driven by Playwright, on the real API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, async_playwright

from api.app import create_app
from api.auth import Role
from api.deps import current_time
from api.settings import Settings
from collector.embedded.ports import free_port
from collector.runtime import ApiServer
from tests.api.apitest import Seed, add_key, bearer, build_fleet, utc

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
NOW = utc(2024, 5, 3, 5, 20)  # the fleet of apitest.build_fleet lies in the 30 days before
PROGRAMME, TIER = "jiangxi-2022", "comprehensive"
TIMEOUT_MS = 30_000


@pytest.fixture
def seed(database_url: str) -> Iterator[Seed]:
    s = Seed(database_url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
async def api_url(database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """Serve the real API with uvicorn on a free loopback port, its clock pinned to NOW."""
    settings = Settings(dsn=database_url, pool_min_size=1, pool_max_size=4, data_dir=tmp_path)
    app = create_app(settings)
    app.dependency_overrides[current_time] = lambda: NOW
    server = ApiServer(app, "127.0.0.1", free_port())
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()


@pytest.fixture
def chromium() -> Path:
    """Debian's chromium; its absence fails the test (never skips it) and says what to do."""
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium; "
        "`make test` does it through scripts/system-deps.sh when run as root)"
    )
    return CHROMIUM


@pytest.fixture
async def browser_context(chromium: Path, tmp_path: Path) -> AsyncIterator[BrowserContext]:
    """Debian's chromium with a new, empty profile (never a browser Playwright downloads)."""
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(chromium),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
            accept_downloads=True,
        )
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context
        finally:
            await context.close()


def fleet_with_control(seed: Seed) -> None:
    ids = build_fleet(seed)
    for device, hour in (("a-reactor", 3), ("h-ent", 21)):
        seed.conn.execute(
            "INSERT INTO control_op (device_id, kind, requested_by, requested_at, outcome)"
            " VALUES (%s, 'probe', 'test', %s, 'verified')",
            (ids[device], utc(2024, 5, 2, hour)),
        )


async def record_calls(dsn: str, api_url: str) -> None:
    """Register two apps and record calls to them in February to April 2024 (operator)."""
    operator = bearer(await add_key(dsn, Role.OPERATOR))
    events = [
        {"id": f"{app}-{month}-{n}", "ts": f"2024-{month:02d}-1{n}T08:00:00+08:00",
         "app": app, "outcome": "ok" if n else "error"}
        for app, month, calls in (("model", 2, 2), ("model", 3, 4), ("app", 3, 2), ("app", 4, 5))
        for n in range(calls)
    ]  # fmt: skip
    async with httpx.AsyncClient(base_url=api_url, headers=operator) as client:
        for key, kind in (("model", "mechanism_model"), ("app", "industrial_app")):
            reg = {"key": key, "name": key, "kind": kind, "category": "production"}
            assert (await client.put(f"/v1/apps/{key}", json=reg)).status_code == 201
        answer = await client.post("/v1/calls", json={"events": events})
    assert answer.status_code == 200 and answer.json()["stored"] == len(events), answer.text


async def settled(page: Page) -> dict[str, str]:
    """Wait for the evidence message to say how a download ended; return its kind and text."""
    await page.wait_for_selector(
        "#evidence-message[data-kind='ok'], #evidence-message[data-kind='error']"
    )
    outcome: dict[str, str] = await page.eval_on_selector(
        "#evidence-message", "m => ({kind: m.dataset.kind, text: m.textContent})"
    )
    return outcome


async def page_rules(page: Page) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = await page.eval_on_selector_all(
        "#rules article.rule",
        """articles => articles.map(a => ({
            rule: a.dataset.rule,
            verdict: a.dataset.verdict,
            badge: a.querySelector("header .badge").textContent,
            zh: a.querySelector(".texts .zh").textContent,
            en: a.querySelector(".texts .en").textContent,
            drill: [...a.querySelectorAll(".drill button")].map(b => b.dataset.drilldown),
            bars: [...a.querySelectorAll(".bar-row")].map(b => ({
                metric: b.dataset.metric, measured: b.dataset.measured,
                threshold: b.dataset.threshold})),
        }))""",
    )
    return rules


def leaves(check: dict[str, Any]) -> list[dict[str, Any]]:
    """Threshold nodes of a check tree outside groups, in document order (as the page draws)."""
    if check["kind"] == "threshold":
        return [check]
    if check["kind"] == "groups":
        own = [check]
        for group in check["groups"]:
            own += leaves(group["result"])
        return own
    out: list[dict[str, Any]] = []
    for child in check["children"]:
        out += leaves(child)
    return out


def number(text: str) -> float | None:
    return float(text) if text else None


async def test_dashboard_shows_the_tiers_rules_with_their_verdicts(
    database_url: str, seed: Seed, api_url: str, browser_context: BrowserContext
) -> None:
    fleet_with_control(seed)
    key = await add_key(database_url, Role.AUDITOR, "dashboard test")
    await record_calls(database_url, api_url)
    async with httpx.AsyncClient(base_url=api_url, headers=bearer(key)) as client:
        expected = (
            await client.get(
                f"/v1/programs/{PROGRAMME}/tiers/{TIER}/evaluation", params={"window": "30d"}
            )
        ).json()
        paths = (await client.get("/openapi.json")).json()["paths"]
        by_type = (await client.get("/v1/counts", params={"group_by": "type"})).json()
        by_industry = (await client.get("/v1/counts", params={"group_by": "industry"})).json()
        calls = (await client.get("/v1/calls/monthly", params={"window": "90d"})).json()
    errors: list[str] = []
    page = await browser_context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    await page.goto(f"{api_url}/")
    await page.wait_for_selector("#key-panel:not([hidden])")

    # A wrong key: the page says 401 in both languages and keeps no key.
    await page.fill("#api-key", "tly_0badc0de_not-a-real-key")
    await page.click("#use-key")
    message = page.locator("#key-message")
    await message.wait_for(state="visible")
    text = await message.text_content() or ""
    assert "401" in text and "密钥被拒绝" in text and "refused" in text, text
    assert "unknown API key" in text
    assert await page.evaluate("sessionStorage.getItem('tally.apiKey')") is None
    assert await page.locator("#workspace").is_hidden()

    # The auditor's key: programmes load, the key stays in this tab only.
    await page.fill("#api-key", key)
    await page.click("#use-key")
    await page.wait_for_selector("#workspace:not([hidden])")
    assert await page.evaluate("sessionStorage.getItem('tally.apiKey')") == key
    await page.select_option("#programme", PROGRAMME)
    await page.select_option("#tier", TIER)
    ids = [r["rule"] for r in expected["evaluation"]["results"]]
    await page.wait_for_function(
        """ids => JSON.stringify([...document.querySelectorAll('#rules article.rule')]
            .map(a => a.dataset.rule)) === JSON.stringify(ids)""",
        arg=ids,
    )
    await page.wait_for_selector("#series svg.series")

    # Every rule of the tier, with the API's verdict, text, gloss and figures.
    shown = await page_rules(page)
    results = expected["evaluation"]["results"]
    assert [(r["rule"], r["verdict"]) for r in shown] == [
        (r["rule"], r["verdict"]) for r in results
    ]
    labels = {"pass": "通过 pass", "fail": "未通过 fail",
              "insufficient_evidence": "证据不足 insufficient evidence",
              "not_applicable": "不适用 not applicable"}  # fmt: skip
    for on_page, result in zip(shown, results, strict=True):
        assert on_page["badge"] == labels[result["verdict"]]
        assert on_page["zh"] == result["text"] and on_page["en"] == result["gloss"]
        drawn = [
            (b["metric"], number(b["measured"]), number(b["threshold"])) for b in on_page["bars"]
        ]
        wanted = [
            (leaf["metric"] or "", leaf["measured"], leaf["threshold"])
            for leaf in leaves(result["check"])
        ]
        assert drawn == wanted, result["rule"]
        assert on_page["drill"] == ([result["drilldown"]] if result.get("drilldown") else [])
    verdicts = {r["verdict"] for r in results}
    assert {"fail", "insufficient_evidence"} <= verdicts  # the fleet is far below the tier
    assert (
        await page.locator("#tier-verdict .badge").get_attribute("data-verdict")
        == (expected["verdict"])
    )
    measured = [b for r in shown for b in r["bars"] if b["metric"] == "connected_devices"]
    assert any(number(b["measured"]) is not None for b in measured)
    assert await page.locator("#simulated-banner").is_hidden()
    assert "excluded: 1" in (await page.locator("#summary").text_content() or "")

    # Types and industries from /v1/counts, the series from /v1/counts/series.
    for target, body in (("#types", by_type), ("#industries", by_industry)):
        keys = await page.eval_on_selector_all(
            f"{target} .hbar", "bars => bars.map(b => b.dataset.key)"
        )
        groups = [g for g in body["groups"] if g["connected_devices"] > 0]
        assert sorted(keys) == sorted(g["key"] or "" for g in groups), target
    assert await page.locator("#types .hbar[data-key='reactor']").count() == 1
    assert await page.locator("#industries .hbar[data-key='C26']").count() == 1
    assert await page.locator("#series circle.dot.connected").count() == 30

    # Drill-downs and bundles: downloaded with the key where the server has them, else a
    # clear 404 message (they come from other branches).
    for button, route, file in (
        ("#drilldowns button.download >> nth=0", "/v1/drilldowns/devices", ".csv"),
        ("#make-bundle", "/v1/reports", ".zip"),
    ):
        await page.click(button)
        outcome = await settled(page)
        if route in paths:
            assert outcome["kind"] == "ok", outcome["text"]
            assert await page.locator(f"#downloads a.blob-link[download$='{file}']").count() >= 1
        else:
            assert outcome["kind"] == "error", outcome["text"]
            assert f"not available on this server (404 from {route})" in outcome["text"]
    # Monthly calls over 90 days: the full calendar months in it, as the API counts them.
    await page.select_option("#window", "90d")
    await page.wait_for_selector("#calls .hbar")
    await page.wait_for_function(
        "() => document.querySelector('#summary').textContent.includes('(2160 h)')"
    )
    shown_calls = await page.eval_on_selector_all(
        "#calls .hbar", "bars => bars.map(b => [b.dataset.key, b.textContent])"
    )
    assert calls["months"] == ["2024-03", "2024-04"]
    assert [month for month, _ in shown_calls] == calls["months"]
    for month, text in shown_calls:
        assert f"{calls['total']['calls'][month]} 次 calls" in text
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "dashboard.png"
    await page.screenshot(path=str(screenshot), full_page=True)
    print(f"dashboard screenshot: {screenshot}")

    # Including simulated devices is flagged on the page and asked of the API.
    await page.check("#include-simulated")
    await page.wait_for_selector("#summary-simulated")
    assert await page.locator("#simulated-banner").is_visible()
    assert "INCLUDED" in (await page.locator("#simulated-banner").text_content() or "")
    await page.screenshot(path=str(ARTIFACTS / "dashboard-simulated.png"))

    # Forgetting the key brings the key form back and clears the tab's storage.
    await page.click("#forget-key")
    await page.wait_for_selector("#key-panel:not([hidden])")
    assert await page.evaluate("sessionStorage.getItem('tally.apiKey')") is None
    assert errors == []


async def test_a_revoked_key_in_the_tab_sends_the_page_back_to_the_key_form(
    database_url: str, seed: Seed, api_url: str, browser_context: BrowserContext
) -> None:
    key = await add_key(database_url, Role.AUDITOR)
    page = await browser_context.new_page()
    await page.goto(f"{api_url}/")
    await page.fill("#api-key", key)
    await page.click("#use-key")
    await page.wait_for_selector("#rules article.rule")
    seed.conn.execute("UPDATE api_key SET revoked_at = now()")
    await page.click("#refresh")
    message = page.locator("#key-message")
    await message.wait_for(state="visible")
    text = await message.text_content() or ""
    assert "401" in text and "revoked" in text, text
    assert await page.locator("#workspace").is_hidden()
