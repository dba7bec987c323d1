"""The database logins: the owner (runs migrations and admin commands) and the worker.

The worker logs in as ``hera_worker`` (migration 0010): LOGIN, NOSUPERUSER, NOBYPASSRLS, owner of
nothing, member of ``hera_app`` only. Row-level security therefore binds it whatever it does with
``SET ROLE`` / ``RESET ROLE``. Its password is set here by the owner: from a file the embedded
services generate (``<HERA_HOME>/postgres/worker.password``, mode 0600), or by an operator on a
server of their own (``ALTER ROLE hera_worker PASSWORD …``, then ``HERA_WORKER_DATABASE_URL``).

``check_worker_login`` is what the worker runs at start-up: it refuses a login that row-level
security would not bind (a superuser, BYPASSRLS, or the owner of a ledger table or a member of its
owner), naming ``HERA_WORKER_DATABASE_URL``.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from pipeline.domain.errors import HeraError

WORKER_ROLE = "hera_worker"
CONNECT_TIMEOUT_SECONDS = 10.0
# tables whose owner bypasses (or may switch off) row-level security on the ledger
LEDGER_TABLES = ("core_organizations", "universal_transactions", "universal_transaction_lines", "audit_log",
                 "audit_heads", "review_items", "classifier_memory", "privacy_subject_keys")
_LOGIN = """
SELECT r.rolname, r.rolsuper, r.rolbypassrls,
       ARRAY(SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'public' AND c.relname = ANY($1::text[]) AND pg_has_role(r.oid, c.relowner, 'MEMBER')
              ORDER BY c.relname) AS owns
  FROM pg_roles r WHERE r.rolname = current_user
"""


class WorkerLoginError(HeraError):
    """The worker's database login is too privileged for row-level security to bind it, or cannot be
    checked."""


def login_refusal(role: str, superuser: bool, bypassrls: bool, owns: list[str]) -> str | None:
    """Why a worker must not run as ``role`` (one line), or None when it may."""
    why = ("is a superuser" if superuser else "has BYPASSRLS" if bypassrls
           else f"owns the ledger tables ({', '.join(owns[:3])}{' …' if len(owns) > 3 else ''})" if owns else None)
    if why is None:
        return None
    return (f"the worker's database login {role!r} {why}: row-level security would not bind it; set "
            f"HERA_WORKER_DATABASE_URL to a login like {WORKER_ROLE} (NOSUPERUSER, NOBYPASSRLS, owner of "
            "nothing: SECURITY.md section 2)")


async def check_worker_login(dsn: str) -> None:
    """Raise ``WorkerLoginError`` (one line) unless ``dsn`` logs in as a role RLS binds."""
    try:
        conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_SECONDS)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise WorkerLoginError(f"cannot check the worker's database login: {type(exc).__name__}: {exc}") from None
    try:
        row = await conn.fetchrow(_LOGIN, list(LEDGER_TABLES), timeout=CONNECT_TIMEOUT_SECONDS)
    finally:
        await conn.close()
    refusal = login_refusal(row["rolname"], row["rolsuper"], row["rolbypassrls"], list(row["owns"]))
    if refusal is not None:
        raise WorkerLoginError(refusal)


def with_login(dsn: str, user: str, password: str) -> str:
    """``dsn`` (a postgresql:// URL) logging in as ``user`` with ``password`` instead."""
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"))


async def set_worker_password(admin_dsn: str, password: str) -> None:
    """Give ``hera_worker`` this password (as the owner, after migrations created the role)."""
    conn = await asyncpg.connect(admin_dsn, timeout=CONNECT_TIMEOUT_SECONDS)
    try:
        # a utility statement takes no parameters: quote the literal with the server's own function
        literal = await conn.fetchval("SELECT quote_literal($1::text)", password)
        await conn.execute(f"ALTER ROLE {WORKER_ROLE} PASSWORD {literal}")
    finally:
        await conn.close()
