"""The review workspace in a real browser: Debian's Chromium driven by Playwright (no browser is
downloaded), ``hera web`` as a subprocess, and the pipeline's worker posting what the browser
decides, all on the real broker and PostgreSQL.

Flows: sign in; correct an item with the smart-code picker and see the worker's posted entry;
bulk-approve with the keyboard; a reviewer of A cannot see or decide B (page and API); a CSRF
attempt is refused; an approver-only item is refused to a reviewer. Every page visited is checked
with axe-core (no serious or critical violation) and for JavaScript errors; screenshots are kept
under ``$HERA_TEST_ARTEFACTS`` (default: a temporary directory printed at the end).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.e2e import harness
from tests.e2e.harness import Pipeline, encode
from tests.web.support import (
    FEES,
    PASSWORD,
    add_user,
    feed_event,
    org_id,
    review_item,
    seed_orgs,
    seed_reviews,
    set_threshold,
    start_web,
)

pipe = harness.pipe  # fixture
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
ORG_A, ORG_B = org_id("browser-a"), org_id("browser-b")
SERIOUS = ("serious", "critical")


def artefacts_dir() -> Path:
    path = Path(os.environ.get("HERA_TEST_ARTEFACTS") or tempfile.mkdtemp(prefix="hera-browser-"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture()
async def workspace(pipe: Pipeline) -> AsyncIterator[dict[str, Any]]:
    await seed_orgs(pipe.database_url, {"Alpha Trading": ORG_A, "Beta Foods": ORG_B})
    await set_threshold(pipe.database_url, ORG_A, "1000")
    await seed_reviews(pipe.database_url, [
        review_item(feed_event(ORG_A, "bulk-1", "12.00", counterparty="Cafe Uno")),
        review_item(feed_event(ORG_A, "bulk-2", "14.00", counterparty="Cafe Uno")),
        review_item(feed_event(ORG_A, "big-1", "4800.00", counterparty="Big Spend Ltd")),
        review_item(feed_event(ORG_B, "beta-1", "42.00", counterparty="Beta Secret Supplier"))])
    await add_user(pipe.database_url, "ana", [(ORG_A, "reviewer")])
    worker = pipe.start_worker()
    web, url = await start_web(pipe.kafka_bootstrap, pipe.database_url, pipe.topic_prefix, pipe.home, pipe.partitions)
    try:
        yield {"url": url, "worker": worker}
    finally:
        web.terminate()
        web.wait(10)


async def wait_in_review(p: Pipeline, event_id: str, timeout_seconds: float = 60) -> None:
    deadline = time.monotonic() + timeout_seconds
    conn = await asyncpg.connect(p.database_url)
    try:
        while not await conn.fetchval("SELECT count(*) FROM review_items WHERE event_id = $1", event_id):
            assert time.monotonic() < deadline, f"{event_id} never reached review; worker log:\n{p.log_tail()}"
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


class Browser:
    """One page with its JavaScript errors, accessibility findings and screenshots collected."""

    def __init__(self, page: Any, url: str, out: Path) -> None:
        self.page, self.url, self.out = page, url, out
        self.errors: list[str] = []
        self.a11y: dict[str, list[dict[str, Any]]] = {}
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", self._console)

    def _console(self, message: Any) -> None:
        # the refusals this test provokes on purpose are logged by Chromium as failed loads (403)
        if message.type == "error" and "status of 403" not in message.text:
            self.errors.append(f"console: {message.text}")

    async def check(self, name: str) -> None:
        """Screenshot and axe-core run of the page as it is now."""
        await self.page.screenshot(path=str(self.out / f"{name}.png"), full_page=True)
        # evaluated through the DevTools protocol: the pages' CSP (own scripts only) stays in force
        await self.page.evaluate(AXE.read_text(encoding="utf-8"))
        result = await self.page.evaluate("async () => (await axe.run(document)).violations")
        self.a11y[name] = [{"id": v["id"], "impact": v["impact"], "nodes": len(v["nodes"])}
                           for v in result if v["impact"] in SERIOUS]


async def test_review_workspace_in_a_real_browser(pipe: Pipeline, workspace: dict[str, Any]) -> None:
    from playwright.async_api import async_playwright

    url, out = workspace["url"], artefacts_dir()
    await pipe.produce([encode(feed_event(ORG_A, "r-1", "250.00"))])  # an unsure line: the worker queues it
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            b = Browser(await browser.new_page(viewport={"width": 1280, "height": 900}), url, out)
            page = b.page
            # sign in
            await page.goto(f"{url}/review")
            assert page.url.endswith("/login")
            await b.check("login")
            await page.fill("#username", "ana")
            await page.fill("#password", PASSWORD)
            await page.keyboard.press("Enter")
            await page.wait_for_url(f"{url}/review")
            # correct the worker's review item, then see the entry the worker posted
            await wait_in_review(pipe, "r-1")
            await page.goto(f"{url}/review?counterparty=Qxzv")
            await b.check("review-queue")
            item = page.locator("li.item", has_text="r-1")
            await item.focus()
            await page.keyboard.press("c")  # c: into the smart-code picker; Enter there corrects
            await page.keyboard.type(FEES)
            await page.keyboard.press("Enter")
            await page.wait_for_url("**/review/status?**")
            await page.wait_for_selector("text=Posted by the pipeline", timeout=60_000)
            text = await page.inner_text("#status")
            assert "6650" in text and "250.00" in text and "decided by ana" in text
            await b.check("decision-posted")
            # bulk approve with the keyboard: j to an item, x to select, twice, then the button
            await page.goto(f"{url}/review?counterparty=Cafe+Uno")
            for _ in range(2):
                await page.keyboard.press("j")
                await page.keyboard.press("x")
            assert await page.locator("input[type=checkbox]:checked").count() == 2
            await page.click("#bulk-approve")
            await page.wait_for_selector("text=2 sent, 0 refused")
            await b.check("bulk-approved")
            # an approver-only item is refused to a reviewer
            await page.goto(f"{url}/review?counterparty=Big+Spend")
            await page.locator("li.item", has_text="big-1").locator("button.approve").click()
            await page.wait_for_selector("text=approver")
            assert "Not allowed" in await page.inner_text("h1")
            # org B: neither the page nor the API, and its items are not listed
            resp = await page.goto(f"{url}/review?org={ORG_B}")
            assert resp is not None and resp.status == 403
            await page.goto(f"{url}/review")
            assert "Beta Secret Supplier" not in await page.content()
            api = await page.evaluate("""async ([org, csrf]) => {
                const r = await fetch('/api/v1/review/decide', {method: 'POST', headers: {'Content-Type':
                  'application/json', 'X-CSRF-Token': csrf}, body: JSON.stringify({organization_id: org,
                  event_id: 'beta-1', decision: 'approve'})});
                const s = await fetch('/api/v1/review/' + org + '/beta-1/status');
                return [r.status, s.status]; }""",
                                      [ORG_B, await page.get_attribute("input[name=csrf_token]", "value")])
            assert api == [403, 403]
            # CSRF: a form post without the session's token, and one from another site
            forged = await page.evaluate("""async (org) => (await fetch('/review/decide', {method: 'POST',
                body: new URLSearchParams({org: org, event_id: 'bulk-1', decision: 'approve',
                csrf_token: 'forged'})})).status""", ORG_A)
            assert forged == 403
            evil = await browser.new_page()
            await evil.set_content(f"""<form id=f method=post action="{url}/review/decide">
                <input name=org value="{ORG_A}"><input name=event_id value="big-1">
                <input name=decision value=approve></form><script>document.getElementById('f').submit()</script>""")
            await evil.wait_for_load_state()
            await evil.wait_for_timeout(500)
            assert "/login" in evil.url or "CSRF" in await evil.content()  # SameSite=Strict: no session rides along
            # an injected inline script would not run: the pages allow their own script file only
            csp = (await page.request.get(f"{url}/review")).headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            # the books, with the posted entry in them
            await page.goto(f"{url}/books/{ORG_A}/trial-balance")
            assert "6650" in await page.content()
            await b.check("trial-balance")
            await page.goto(f"{url}/books/{ORG_A}/ledger/6650")
            await b.check("account-ledger")
            await page.goto(f"{url}/books/{ORG_A}/audit")
            await b.check("audit-chain")
        finally:
            await browser.close()
    print(f"\nbrowser artefacts: {out}")
    (out / "accessibility.json").write_text(json.dumps(b.a11y, indent=2))
    assert b.errors == [], b.errors
    assert all(not v for v in b.a11y.values()), b.a11y
