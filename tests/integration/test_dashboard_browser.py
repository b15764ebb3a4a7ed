"""The DMC dashboard end to end in a real headless browser (issue #7): Debian's Chromium driven by
Playwright, against ingest, safety_rules, notifier and the dashboard running as real subprocesses on
the test stack, fed with `trialwatch send`.

Sign in; see the H-SI signal appear on the open overview without a reload once the records that
trigger it are sent (SAFETY_RULES §4: the 2nd participant with a serious infection on treatment, corpus
file 16); the halting page shows the engine's count, n, boundary and posterior; acknowledge the H-SI
alert as a safety officer; be refused as a DMC member; find the acknowledgement in the alert's
history. A screenshot of each page is kept in out/test-artifacts/dashboard/.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from dashboard.live_rig import (
    ARTIFACTS,
    CHROMIUM_FLAGS,
    CORPUS,
    DashboardProcess,
    chromium,
    fresh_pipeline,
    pipeline,
    probe,
    send,
)
from faults import Pipeline, Probe
from playwright.async_api import Browser, Page, async_playwright, expect
from sqlalchemy import text

from services.notifier.domain.model import Role

pytestmark = pytest.mark.integration
__all__ = ["pipeline", "probe"]  # fixtures of dashboard.live_rig, used here by name

BEFORE_H_SI = sorted(CORPUS.glob("[0-1][0-5]-*"))  # 01..15: one serious infection on treatment so far
H_SI_TRIGGER = CORPUS / "16-skin-infection-batch-bundle.json"  # the 2nd participant: H-SI fires
SIGNAL_WAIT_MS = 120_000
ALERT_WAIT_SECONDS = 60.0


@pytest.fixture(scope="module")
def dashboard(pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardProcess]:
    process = DashboardProcess(pipeline, tmp_path_factory.mktemp("dashboard"))
    try:
        yield process
    finally:
        if process.running():
            process.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    executable = chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield launched
        await launched.close()


async def sign_in(page: Page, dashboard: DashboardProcess, role: Role) -> None:
    await page.context.clear_cookies()
    await page.goto(dashboard.url("/"))
    assert "/signin" in page.url  # nothing but health and metrics without a session
    await page.fill("input[name=token]", dashboard.token(role))
    await page.click("form.signin button[type=submit]")
    await expect(page.locator("header .who")).to_contain_text(f"dev-{role}")


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def h_si_signal(probe: Probe) -> dict[str, Any]:
    async with probe.engine.connect() as connection:
        sql = "SELECT payload FROM safety_rules.signal WHERE rule_id = 'H-SI' ORDER BY seq"
        payloads = [row[0] for row in await connection.execute(text(sql))]
    assert len(payloads) == 1, payloads
    return dict(payloads[0])


async def first_row(probe: Probe, sql: str, what: str, **params: str) -> str:
    """The first column of the query's first row, once the notifier has written it."""
    deadline = time.monotonic() + ALERT_WAIT_SECONDS
    while time.monotonic() < deadline:
        async with probe.engine.connect() as connection:
            found = (await connection.execute(text(sql), params)).scalar()
        if found is not None:
            return str(found)
        await asyncio.sleep(0.3)
    pytest.fail(f"{what}: not within {ALERT_WAIT_SECONDS:.0f}s")


async def alert_of(probe: Probe, signal_id: str) -> str:
    sql = "SELECT alert_id FROM notifier.alert WHERE signal_id = :s"
    return await first_row(probe, sql, f"the notifier's alert of signal {signal_id}", s=signal_id)


async def open_alert_of_rule(probe: Probe, rule_id: str) -> str:
    sql = "SELECT alert_id FROM notifier.alert WHERE rule_id = :r AND state IN ('open', 'notified') LIMIT 1"
    return await first_row(probe, sql, f"an open {rule_id} alert", r=rule_id)


