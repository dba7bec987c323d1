"""Admin pages: organisation settings (the approval threshold), closing and reopening periods,
users and their roles. Each change to an organisation is appended to its hash-chained audit log
with the admin as actor (``org.settings_changed``, ``period.closed`` / ``period.reopened``,
``user.granted``).

An organisation's admin changes that organisation's settings and periods, and grants roles on it;
adding and disabling users (who are global) is for platform admins. Writes to tenant tables run
as the user (``WebDB.as_user``), so the restrictive admin policies of migration 0020 apply too.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pipeline.web import identity
from pipeline.web.access import Forbidden, WebDB, org_id, require
from pipeline.web.app import audit, check_csrf, page, who

router = APIRouter(include_in_schema=False)
ADMIN = frozenset({"admin"})
PERIOD_RE = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
THRESHOLD_MAX = Decimal("1e15")


def _admin_orgs(user: identity.User, orgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in orgs if user.may(o["id"], ADMIN)]


@router.get("/admin", response_class=HTMLResponse)
async def admin_page(request: Request, notice: str | None = None) -> Response:
    w = await who(request)
    db: WebDB = request.app.state.db
    orgs = _admin_orgs(w.user, await db.organizations(w.user))
    if not orgs and not w.user.platform_admin:
        raise Forbidden("you are not an admin of any organisation")
    periods: dict[str, list[str]] = {}
    if orgs:
        async with db.as_user(w.user, [o["id"] for o in orgs]) as conn:
            for r in await conn.fetch("SELECT organization_id::text AS org, period FROM posting_periods"
                                      " WHERE closed ORDER BY period"):
                periods.setdefault(r["org"], []).append(r["period"])
    async with db.owner() as conn:
        users = await identity.list_users(conn)
    admin_ids = {o["id"] for o in orgs}
    if not w.user.platform_admin:  # an org admin sees the users holding roles on its organisations
        users = [u for u in users if any(str(g["organization_id"]) in admin_ids for g in u["grants"])]
    return page(request, "admin.html", orgs=orgs, periods=periods, users=users, roles=identity.ROLES,
                notice=notice, one_time=None)


@router.post("/admin/org/settings")
async def org_settings(request: Request) -> Response:
    w = await who(request)
    form = await request.form()
    check_csrf(w, str(form.get("csrf_token", "")))
    org = org_id(str(form.get("org", "")))
    require(w.user, org, ADMIN, "change this organisation's settings")
    raw = str(form.get("approval_threshold", "")).strip()
    try:
        threshold = None if raw == "" else Decimal(raw)
    except InvalidOperation as exc:
        raise ValueError("approval threshold: a number, or empty for none") from exc
    if threshold is not None and (not threshold.is_finite() or not 0 <= threshold <= THRESHOLD_MAX):
        raise ValueError("approval threshold: between 0 and 10^15")
    async with request.app.state.db.as_user(w.user, [org], readonly=False) as conn:
        await conn.execute(
            "UPDATE core_organizations SET updated_at = now(), settings = CASE WHEN $2::text IS NULL"
            " THEN settings - 'approval_threshold' ELSE settings || jsonb_build_object('approval_threshold', $2::text)"
            " END WHERE id = $1", uuid.UUID(org), None if threshold is None else str(threshold))
    await audit(request, org, "org.settings_changed", None,
                approval_threshold=None if threshold is None else str(threshold))
    return RedirectResponse("/admin?notice=Settings+saved", status_code=303)


@router.post("/admin/org/period")
async def org_period(request: Request) -> Response:
    w = await who(request)
    form = await request.form()
    check_csrf(w, str(form.get("csrf_token", "")))
    org = org_id(str(form.get("org", "")))
    require(w.user, org, ADMIN, "close or reopen periods")
    period, action = str(form.get("period", "")).strip(), str(form.get("action", ""))
    if not PERIOD_RE.fullmatch(period):
        raise ValueError("period: YYYY-MM")
    if action not in ("close", "open"):
        raise ValueError("action: close or open")
    async with request.app.state.db.as_user(w.user, [org], readonly=False) as conn:
        await conn.execute(
            "INSERT INTO posting_periods (organization_id, period, closed, changed_by) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (organization_id, period) DO UPDATE SET closed = EXCLUDED.closed, changed_at = now(),"
            " changed_by = EXCLUDED.changed_by", uuid.UUID(org), period, action == "close", f"web:{w.user.username}")
    done = "closed" if action == "close" else "reopened"
    await audit(request, org, f"period.{done}", period)
    return RedirectResponse(f"/admin?notice=Period+{period}+{done}", status_code=303)


@router.post("/admin/users/grant")
async def user_grant(request: Request) -> Response:
    w = await who(request)
    form = await request.form()
    check_csrf(w, str(form.get("csrf_token", "")))
    org = org_id(str(form.get("org", "")))
    require(w.user, org, ADMIN, "grant roles on this organisation")
    async with request.app.state.db.owner() as conn:
        try:
            await identity.grant(conn, str(form.get("username", "")), org, str(form.get("role", "")),
                                 granted_by=f"web:{w.user.username}")
        except identity.IdentityError as exc:
            raise ValueError(str(exc)) from exc
    await audit(request, org, "user.granted", str(form.get("username", "")), role=str(form.get("role", "")))
    return RedirectResponse("/admin?notice=Role+granted", status_code=303)


@router.post("/admin/users/add", response_class=HTMLResponse)
async def user_add(request: Request) -> Response:
    w = await who(request)
    form = await request.form()
    check_csrf(w, str(form.get("csrf_token", "")))
    if not w.user.platform_admin:
        raise Forbidden("only a platform admin adds users")
    password = identity.new_password()
    async with request.app.state.db.owner() as conn:
        try:
            user = await identity.add_user(conn, str(form.get("username", "")), password,
                                           display_name=str(form.get("display_name", ""))[:200],
                                           must_change_password=True)
        except identity.IdentityError as exc:
            raise ValueError(str(exc)) from exc
        users = await identity.list_users(conn)
    orgs = _admin_orgs(w.user, await request.app.state.db.organizations(w.user))
    return page(request, "admin.html", orgs=orgs, periods={}, users=users, roles=identity.ROLES,
                notice=f"User {user.username} added", one_time={"username": user.username, "password": password})


@router.post("/admin/users/status")
async def user_status(request: Request) -> Response:
    w = await who(request)
    form = await request.form()
    check_csrf(w, str(form.get("csrf_token", "")))
    if not w.user.platform_admin:
        raise Forbidden("only a platform admin disables or enables users")
    username, status = str(form.get("username", "")), str(form.get("status", ""))
    if username == w.user.username:
        raise ValueError("you cannot change your own status")
    async with request.app.state.db.owner() as conn:
        try:
            await identity.set_status(conn, username, status)
        except identity.IdentityError as exc:
            raise ValueError(str(exc)) from exc
    return RedirectResponse("/admin?notice=Status+changed", status_code=303)
