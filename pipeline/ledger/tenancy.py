"""Tenant scoping of a database transaction: the role and organisations row-level security sees.

Inside a transaction, ``act_for(conn, orgs)`` switches to the application role ``hera_app``
(NOBYPASSRLS) and sets ``app.organization_id`` to the organisations acted for, both LOCAL so
they end with the transaction. Every tenant table's policy admits only rows whose
``organization_id`` is among them: a connection acting for A can neither read nor write B.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from functools import lru_cache

import asyncpg

from pipeline.ledger.migrate import APP_ROLE

ORGS_PER_TRANSACTION_MAX = 10_000
ORG_IDS_CACHED_MAX = 65_536


def org_uuid(value: object) -> uuid.UUID | None:
    """The organisation id as a UUID, or None when it is not one."""
    if isinstance(value, uuid.UUID):
        return value
    return _parse_uuid(value) if isinstance(value, str) else None


@lru_cache(maxsize=ORG_IDS_CACHED_MAX)
def _parse_uuid(text: str) -> uuid.UUID | None:
    # memoised: a batch names the same few organisations thousands of times
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


async def act_for(conn: asyncpg.Connection, orgs: Iterable[str | uuid.UUID]) -> None:
    """Scope the open transaction to ``orgs`` (call right after BEGIN)."""
    ids = _acting_ids(orgs)
    await conn.execute("SELECT set_config('role', $1, true), set_config('app.organization_id', $2, true)",
                       APP_ROLE, ",".join(ids))


def begin_acting_for(orgs: Iterable[str | uuid.UUID]) -> str:
    """``BEGIN`` and ``act_for`` as one simple query, so a short transaction starts in one round trip.
    Every value is generated here, never typed by a user: the role is a constant and each organisation
    is formatted from a parsed UUID (hex digits and dashes only)."""
    ids = _acting_ids(orgs)
    return (f"BEGIN; SELECT set_config('role', '{APP_ROLE}', true),"
            f" set_config('app.organization_id', '{','.join(ids)}', true)")


@asynccontextmanager
async def acting_transaction(conn: asyncpg.Connection, orgs: Iterable[str | uuid.UUID]
                             ) -> AsyncIterator[asyncpg.Connection]:
    """Like ``tenant_transaction`` (read-write), two round trips fewer: BEGIN and the scoping go
    together, and COMMIT is sent as is. On any failure the transaction is rolled back (or, when the
    connection is lost, the pool discards it)."""
    await conn.execute(begin_acting_for(orgs))
    try:
        yield conn
    except BaseException:
        if not conn.is_closed() and conn.is_in_transaction():
            await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


@asynccontextmanager
async def tenant_transaction(conn: asyncpg.Connection, orgs: Iterable[str | uuid.UUID], *,
                             readonly: bool = False) -> AsyncIterator[asyncpg.Connection]:
    """A database transaction on ``conn`` that sees and writes only the rows of ``orgs``."""
    async with conn.transaction(readonly=readonly):
        await act_for(conn, orgs)
        yield conn


def _acting_ids(orgs: Iterable[str | uuid.UUID]) -> list[str]:
    ids = sorted({str(org_uuid(o) or _invalid(o)) for o in orgs})
    if len(ids) > ORGS_PER_TRANSACTION_MAX:
        raise ValueError(f"acting for {len(ids)} organisations, more than {ORGS_PER_TRANSACTION_MAX}")
    return ids


def _invalid(value: object) -> str:
    raise ValueError(f"not an organisation id (UUID): {value!r}")