async def test_dashboard_in_a_browser_shows_h_si_live_and_acknowledges_by_role(
    pipeline: Pipeline, dashboard: DashboardProcess, probe: Probe, browser: Browser
) -> None:
    if dashboard.running():
        dashboard.stop()
    await fresh_pipeline(pipeline, probe)
    dashboard.start()
    await send(pipeline, *BEFORE_H_SI)

    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await sign_in(page, dashboard, "safety_officer")
    await expect(page.locator("table.participants tbody tr")).to_have_count(8)  # AD-001..AD-008 enrolled
    signals = page.locator("#signals tbody tr")
    await expect(signals.filter(has_text="AE-SI")).not_to_have_count(0, timeout=SIGNAL_WAIT_MS)
    assert await signals.filter(has_text="H-SI").count() == 0
    await shot(page, "overview-before-h-si")

    await send(pipeline, H_SI_TRIGGER)  # the page stays open: the row must arrive by polling
    await expect(signals.filter(has_text="H-SI")).to_have_count(1, timeout=SIGNAL_WAIT_MS)
    await expect(page.locator("#live")).to_be_visible()
    await shot(page, "overview")

    signal = await h_si_signal(probe)
    detail = signal["detail"]
    await page.goto(dashboard.url("/halting"))
    row = page.locator("#rule-H-SI")
    await expect(row.locator(".count")).to_have_text(str(detail["count"]))
    await expect(row.locator(".n")).to_have_text(str(detail["n"]))
    await expect(row.locator(".boundary")).to_have_text(str(detail["boundary"]))
    await expect(row.locator(".posterior")).to_have_text(f"{detail['posterior']:.3f}")
    assert (detail["count"], detail["boundary"]) == (2, 2)  # SAFETY_RULES §4: the 2nd participant halts
    await expect(page.locator("svg .observed")).to_have_count(1)
    await shot(page, "halting")

    subject = detail["subjects"][-1]
    await page.goto(dashboard.url(f"/participants/{subject}"))
    await expect(page.locator("figure.chart svg")).to_have_count(6)  # ANC, PLT, Hb, ALT, AST + event lanes
    await expect(page.locator("svg rect.mark.signal")).not_to_have_count(0)
    await shot(page, "timeline")

    await page.goto(dashboard.url("/endpoint"))
    await expect(page.locator("#period-treatment .events")).not_to_have_text("0")
    await shot(page, "endpoint")

    alert_id = await alert_of(probe, signal["signal_id"])
    await page.goto(dashboard.url("/alerts?severity=HALT"))
    await expect(page.locator("table.alerts tbody tr").filter(has_text="H-SI")).to_have_count(1)
    await shot(page, "alerts")
    await page.goto(dashboard.url(f"/alerts/{alert_id}"))
    await page.fill("form.ack input[name=comment]", "DSMB chair informed; dosing paused")
    await page.click("form.ack button[type=submit]")
    await expect(page.locator("#state")).to_have_text("acknowledged")
    history = page.locator("table.history tr.action-alert\\.acknowledged")
    await expect(history).to_have_count(1)
    await expect(history).to_contain_text("dev-safety_officer")
    await expect(history).to_contain_text("DSMB chair informed; dosing paused")
    await shot(page, "alert-acknowledged")

    other = await open_alert_of_rule(probe, "AE-SI")
    await sign_in(page, dashboard, "dmc_member")
    await page.goto(dashboard.url(f"/alerts/{other}"))
    await page.click("form.ack button[type=submit]")
    await expect(page.locator("p.refusal")).to_contain_text("Refused")
    await expect(page.locator("#state")).not_to_have_text("acknowledged")
    await shot(page, "refused-dmc-member")
    await page.goto(dashboard.url(f"/alerts/{alert_id}"))  # a DMC member reads the history too
    await expect(page.locator("table.history tr.action-alert\\.acknowledged")).to_contain_text("dev-safety_officer")


async def test_only_health_and_metrics_answer_without_a_session(dashboard: DashboardProcess) -> None:
    if not dashboard.running():
        dashboard.start()
    async with httpx.AsyncClient(base_url=dashboard.url(""), follow_redirects=False) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert "trialwatch_dashboard_request_seconds" in (await client.get("/metrics")).text
        for path in ("/", "/halting", "/alerts", "/endpoint", "/participants/AD-001"):
            response = await client.get(path)
            assert (response.status_code, response.headers["location"].split("?")[0]) == (303, "/signin"), path
        assert (await client.get("/signals/feed")).status_code == 401
        client.cookies.set("tw_session", "forged")
        forged = await client.post("/alerts/x/ack", data={"csrf": "x"})
        assert forged.status_code == 303  # a forged cookie is no session
        client.cookies.clear()
        signin = await client.get("/signin")
        assert "HttpOnly" in signin.headers["set-cookie"] and "SameSite=strict" in signin.headers["set-cookie"]
        no_csrf = await client.post("/signin", data={"token": dashboard.token("admin"), "csrf": "wrong"})
        assert no_csrf.status_code == 403
        wrong = await signed_in_client_status(client, dashboard, "not-a-token")
        assert wrong == "/signin?error=unknown&next=/"
        assert await signed_in_client_status(client, dashboard, dashboard.token("dmc_member")) == "/"
        assert (await client.get("/")).status_code == 200
        assert (await client.get("/admin")).status_code == 403  # admin manages, a DMC member reads
        client.cookies.clear()
        assert await signed_in_client_status(client, dashboard, dashboard.token("admin")) == "/"
        assert "Quarantine" in (await client.get("/admin")).text


async def signed_in_client_status(client: httpx.AsyncClient, dashboard: DashboardProcess, token: str) -> str:
    form = await client.get("/signin")
    csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
    response = await client.post("/signin", data={"token": token, "csrf": csrf, "next": "/"})
    return str(response.headers["location"])
