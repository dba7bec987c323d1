"""Users of the workspace: argon2id password hashes, lock-out, sessions, API tokens, grants.

Users and their grants live in ``web_users`` / ``web_grants`` (migration 0020), read and written
by the connecting (owner) role: they are not tenant data. A user holds roles per organisation:

    reviewer  decides review items (approve or correct)
    approver  also decides items above the organisation's ``approval_threshold``
    auditor   reads the ledger and the audit trail, decides nothing
    admin     every role above, plus users, organisation settings and periods

Sessions are server-side: the browser's cookie holds a random token and the database only its
SHA-256, with an expiry and the session's CSRF token. API tokens are stored the same way.
``sign_in`` counts failures; after ``failures_max`` in a row the user is locked for ``lockout``.
Errors: ``IdentityError`` ← ``InvalidInput`` / ``UserUnknown`` / ``UserExists``.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import Any

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from pipeline.domain.errors import HeraError

ROLES = ("reviewer", "approver", "auditor", "admin")
ANY_ROLE = frozenset(ROLES)
DECIDING_ROLES = frozenset({"reviewer", "approver", "admin"})
APPROVING_ROLES = frozenset({"approver", "admin"})
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
PASSWORD_CHARS_MIN = 12
PASSWORD_CHARS_MAX = 1024
DISPLAY_NAME_CHARS_MAX = 200
TOKEN_BYTES = 32
TIMEOUT_SECONDS = 10.0

_hasher = PasswordHasher()  # argon2id, the library's current defaults


@cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown users (equal work), made on first need, not at import."""
    return _hasher.hash("not a password of anyone")


class IdentityError(HeraError):
    """Root of this module's errors."""


class InvalidInput(IdentityError):
    """A username, password, role or organisation that cannot be accepted (message says which)."""


class UserUnknown(IdentityError):
    pass


class UserExists(IdentityError):
    pass


@dataclass(frozen=True, slots=True)
class User:
    id: str
    username: str
    display_name: str
    status: str
    platform_admin: bool
    must_change_password: bool
    grants: dict[str, frozenset[str]] = field(default_factory=dict)  # org id -> roles

    def roles(self, org: str) -> frozenset[str]:
        """Effective roles on ``org`` (admin holds every role; a platform admin is admin everywhere)."""
        held = self.grants.get(org, frozenset())
        if self.platform_admin or "admin" in held:
            return frozenset(ROLES)
        return held

    @property
    def admin_anywhere(self) -> bool:
        return self.platform_admin or any("admin" in held for held in self.grants.values())

    def may(self, org: str, roles: frozenset[str] | set[str]) -> bool:
        return self.status == "active" and bool(self.roles(org) & roles)


@dataclass(frozen=True, slots=True)
class SignIn:
    user: User | None
    refused: str | None = None   # "invalid" | "locked" | "disabled"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def check_username(username: str) -> str:
    if not isinstance(username, str) or not USERNAME_RE.fullmatch(username):
        raise InvalidInput("a username is 1-64 characters: lower-case letters, digits and . _ @ -,"
                           " starting with a letter or digit")
    return username


def check_password(password: str) -> str:
    if not isinstance(password, str) or not PASSWORD_CHARS_MIN <= len(password) <= PASSWORD_CHARS_MAX:
        raise InvalidInput(f"a password has {PASSWORD_CHARS_MIN} to {PASSWORD_CHARS_MAX} characters")
    return password


def new_password() -> str:
    return secrets.token_urlsafe(18)


async def add_user(conn: asyncpg.Connection, username: str, password: str, *, display_name: str = "",
                   platform_admin: bool = False, must_change_password: bool = False) -> User:
    check_username(username)
    check_password(password)
    if len(display_name) > DISPLAY_NAME_CHARS_MAX:
        raise InvalidInput(f"a display name has at most {DISPLAY_NAME_CHARS_MAX} characters")
    try:
        row = await conn.fetchrow(
            "INSERT INTO web_users (username, display_name, password_hash, platform_admin, must_change_password)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING id", username, display_name, _hasher.hash(password),
            platform_admin, must_change_password, timeout=TIMEOUT_SECONDS)
    except asyncpg.UniqueViolationError as exc:
        raise UserExists(f"user {username!r} exists") from exc
    return await load_user(conn, str(row["id"]))  # type: ignore[return-value]


