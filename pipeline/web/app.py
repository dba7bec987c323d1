"""The workspace's FastAPI app: sign-in, sessions, CSRF, error mapping, the decision sender.

    app = create_app(Settings())        # served by ``hera web`` (uvicorn)

Who is asking: an ``Authorization: Bearer hera_…`` API token, else the session cookie
(``hera_session``: HttpOnly, SameSite=Strict; the database keeps only its hash and expiry).
Every state-changing request made with a session carries its CSRF token (form field
``csrf_token`` or header ``X-CSRF-Token``), compared in constant time; the sign-in form uses a
double-submit cookie. API-token requests need none (no ambient credential). Pages and JSON share
handlers' checks (``access.require``) and the database's (``WebDB.as_user``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from pipeline.config import Settings
from pipeline.domain.errors import HeraError
from pipeline.web import identity
from pipeline.web.access import Forbidden, NotFound, WebDB
from pipeline.web.identity import User
from pipeline.web.queue import Conflict

log = logging.getLogger("hera.web")
HERE = Path(__file__).parent
SESSION_COOKIE = "hera_session"
LOGIN_CSRF_COOKIE = "hera_login_csrf"
SEND_TIMEOUT_SECONDS = 10.0
API_PREFIX = "/api/v1"

# autoescape on for every template: whatever a user or producer typed renders as text
templates = Jinja2Templates(env=jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                                                   autoescape=True, undefined=jinja2.StrictUndefined))


class SignInRequired(HeraError):
    pass


class CsrfRefused(HeraError):
    pass


class PasswordChangeRequired(HeraError):
    pass


@dataclass
class Who:
    user: User
    csrf: str | None      # None for API-token requests


class DecisionSender:
    """Signs decisions and sends them to ``hera.review.decisions``; the producer starts on first use."""

    def __init__(self, settings: Settings) -> None:
        from pipeline.signing import decision_key

        self._settings, self._key = settings, decision_key(settings)
        self._producer: Any = None
        self._lock = asyncio.Lock()

    async def __call__(self, message: dict[str, Any]) -> None:
        from pipeline.signing import sign

        async with self._lock:
            if self._producer is None:
                from aiokafka import AIOKafkaProducer

                from pipeline.brokers import client_kwargs
                producer = AIOKafkaProducer(**client_kwargs(self._settings), acks="all",
                                            request_timeout_ms=int(SEND_TIMEOUT_SECONDS * 1000))
                await asyncio.wait_for(producer.start(), SEND_TIMEOUT_SECONDS)
                self._producer = producer
        body = json.dumps(sign(message, self._key)).encode()
        await asyncio.wait_for(self._producer.send_and_wait(
            self._settings.topic("decisions"), body, key=message["organization_id"].encode()), SEND_TIMEOUT_SECONDS)

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()


def create_app(settings: Settings, *, db: WebDB | None = None, send: Any = None, watch_refusals: bool = True
               ) -> FastAPI:
    """The app. ``db``/``send`` may be given (tests); otherwise made from ``settings`` at start-up."""
    from pipeline.domain.catalog import load_catalog

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if db is None:  # the workspace's tables (0020) exist before the first request
            from pipeline.ledger.migrate import migrate
            await migrate(settings.dsn())
        app.state.db = db or await WebDB.connect(settings.dsn())
        from pipeline.ledger.store import LedgerStore
        app.state.ledger = await LedgerStore.connect(settings.dsn(), pool_size=2)  # admin actions' audit rows
        sender = send or DecisionSender(settings)
        app.state.send = sender
        watcher = None
        if watch_refusals:
            from pipeline.web.refusals import watch_refusals as watch
            watcher = asyncio.create_task(watch(settings, app.state.db))
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watcher
            if isinstance(sender, DecisionSender):
                await sender.close()
            await app.state.ledger.close()
            if db is None:
                await app.state.db.close()

    app = FastAPI(title="HERA Stream review workspace", version="1", lifespan=lifespan,
                  description="Review queue, decisions and books of the organisations the caller may see. "
                              "Auth: the session cookie (with X-CSRF-Token on writes) or a Bearer API token.")
    app.state.settings = settings
    app.state.catalog = load_catalog()
    _security_headers(app)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    _errors(app)
    from pipeline.web import admin, api, pages
    app.include_router(pages.router)
    app.include_router(admin.router)
    app.include_router(api.router, prefix=API_PREFIX)
    return app


# Pages load only their own script and stylesheet: an injected <script> or inline handler would not
# run even if escaping failed somewhere. The interactive API docs (/docs, /redoc) are left out.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none';"
       " base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                    "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}


def _security_headers(app: FastAPI) -> None:
    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith(("/docs", "/redoc")):
            response.headers.setdefault("Content-Security-Policy", CSP)
        return response


def _errors(app: FastAPI) -> None:
    def wants_json(request: Request) -> bool:
        return request.url.path.startswith(API_PREFIX)

    def reply(request: Request, status: int, message: str) -> Response:
        if wants_json(request):
            return JSONResponse({"detail": message}, status_code=status)
        w = getattr(request.state, "who", None)
        return templates.TemplateResponse(request, "error.html", {"status": status, "message": message, "who": w,
                                                                   "csrf": w.csrf if w else None},
                                          status_code=status)

    @app.exception_handler(SignInRequired)
    async def _signin(request: Request, exc: SignInRequired) -> Response:
        if wants_json(request):
            return JSONResponse({"detail": "sign in first (session cookie or Bearer token)"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(PasswordChangeRequired)
    async def _password(request: Request, exc: PasswordChangeRequired) -> Response:
        if wants_json(request):
            return JSONResponse({"detail": "replace the one-time password first"}, status_code=403)
        return RedirectResponse("/password", status_code=303)

    handlers: list[tuple[type[Exception], int]] = [(CsrfRefused, 403), (Forbidden, 403), (NotFound, 404),
                                                   (Conflict, 409), (ValueError, 422)]
    for cls, status in handlers:
        def make(code: int) -> Any:
            async def handle(request: Request, exc: Exception) -> Response:
                return reply(request, code, str(exc) or "refused")
            return handle
        app.add_exception_handler(cls, make(status))

    @app.exception_handler(RuntimeError)
    async def _unavailable(request: Request, exc: RuntimeError) -> Response:
        log.warning("service unavailable: %s", exc)
        return reply(request, 503, str(exc))


# ---------------------------------------------------------------- who is asking

async def who(request: Request, *, allow_password_change: bool = False) -> Who:
    """The signed-in user (raises ``SignInRequired``); also stored on ``request.state.who``."""
    db: WebDB = request.app.state.db
    auth = request.headers.get("authorization", "")
    found: Who | None = None
    async with db.owner() as conn:
        if auth.lower().startswith("bearer "):
            user = await identity.token_user(conn, auth[7:].strip())
            found = None if user is None else Who(user, None)
        elif (token := request.cookies.get(SESSION_COOKIE)):
            got = await identity.session_user(conn, token)
            found = None if got is None else Who(*got)
    if found is None:
        raise SignInRequired()
    if found.user.must_change_password and not allow_password_change:
        raise PasswordChangeRequired()
    request.state.who = found
    return found


def check_csrf(w: Who, given: str | None) -> None:
    """Session requests that change something must echo the session's CSRF token."""
    if w.csrf is None:
        return  # API token: nothing ambient a third-party page could ride on
    if not given or not hmac.compare_digest(w.csrf.encode(), given.encode("utf-8", "replace")):
        raise CsrfRefused("the form has expired or did not come from this site (CSRF check failed); reload and retry")


def session_lifetime(settings: Settings) -> timedelta:
    return timedelta(hours=settings.web_session_hours)


def lockout(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.web_lockout_minutes)


def page(request: Request, name: str, **context: Any) -> HTMLResponse:
    w: Who | None = getattr(request.state, "who", None)
    return templates.TemplateResponse(request, name, {"who": w, "csrf": w.csrf if w else None, **context})


async def audit(request: Request, org: str, action: str, subject: str | None, **payload: Any) -> None:
    """Append what an admin did to the organisation's hash-chained audit log (actor: the user)."""
    from datetime import UTC, datetime

    from pipeline.ledger.audit import AuditRecord

    w: Who = request.state.who
    await request.app.state.ledger.append_audit([AuditRecord(
        organization_id=org, action=action, actor=f"web:{w.user.username}", occurred_at=datetime.now(UTC),
        subject=subject, payload=payload)])
