"""Who may do what in the workspace, checked through the app and directly in the database: sign-in,
lock-out, CSRF, organisations a user cannot see, roles that cannot decide or cannot approve."""

from __future__ import annotations

import re

import asyncpg
import pytest

from pipeline.web.access import WebDB
from pipeline.web.identity import user_by_name
from tests.web.conftest import ORG_A, ORG_B
from tests.web.support import PASSWORD, Web, csrf_of, sign_in_as

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


async def test_sign_in_and_out(web: Web) -> None:
    c = await web.client()
    assert (await c.get("/review")).headers["location"] == "/login"
    assert (await c.get("/api/v1/review")).status_code == 401
    r = await sign_in_as(c, "ana")
    assert r.status_code == 303 and r.headers["location"] == "/review"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    page = await c.get("/review")
    assert page.status_code == 200 and "Signed in as <strong>ana</strong>" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    out = await c.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 303
    assert (await c.get("/review")).status_code == 303


async def test_lock_out_after_repeated_failures(web: Web) -> None:
    c = await web.client()
    for _ in range(web.settings.web_lockout_failures - 1):
        assert (await sign_in_as(c, "ana", "wrong password!!")).headers["location"] == "/login?error=invalid"
    assert (await sign_in_as(c, "ana", "wrong password!!")).headers["location"] == "/login?error=locked"
    # the right password no longer works while locked
    assert (await sign_in_as(c, "ana", PASSWORD)).headers["location"] == "/login?error=locked"
    assert (await sign_in_as(c, "nobody", PASSWORD)).headers["location"] == "/login?error=invalid"


async def test_csrf_is_required_on_every_post(web: Web) -> None:
    c = await web.client("ana")
    form = {"org": ORG_A, "event_id": "a-0", "decision": "approve"}
    assert (await c.post("/review/decide", data=form)).status_code == 403
    assert (await c.post("/review/decide", data={**form, "csrf_token": "forged"})).status_code == 403
    assert (await c.post("/review/bulk", data={"item": f"{ORG_A}|a-0"})).status_code == 403
    api = await c.post("/api/v1/review/decide", json={"organization_id": ORG_A, "event_id": "a-0", "decision": "approve"})
    assert api.status_code == 403 and "CSRF" in api.json()["detail"]
    anon = await web.client()
    assert (await anon.post("/login", data={"username": "ana", "password": PASSWORD})).status_code == 403
    # nothing was decided by any of those
    assert (await c.get(f"/api/v1/review/{ORG_A}/a-0/status")).json()["state"] == "open"


async def test_a_reviewer_of_a_cannot_see_or_decide_b(web: Web) -> None:
    c = await web.client("ana")
    page = await c.get("/review")
    # b-0 as a word of its own: a random CSRF token (base64url) may contain those three characters
    assert "a-0" in page.text and "Beta Secret Supplier" not in page.text and ORG_B not in page.text
    assert not re.search(r"(?<![A-Za-z0-9_-])b-0(?![A-Za-z0-9_-])", page.text)
    assert (await c.get(f"/review?org={ORG_B}")).status_code == 403
    assert (await c.get("/api/v1/review", params={"org": ORG_B})).status_code == 403
    assert {i["organization_id"] for i in (await c.get("/api/v1/review")).json()["items"]} == {ORG_A}
    csrf = csrf_of(page.text)
    assert (await c.post("/review/decide", data={"org": ORG_B, "event_id": "b-0", "decision": "approve",
                                                 "csrf_token": csrf})).status_code == 403
    r = await c.post("/api/v1/review/decide", headers={"X-CSRF-Token": csrf},
                     json={"organization_id": ORG_B, "event_id": "b-0", "decision": "approve"})
    assert r.status_code == 403
    assert (await c.get(f"/api/v1/review/{ORG_B}/b-0/status")).status_code == 403
    assert (await c.get(f"/books/{ORG_B}/trial-balance")).status_code == 403
    assert (await c.get(f"/api/v1/books/{ORG_B}/trial-balance")).status_code == 403
    bulk = await c.post("/api/v1/review/bulk-approve", headers={"X-CSRF-Token": csrf},
                        json={"counterparty": "Beta Secret Supplier"})
    assert bulk.status_code == 200 and bulk.json() == []  # B's items are invisible, so none are approved


async def test_the_database_refuses_what_a_handler_might_not(web: Web) -> None:
    """As hera_web, acting for org B with ana signed in: no row of B is visible or writable."""
    db = await WebDB.connect(web.database_url, pool_size=1)
    try:
        async with db.owner() as conn:
            ana = await user_by_name(conn, "ana")
            aud = await user_by_name(conn, "aud")
        async with db.as_user(ana, [ORG_B]) as conn:
            assert await conn.fetchval("SELECT count(*) FROM review_items") == 0
            assert await conn.fetchval("SELECT count(*) FROM core_organizations") == 0
        # even a forced acting list does not help: the restrictive policy checks ana's grants
        async with db.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT set_config('role', 'hera_web', true), set_config('app.user_id', $1, true),"
                               " set_config('app.organization_id', $2, true)", ana.id, f"{ORG_A},{ORG_B}")
            assert await conn.fetchval("SELECT count(DISTINCT organization_id) FROM review_items") == 1
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("INSERT INTO review_decisions (organization_id, event_id, decision_id, decision,"
                                   " decided_by, decided_by_name) VALUES ($1, 'b-0', gen_random_uuid(), 'approve',"
                                   " $2, 'ana')", ORG_B, ana.id)
        # a reviewer cannot claim an item above the approval threshold, an auditor none at all
        for user, event_id in ((ana, "a-big"), (aud, "a-0")):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with db.as_user(user, [ORG_A], readonly=False) as conn:
                    await conn.execute("INSERT INTO review_decisions (organization_id, event_id, decision_id,"
                                       " decision, decided_by, decided_by_name) VALUES ($1, $2, gen_random_uuid(),"
                                       " 'approve', $3, $4)", ORG_A, event_id, user.id, user.username)
    finally:
        await db.close()


async def test_an_approver_only_item_is_refused_to_a_reviewer(web: Web) -> None:
    ana, amy = await web.client("ana"), await web.client("amy")
    csrf = csrf_of((await ana.get("/review")).text)
    r = await ana.post("/review/decide", data={"org": ORG_A, "event_id": "a-big", "decision": "approve",
                                               "csrf_token": csrf})
    assert r.status_code == 403 and "approver" in r.text
    csrf = csrf_of((await amy.get("/review")).text)
    r = await amy.post("/review/decide", data={"org": ORG_A, "event_id": "a-big", "decision": "approve",
                                               "csrf_token": csrf})
    assert r.status_code == 303 and r.headers["location"].startswith("/review/status?")


async def test_an_auditor_reads_the_books_but_decides_nothing(web: Web) -> None:
    aud = await web.client("aud")
    page = await aud.get("/review")
    assert "read-only" in page.text and 'action="/review/decide"' not in page.text
    r = await aud.post("/api/v1/review/decide", headers={"X-CSRF-Token": csrf_of(page.text)},
                       json={"organization_id": ORG_A, "event_id": "a-0", "decision": "approve"})
    assert r.status_code == 403
    for report in ("trial-balance", "balance-sheet", "profit-and-loss", "audit"):
        assert (await aud.get(f"/books/{ORG_A}/{report}")).status_code == 200, report
        assert (await aud.get(f"/api/v1/books/{ORG_A}/{report}")).status_code == 200, report
