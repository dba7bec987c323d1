"""Server-rendered pages: sign-in, the review queue, decisions and their outcome, the books.

Templates are Jinja2 with autoescape on (``app.templates``): every value a user or a producer
typed is rendered as text. Forms post with the session's CSRF token; the queue page works without
JavaScript, and ``static/app.js`` adds keyboard shortcuts and polling of a decision's outcome.
"""

from __future__ import annotations

import csv
import io
import secrets
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pipeline.web import books, identity, queue
from pipeline.web.access import NotFound, WebDB, org_id, require
from pipeline.web.app import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    check_csrf,
    lockout,
    page,
    session_lifetime,
    who,
)

router = APIRouter(include_in_schema=False)
BULK_FIELD = "item"
REFUSALS = {"invalid": "Wrong username or password.", "disabled": "This account is disabled.",
            "locked": "Too many failed sign-ins: this account is locked for a while."}


@router.get("/")
async def home() -> Response:
    return RedirectResponse("/review", status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, error: str | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    resp = page(request, "login.html", login_csrf=token, error=REFUSALS.get(error or ""))
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_https(request), max_age=3600)
    return resp


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    cookie, given = request.cookies.get(LOGIN_CSRF_COOKIE, ""), str(form.get("csrf_token", ""))
    if not cookie or not secrets.compare_digest(cookie.encode(), given.encode("utf-8", "replace")):
        from pipeline.web.app import CsrfRefused
        raise CsrfRefused("the sign-in form has expired (CSRF check failed); reload and retry")
    settings = request.app.state.settings
    db: WebDB = request.app.state.db
    async with db.owner() as conn:
        result = await identity.sign_in(conn, str(form.get("username", ""))[:64], str(form.get("password", ""))[:1024],
                                        failures_max=settings.web_lockout_failures, lockout=lockout(settings))
        if result.user is None:
            return RedirectResponse(f"/login?error={result.refused}", status_code=303)
        token, _ = await identity.create_session(conn, result.user.id, session_lifetime(settings))
    resp = RedirectResponse("/password" if result.user.must_change_password else "/review", status_code=303)
    resp.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=_https(request),
                    max_age=int(session_lifetime(settings).total_seconds()))
    resp.delete_cookie(LOGIN_CSRF_COOKIE)
    return resp


@router.post("/logout")
async def logout(request: Request) -> Response:
    w = await who(request, allow_password_change=True)
    check_csrf(w, str((await request.form()).get("csrf_token", "")))
    async with request.app.state.db.owner() as conn:
        await identity.end_session(conn, request.cookies.get(SESSION_COOKIE, ""))
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE)
    return resp


@router.get("/password", response_class=HTMLResponse)
async def password_form(request: Request) -> Response:
    await who(request, allow_password_change=True)
    return page(request, "password.html", error=None)


@router.post("/password")
async def password_change(request: Request) -> Response:
    w = await who(request, allow_password_change=True)
    form = await request.form()
    check_csrf(w, str(form.get("csrf_token", "")))
    new, again = str(form.get("new_password", "")), str(form.get("new_password_again", ""))
    error = None
    if new != again:
        error = "The two new passwords differ."
    else:
        try:
            identity.check_password(new)
        except identity.InvalidInput as exc:
            error = str(exc).capitalize() + "."
    if error:
        return page(request, "password.html", error=error)
    async with request.app.state.db.owner() as conn:
        current = await identity.sign_in(conn, w.user.username, str(form.get("current_password", "")),
                                         failures_max=request.app.state.settings.web_lockout_failures,
                                         lockout=lockout(request.app.state.settings))
        if current.user is None:
            return page(request, "password.html", error="The current password is wrong.")
        await identity.set_password(conn, w.user.id, new)
    return RedirectResponse("/review", status_code=303)


# ---------------------------------------------------------------- review

@router.get("/review", response_class=HTMLResponse)
async def review_page(request: Request) -> Response:
    w = await who(request)
    db: WebDB = request.app.state.db
    orgs = await db.organizations(w.user)
    try:
        f = queue.filter_from(request.query_params)
        error = None
    except ValueError as exc:
        f, error = queue.QueueFilter(), str(exc)
    result = await queue.list_queue(db, w.user, f)
    catalog = request.app.state.catalog
    query = {k: v for k, v in request.query_params.items() if k != "page" and v}
    return page(request, "queue.html", orgs=orgs, f=f, result=result, error=error, reasons=queue.REASONS,
                sorts=list(queue.SORTS), codes=sorted(catalog.smart_codes.values(), key=lambda s: s.code),
                page_link=lambda n: "/review?" + urlencode({**query, "page": n}),
                may_decide=lambda org: w.user.may(org, identity.DECIDING_ROLES),
                notice=request.query_params.get("notice"))


@router.post("/review/decide")
async def decide_form(request: Request) -> Response:
    w = await who(request)
    form = await request.form()
    check_csrf(w, str(form.get("csrf_token", "")))
    org = org_id(str(form.get("org", "")))
    event_id = str(form.get("event_id", ""))
    action = str(form.get("decision", ""))
    code = str(form.get("smart_code", "")).strip() or None
    await queue.decide(request.app.state.db, request.app.state.send, w.user, org, event_id, action, code,
                       catalog=request.app.state.catalog)
    return RedirectResponse("/review/status?" + urlencode({"org": org, "event_id": event_id}), status_code=303)


