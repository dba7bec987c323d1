"""Errors of the ledger package, mapped from PostgreSQL by SQLSTATE class and constraint name.

    LedgerError                  root (a HeraError)
    ├── TransientError           retry with backoff: serialization failure (40001), deadlock
    │                            (40P01), lost/refused connection, lock/statement timeout
    ├── IntegrityError           the database refused the write; ``constraint`` names why
    │   ├── UnbalancedEntryError      universal_transactions_balanced (deferred, at commit)
    │   ├── DuplicateEntryError       universal_transactions_org_event_key
    │   ├── PeriodClosedError         posting_periods_closed
    │   ├── TenantViolationError      row-level security refused the row (42501)
    │   └── (plain)                   any other 23xxx, or *_append_only (UPDATE/DELETE refused)
    ├── OrganizationUnknownError  the organisation is not registered
    └── MigrationError           a migration file is missing, altered after being applied, or failed

Never map by message text: messages change between PostgreSQL versions and locales.
"""

from __future__ import annotations

import asyncio

import asyncpg

from pipeline.domain.errors import HeraError
from pipeline.domain.outcomes import Reason


class LedgerError(HeraError):
    """Root of the ledger package's exceptions."""


class TransientError(LedgerError):
    """Retryable: the same work may succeed on a later attempt."""


class IntegrityError(LedgerError):
    """The database refused a write that would break an invariant or constraint."""

    reason: Reason | None = None

    def __init__(self, message: str, *, sqlstate: str | None = None, constraint: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.constraint = constraint


class UnbalancedEntryError(IntegrityError):
    reason = Reason.UNBALANCED


class DuplicateEntryError(IntegrityError):
    reason = Reason.DUPLICATE_CONFLICT


class PeriodClosedError(IntegrityError):
    reason = Reason.PERIOD_CLOSED


class TenantViolationError(IntegrityError):
    """A row of another organisation was written (row-level security WITH CHECK failed)."""


class OrganizationUnknownError(LedgerError):
    """The organisation is not registered (``LedgerStore.ensure_organization`` registers it)."""


class MigrationError(LedgerError):
    """Migrations cannot be applied as they are."""


_BY_CONSTRAINT: dict[str, type[IntegrityError]] = {
    "universal_transactions_balanced": UnbalancedEntryError,
    "universal_transactions_org_event_key": DuplicateEntryError,
    "posting_periods_closed": PeriodClosedError,
}
_TRANSIENT_SQLSTATES = frozenset({
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "55P03",  # lock_not_available
    "57014",  # query_canceled (statement timeout)
    "57P01", "57P02", "57P03",  # admin/crash shutdown, cannot connect now
    "53300",  # too_many_connections
})


def map_db_error(exc: BaseException) -> LedgerError:
    """The ledger error for a database exception (by SQLSTATE class and constraint name)."""
    if isinstance(exc, LedgerError):
        return exc
    if isinstance(exc, (asyncpg.PostgresConnectionError, ConnectionError, OSError, asyncio.TimeoutError)):
        return _chain(TransientError(f"connection problem: {type(exc).__name__}"), exc)
    sqlstate = getattr(exc, "sqlstate", None)
    constraint = getattr(exc, "constraint_name", None)
    if sqlstate in _TRANSIENT_SQLSTATES or (sqlstate or "").startswith("08"):
        return _chain(TransientError(f"transient database error {sqlstate}"), exc)
    if constraint in _BY_CONSTRAINT:
        return _chain(_BY_CONSTRAINT[constraint](str(exc), sqlstate=sqlstate, constraint=constraint), exc)
    if constraint is not None and constraint.endswith("_append_only"):
        return _chain(IntegrityError(str(exc), sqlstate=sqlstate, constraint=constraint), exc)
    if sqlstate == "42501" and constraint is None:
        return _chain(TenantViolationError(str(exc), sqlstate=sqlstate), exc)
    if sqlstate and sqlstate.startswith("23"):  # integrity_constraint_violation class
        return _chain(IntegrityError(str(exc), sqlstate=sqlstate, constraint=constraint), exc)
    return _chain(LedgerError(f"database error {sqlstate}: {exc}"), exc)


def _chain(err: LedgerError, cause: BaseException) -> LedgerError:
    err.__cause__ = cause
    return err