async def load_user(conn: asyncpg.Connection, user_id: str) -> User | None:
    row = await conn.fetchrow("SELECT * FROM web_users WHERE id = $1", uuid.UUID(user_id), timeout=TIMEOUT_SECONDS)
    if row is None:
        return None
    grants: dict[str, set[str]] = {}
    for g in await conn.fetch("SELECT organization_id::text AS org, role FROM web_grants WHERE user_id = $1",
                              row["id"], timeout=TIMEOUT_SECONDS):
        grants.setdefault(g["org"], set()).add(g["role"])
    return User(str(row["id"]), row["username"], row["display_name"], row["status"], row["platform_admin"],
                row["must_change_password"], {o: frozenset(r) for o, r in grants.items()})


async def user_by_name(conn: asyncpg.Connection, username: str) -> User:
    user_id = await conn.fetchval("SELECT id::text FROM web_users WHERE username = $1", username,
                                  timeout=TIMEOUT_SECONDS)
    user = None if user_id is None else await load_user(conn, user_id)
    if user is None:
        raise UserUnknown(f"no user {username!r}")
    return user


async def list_users(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT u.username, u.display_name, u.status, u.platform_admin, u.created_at, u.last_sign_in_at,"
        " u.locked_until > now() AS locked,"
        " coalesce(json_agg(json_build_object('organization_id', g.organization_id, 'role', g.role)"
        "          ORDER BY g.organization_id, g.role) FILTER (WHERE g.role IS NOT NULL), '[]')::text AS grants"
        " FROM web_users u LEFT JOIN web_grants g ON g.user_id = u.id GROUP BY u.id ORDER BY u.username",
        timeout=TIMEOUT_SECONDS)
    return [{**dict(r), "locked": bool(r["locked"]), "grants": json.loads(r["grants"])} for r in rows]


async def set_status(conn: asyncpg.Connection, username: str, status: str) -> None:
    if status not in ("active", "disabled"):
        raise InvalidInput("status is active or disabled")
    done = await conn.fetchval("UPDATE web_users SET status = $2 WHERE username = $1 RETURNING true",
                               username, status, timeout=TIMEOUT_SECONDS)
    if not done:
        raise UserUnknown(f"no user {username!r}")
    if status == "disabled":
        await conn.execute("DELETE FROM web_sessions WHERE user_id = (SELECT id FROM web_users WHERE username = $1)",
                           username, timeout=TIMEOUT_SECONDS)


async def grant(conn: asyncpg.Connection, username: str, org: str, role: str, *, granted_by: str) -> None:
    if role not in ROLES:
        raise InvalidInput(f"role is one of {', '.join(ROLES)}")
    try:
        org_id = uuid.UUID(org)
    except (ValueError, TypeError) as exc:
        raise InvalidInput("organisation is a UUID") from exc
    user = await user_by_name(conn, username)
    try:
        await conn.execute("INSERT INTO web_grants (user_id, organization_id, role, granted_by) VALUES ($1, $2, $3, $4)"
                           " ON CONFLICT DO NOTHING", uuid.UUID(user.id), org_id, role, granted_by,
                           timeout=TIMEOUT_SECONDS)
    except asyncpg.ForeignKeyViolationError as exc:
        raise InvalidInput(f"no organisation {org}") from exc


async def set_password(conn: asyncpg.Connection, user_id: str, password: str) -> None:
    check_password(password)
    await conn.execute("UPDATE web_users SET password_hash = $2, must_change_password = false WHERE id = $1",
                       uuid.UUID(user_id), _hasher.hash(password), timeout=TIMEOUT_SECONDS)


async def sign_in(conn: asyncpg.Connection, username: str, password: str, *, failures_max: int,
                  lockout: timedelta) -> SignIn:
    """Check a password; count a failure (locking after ``failures_max``), or reset the count."""
    if not USERNAME_RE.fullmatch(username):
        _verify(_dummy_hash(), password)
        return SignIn(None, "invalid")
    row = await conn.fetchrow("SELECT id::text, password_hash, status, locked_until > now() AS locked"
                              " FROM web_users WHERE username = $1", username, timeout=TIMEOUT_SECONDS)
    if row is None:
        _verify(_dummy_hash(), password)
        return SignIn(None, "invalid")
    if row["locked"]:
        return SignIn(None, "locked")
    if not _verify(row["password_hash"], password):
        locked = await conn.fetchval(
            "UPDATE web_users SET failed_sign_ins = failed_sign_ins + 1,"
            " locked_until = CASE WHEN failed_sign_ins + 1 >= $2 THEN now() + $3 ELSE locked_until END"
            " WHERE id = $1 RETURNING locked_until > now()", uuid.UUID(row["id"]), failures_max, lockout,
            timeout=TIMEOUT_SECONDS)
        return SignIn(None, "locked" if locked else "invalid")
    if row["status"] != "active":
        return SignIn(None, "disabled")
    await conn.execute("UPDATE web_users SET failed_sign_ins = 0, locked_until = NULL, last_sign_in_at = now()"
                       " WHERE id = $1", uuid.UUID(row["id"]), timeout=TIMEOUT_SECONDS)
    return SignIn(await load_user(conn, row["id"]))


