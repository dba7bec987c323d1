"""Books as the workspace shows them (normal-side balances, running balance, CSV), admin pages,
session expiry and the first admin's one-time password."""

from __future__ import annotations

import csv
import io

import asyncpg
import pytest

from pipeline.domain.catalog import load_catalog
from pipeline.domain.posting import build_entry
from pipeline.ledger.store import LedgerStore
from pipeline.ledger.verify import verify_ledger
from pipeline.web import identity
from pipeline.web.access import WebDB
from schemas.events import RawTransactionV1
from tests.web.conftest import ORG_A
from tests.web.support import FEES, MEALS, PASSWORD, Web, add_user, csrf_of, feed_event, sign_in_as

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


async def post(database_url: str, *events: tuple[dict[str, object], str]) -> None:
    catalog = load_catalog()
    entries = [build_entry(RawTransactionV1.model_validate(e), code, catalog, created_by="test") for e, code in events]
    store = await LedgerStore.connect(database_url, pool_size=1)
    try:
        results = await store.post_batch(entries)  # type: ignore[arg-type]
    finally:
        await store.close()
    assert all(r.outcome == "posted" for r in results), results


async def test_books_show_normal_side_balances_and_download_as_csv(web: Web) -> None:
    await post(web.database_url, (feed_event(ORG_A, "p-1", "100.00"), MEALS),
               (feed_event(ORG_A, "p-2", "50.00", counterparty="=HYPERLINK(\"http://x\")"), FEES))
    aud = await web.client("aud")
    tb = (await aud.get(f"/api/v1/books/{ORG_A}/trial-balance")).json()
    rows = {r["account"]: r for r in tb["rows"]}
    assert rows["6500"]["balance"] == "100.00" and rows["6650"]["balance"] == "50.00"
    assert rows["1010"]["balance"] == "-150.00"  # a bank account in credit shows negative on its debit side
    assert tb["totals"] == [{"currency": "USD", "debit": "150.00", "credit": "150.00", "balanced": True}]
    bs = (await aud.get(f"/api/v1/books/{ORG_A}/balance-sheet")).json()["currencies"]["USD"]
    assert bs["total_assets"] == "-150.00" and bs["current_earnings"] == "-150.00" and bs["balanced"]
    pnl = (await aud.get(f"/api/v1/books/{ORG_A}/profit-and-loss")).json()["currencies"]["USD"]
    assert pnl["total_expense"] == "150.00" and pnl["net_income"] == "-150.00"
    ledger = (await aud.get(f"/api/v1/books/{ORG_A}/ledger/1010")).json()
    assert [r["balance"] for r in ledger["rows"]] == ["-100.00", "-150.00"]
    entry = (await aud.get(f"/api/v1/books/{ORG_A}/entries/{ledger['rows'][0]['entry_id']}")).json()
    assert sorted((ln["account"], ln["side"], ln["amount"]) for ln in entry["lines"]) == [
        ("1010", "CR", "100.00"), ("6500", "DR", "100.00")]
    assert entry["audit"] and entry["audit"][0]["action"] == "entries.posted"
    assert (await aud.get(f"/api/v1/books/{ORG_A}/audit")).json()["ok"] is True
    page = await aud.get(f"/books/{ORG_A}/entry/{entry['entry_id']}")
    assert page.status_code == 200 and "Journal entry #" in page.text
    download = await aud.get(f"/books/{ORG_A}/trial-balance?format=csv")
    assert download.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(download.text)))
    assert table[0][:2] == ["account", "name"] and len(table) == 4
    cells = [c for row in csv.reader(io.StringIO((await aud.get(f"/books/{ORG_A}/ledger/1010?format=csv")).text))
             for c in row]
    assert "'=HYPERLINK(\"http://x\")" in cells and not any(c.startswith("=") for c in cells)  # no formula
    for report in ("balance-sheet", "profit-and-loss", "audit"):
        assert (await aud.get(f"/books/{ORG_A}/{report}?format=csv")).status_code == 200
    assert (await aud.get(f"/api/v1/books/{ORG_A}/trial-balance", params={"period": "2026-13"})).status_code == 422