@router.get("/review/status", response_class=HTMLResponse)
async def status_page(request: Request, org: str = "", event_id: str = "") -> Response:
    w = await who(request)
    require(w.user, org_id(org), identity.ANY_ROLE, "see this item")
    status = await queue.item_status(request.app.state.db, w.user, org_id(org), event_id)
    return page(request, "status.html", status=status)


@router.post("/review/bulk")
async def bulk_form(request: Request) -> Response:
    w = await who(request)
    form = await request.form()
    check_csrf(w, str(form.get("csrf_token", "")))
    counterparty = str(form.get("counterparty", "")).strip()
    if counterparty:
        scope = str(form.get("org", "")).strip()
        targets = await queue.counterparty_items(request.app.state.db, w.user, counterparty,
                                                 org_id(scope) if scope else None)
    else:
        targets = [_split_item(str(v)) for v in form.getlist(BULK_FIELD)][:queue.BULK_ITEMS_MAX]
    if not targets:
        raise ValueError("select at least one item (or name a counterparty)")
    results = await bulk_approve(request, w, targets)
    return page(request, "bulk.html", results=results)


async def bulk_approve(request: Request, w: Any, targets: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Approve each target; one outcome per item (a refusal of one does not stop the others)."""
    from pipeline.web.access import AccessError
    from pipeline.web.queue import Conflict

    out = []
    for org, event_id in targets:
        try:
            await queue.decide(request.app.state.db, request.app.state.send, w.user, org, event_id, "approve",
                               None, catalog=request.app.state.catalog)
            out.append({"organization_id": org, "event_id": event_id, "outcome": "sent", "detail": ""})
        except (AccessError, Conflict, ValueError) as exc:
            out.append({"organization_id": org, "event_id": event_id, "outcome": "refused", "detail": str(exc)})
    return out


def _split_item(value: str) -> tuple[str, str]:
    org, _, event_id = value.partition("|")
    return org_id(org), event_id


# ---------------------------------------------------------------- books

REPORTS = ("trial-balance", "balance-sheet", "profit-and-loss", "audit")


@router.get("/books", response_class=HTMLResponse)
async def books_home(request: Request) -> Response:
    w = await who(request)
    return page(request, "books_home.html", orgs=await request.app.state.db.organizations(w.user))


@router.get("/books/{org}/{report}")
async def books_report(request: Request, org: str, report: str, period: str | None = None,
                       since: str | None = None, format: str = "html") -> Response:
    w = await who(request)
    org = org_id(org)
    require(w.user, org, identity.ANY_ROLE, "see the books")
    if report not in REPORTS:
        raise NotFound("no such report")
    data = await report_data(request.app.state.db, w.user, org, report, period=period or None, since=since or None)
    if format == "csv":
        return csv_response(f"{report}-{org}.csv", csv_rows(report, data))
    return page(request, f"books_{report.replace('-', '_')}.html", org=org, data=data, period=period or "",
                since=since or "", report=report)


@router.get("/books/{org}/ledger/{account}")
async def ledger_page(request: Request, org: str, account: str, format: str = "html") -> Response:
    w = await who(request)
    org = org_id(org)
    require(w.user, org, identity.ANY_ROLE, "see the books")
    async with request.app.state.db.as_user(w.user, [org]) as conn:
        data = await books.account_ledger(conn, org, account)
    if format == "csv":
        return csv_response(f"ledger-{account}.csv", _table(data["rows"]))
    return page(request, "books_ledger.html", org=org, data=data)


@router.get("/books/{org}/entry/{entry_id}")
async def entry_page(request: Request, org: str, entry_id: str, format: str = "html") -> Response:
    w = await who(request)
    org = org_id(org)
    require(w.user, org, identity.ANY_ROLE, "see the books")
    async with request.app.state.db.as_user(w.user, [org]) as conn:
        data = await books.entry(conn, org, entry_id)
    if data is None:
        raise NotFound("no such entry")
    if format == "csv":
        return csv_response(f"entry-{entry_id}.csv", _table(data["lines"]))
    return page(request, "books_entry.html", org=org, data=data)


async def report_data(db: WebDB, user: Any, org: str, report: str, *, period: str | None,
                      since: str | None) -> dict[str, Any]:
    async with db.as_user(user, [org]) as conn:
        if report == "trial-balance":
            return await books.trial_balance(conn, org, books.check_period(period))
        if report == "balance-sheet":
            return await books.balance_sheet(conn, org, books.check_period(period))
        if report == "profit-and-loss":
            return await books.profit_and_loss(conn, org, books.check_period(since), books.check_period(period))
        return await books.audit_status(conn, org)


def csv_rows(report: str, data: dict[str, Any]) -> list[list[Any]]:
    if report == "trial-balance":
        return _table(data["rows"])
    if report == "audit":
        return _table([{k: v for k, v in data.items() if k != "break_details"}])
    rows = [r for section in data["currencies"].values() for r in section["rows"]]
    return _table(rows)


def _table(rows: list[dict[str, Any]]) -> list[list[Any]]:
    if not rows:
        return [["(no rows)"]]
    header = list(rows[0])
    return [header, *[[r.get(k) for k in header] for r in rows]]


def csv_response(filename: str, rows: list[list[Any]]) -> Response:
    buf = io.StringIO()
    writer = csv.writer(buf)
    for row in rows:  # a cell a spreadsheet would run as a formula is written as text
        writer.writerow(["'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r") and not
                         _numeric(v) else v for v in row])
    safe = "".join(c for c in filename if c.isalnum() or c in "-_.")
    return Response(buf.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{safe}"'})


def _numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _https(request: Request) -> bool:
    return request.url.scheme == "https"