def _verify(encoded: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(encoded, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def create_session(conn: asyncpg.Connection, user_id: str, lifetime: timedelta) -> tuple[str, str]:
    """A new session: (cookie token, CSRF token)."""
    token, csrf = secrets.token_urlsafe(TOKEN_BYTES), secrets.token_urlsafe(TOKEN_BYTES)
    await conn.execute("INSERT INTO web_sessions (token_hash, user_id, csrf_token, expires_at)"
                       " VALUES ($1, $2, $3, now() + $4)", token_hash(token), uuid.UUID(user_id), csrf, lifetime,
                       timeout=TIMEOUT_SECONDS)
    return token, csrf


async def session_user(conn: asyncpg.Connection, token: str) -> tuple[User, str] | None:
    """The active user and CSRF token of an unexpired session, else None (expired sessions are removed)."""
    row = await conn.fetchrow(
        "UPDATE web_sessions s SET last_seen_at = now() FROM web_users u"
        " WHERE s.token_hash = $1 AND u.id = s.user_id AND s.expires_at > now() AND u.status = 'active'"
        " RETURNING s.user_id::text, s.csrf_token", token_hash(token), timeout=TIMEOUT_SECONDS)
    if row is None:
        await conn.execute("DELETE FROM web_sessions WHERE token_hash = $1 OR expires_at < now()",
                           token_hash(token), timeout=TIMEOUT_SECONDS)
        return None
    user = await load_user(conn, row["user_id"])
    return None if user is None else (user, row["csrf_token"])


async def end_session(conn: asyncpg.Connection, token: str) -> None:
    await conn.execute("DELETE FROM web_sessions WHERE token_hash = $1", token_hash(token), timeout=TIMEOUT_SECONDS)


async def create_api_token(conn: asyncpg.Connection, username: str, name: str, lifetime: timedelta) -> str:
    user = await user_by_name(conn, username)
    if not 1 <= len(name) <= 100:
        raise InvalidInput("a token name has 1 to 100 characters")
    token = "hera_" + secrets.token_urlsafe(TOKEN_BYTES)
    await conn.execute("INSERT INTO web_api_tokens (token_hash, user_id, name, expires_at) VALUES ($1, $2, $3, now() + $4)",
                       token_hash(token), uuid.UUID(user.id), name, lifetime, timeout=TIMEOUT_SECONDS)
    return token


async def token_user(conn: asyncpg.Connection, token: str) -> User | None:
    user_id = await conn.fetchval(
        "SELECT t.user_id::text FROM web_api_tokens t JOIN web_users u ON u.id = t.user_id"
        " WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > now() AND u.status = 'active'",
        token_hash(token), timeout=TIMEOUT_SECONDS)
    return None if user_id is None else await load_user(conn, user_id)


async def bootstrap_admin(conn: asyncpg.Connection, username: str = "admin") -> str | None:
    """Make the first platform admin with a one-time password (returned); if that user exists and
    has not yet replaced its one-time password, issue a new one; else None (nothing changed)."""
    password = new_password()
    row = await conn.fetchrow("SELECT id::text, must_change_password FROM web_users WHERE username = $1", username,
                              timeout=TIMEOUT_SECONDS)
    if row is None:
        await add_user(conn, username, password, display_name="Administrator", platform_admin=True,
                       must_change_password=True)
        return password
    if not row["must_change_password"]:
        return None
    await conn.execute("UPDATE web_users SET password_hash = $2, failed_sign_ins = 0, locked_until = NULL"
                       " WHERE id = $1", uuid.UUID(row["id"]), _hasher.hash(password), timeout=TIMEOUT_SECONDS)
    return password
