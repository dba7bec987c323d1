"""The database logins: the owner (runs migrations and admin commands) and the worker.

The worker logs in as ``hera_worker`` (migration 0010): LOGIN, NOSUPERUSER, NOBYPASSRLS, owner of
nothing, member of ``hera_app`` only. Row-level security therefore binds it whatever it does with
``SET ROLE`` / ``RESET ROLE``. Its password is set here by the owner: from a file the embedded
services generate (``<HERA_HOME>/postgres/worker.password``, mode 0600), or by an operator on a
server of their own (``ALTER ROLE hera_worker PASSWORD …``, then ``HERA_WORKER_DATABASE_URL``).
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

WORKER_ROLE = "hera_worker"
CONNECT_TIMEOUT_SECONDS = 10.0


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
