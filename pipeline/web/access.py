"""Database work as the signed-in user: the role ``hera_web`` and the user's organisations.

Checked twice. The handlers ask ``require(user, org, roles)`` before anything runs. Then every
query runs inside ``WebDB.as_user``: a transaction that switches to ``hera_web`` and sets
``app.user_id``; the acting organisations (``app.organization_id``) are computed *by the database*
from the user's grants (``hera_user_orgs()``, migration 0020), intersected with the ones the
handler asked for. The restrictive policies of 0020 then admit only rows of organisations the user
holds a grant on, and writes only with the right role, whatever the handler asked.

Identity tables (users, sessions, tokens) are read through ``WebDB.owner()``: they are not
tenant data and are needed before anyone is signed in.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import asyncpg

from pipeline.domain.errors import HeraError
from pipeline.web.identity import User

WEB_ROLE = "hera_web"
TIMEOUT_SECONDS = 10.0


class AccessError(HeraError):
    """Root: the request may not do this (``Forbidden``) or names nothing the user can see (``NotFound``)."""


class Forbidden(AccessError):
    pass


class NotFound(AccessError):
    pass


def require(user: User, org: str, roles: frozenset[str] | set[str], what: str = "this") -> None:
    """Raise ``Forbidden`` unless ``user`` holds one of ``roles`` on ``org``."""
    if not user.may(org, roles):
        raise Forbidden(f"you may not {what} (your roles on this organisation do not allow it)")


def org_id(value: str) -> str:
    """A canonical organisation id, or ``NotFound`` (nothing the user could see has that id)."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError) as exc:
        raise NotFound("no such organisation") from exc


class WebDB:
    """The web app's connection pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, dsn: str, *, pool_size: int = 8) -> WebDB:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=pool_size, timeout=TIMEOUT_SECONDS,
                                         command_timeout=TIMEOUT_SECONDS)
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def owner(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection as the owning role, in a transaction (identity tables only)."""
        async with self.pool.acquire(timeout=TIMEOUT_SECONDS) as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def as_user(self, user: User, orgs: Iterable[str] | None = None, *,
                      readonly: bool = True) -> AsyncIterator[asyncpg.Connection]:
        """A transaction as ``user``: role hera_web, acting for ``orgs`` (None: every organisation the
        user may see) intersected, in the database, with the organisations the user holds grants on."""
        wanted = None if orgs is None else [uuid.UUID(o) for o in orgs]
        async with self.pool.acquire(timeout=TIMEOUT_SECONDS) as conn, conn.transaction(readonly=readonly):
            await conn.execute("SELECT set_config('role', $1, true), set_config('app.user_id', $2, true)",
                               WEB_ROLE, user.id, timeout=TIMEOUT_SECONDS)
            await conn.execute(
                "SELECT set_config('app.organization_id', array_to_string(ARRAY("
                " SELECT o FROM unnest(hera_user_orgs()) o WHERE $1::uuid[] IS NULL OR o = ANY ($1::uuid[])"
                " ORDER BY o), ','), true)", wanted, timeout=TIMEOUT_SECONDS)
            yield conn

    async def organizations(self, user: User) -> list[dict[str, str]]:
        """The organisations ``user`` may see: id and name, by name."""
        async with self.as_user(user) as conn:
            rows = await conn.fetch("SELECT id::text, organization_name AS name, settings->>'approval_threshold'"
                                    " AS approval_threshold FROM core_organizations ORDER BY organization_name, id",
                                    timeout=TIMEOUT_SECONDS)
        return [dict(r) for r in rows]