async def test_an_org_admin_sets_the_threshold_and_closes_periods(web: Web) -> None:
    await add_user(web.database_url, "adm", [(ORG_A, "admin")])
    adm, ana = await web.client("adm"), await web.client("ana")
    csrf = csrf_of((await adm.get("/admin")).text)
    assert (await adm.post("/admin/org/settings", data={"csrf_token": csrf, "org": ORG_A,
                                                        "approval_threshold": "100.50"})).status_code == 303
    assert (await adm.post("/admin/org/period", data={"csrf_token": csrf, "org": ORG_A, "period": "2026-10",
                                                      "action": "close"})).status_code == 303
    assert (await adm.post("/admin/org/settings", data={"csrf_token": csrf, "org": ORG_A,
                                                        "approval_threshold": "<b>1</b>"})).status_code == 422
    conn = await asyncpg.connect(web.database_url)
    try:
        assert await conn.fetchval("SELECT settings->>'approval_threshold' FROM core_organizations WHERE id = $1",
                                   ORG_A) == "100.50"
        assert await conn.fetchval("SELECT closed FROM posting_periods WHERE organization_id = $1"
                                   " AND period = '2026-10'", ORG_A) is True
        trail = [(r["action"], r["actor"], r["subject"]) for r in await conn.fetch(
            "SELECT action, actor, subject FROM audit_log WHERE organization_id = $1 AND actor LIKE 'web:%'"
            " ORDER BY seq", ORG_A)]
        assert trail == [("org.settings_changed", "web:adm", None), ("period.closed", "web:adm", "2026-10")]
        assert (await verify_ledger(conn))["ok"]  # the admin rows keep the chain and the ledger checks whole
    finally:
        await conn.close()
    csrf_ana = csrf_of((await ana.get("/review")).text)
    assert (await ana.get("/admin")).status_code == 403
    assert (await ana.post("/admin/org/settings", data={"csrf_token": csrf_ana, "org": ORG_A,
                                                        "approval_threshold": "1"})).status_code == 403
    r = await ana.post("/review/decide", data={"csrf_token": csrf_ana, "org": ORG_A, "event_id": "a-1",
                                               "decision": "approve"})  # 101.00 is now above the threshold
    assert r.status_code == 403
    # and in the database: a reviewer's update of the settings touches no row
    db = await WebDB.connect(web.database_url, pool_size=1)
    try:
        async with db.owner() as conn:
            user = await identity.user_by_name(conn, "ana")
        async with db.as_user(user, [ORG_A], readonly=False) as conn:
            assert await conn.execute("UPDATE core_organizations SET settings = '{}' WHERE id = $1", ORG_A) == "UPDATE 0"
    finally:
        await db.close()


async def test_an_expired_session_signs_out(web: Web) -> None:
    ana = await web.client("ana")
    assert (await ana.get("/review")).status_code == 200
    conn = await asyncpg.connect(web.database_url)
    try:
        await conn.execute("UPDATE web_sessions SET expires_at = now() - interval '1 second'")
    finally:
        await conn.close()
    assert (await ana.get("/review")).headers["location"] == "/login"
    assert (await ana.get("/api/v1/me")).status_code == 401


async def test_the_first_admin_replaces_a_one_time_password(web: Web) -> None:
    conn = await asyncpg.connect(web.database_url)
    try:
        otp = await identity.bootstrap_admin(conn)
        assert otp is not None and await identity.bootstrap_admin(conn) not in (None, otp)  # re-issued, not yet used
        otp = await identity.bootstrap_admin(conn)
    finally:
        await conn.close()
    c = await web.client()
    r = await sign_in_as(c, "admin", otp)  # type: ignore[arg-type]
    assert r.headers["location"] == "/password"
    assert (await c.get("/review")).headers["location"] == "/password"
    csrf = csrf_of((await c.get("/password")).text)
    r = await c.post("/password", data={"csrf_token": csrf, "current_password": otp, "new_password": PASSWORD,
                                        "new_password_again": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/review"
    page = await c.get("/review")
    assert page.status_code == 200 and "Qxzv Holdings" in page.text and "Beta Secret Supplier" in page.text
    conn = await asyncpg.connect(web.database_url)
    try:
        assert await identity.bootstrap_admin(conn) is None  # chosen: nothing printed again
    finally:
        await conn.close()
    admin = await c.get("/admin")
    assert admin.status_code == 200 and "Add user" in admin.text
    added = await c.post("/admin/users/add", data={"csrf_token": csrf_of(admin.text), "username": "new.one"})
    assert "One-time password for <strong>new.one</strong>" in added.text
