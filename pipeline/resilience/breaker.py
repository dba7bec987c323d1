"""Circuit breakers around remote dependencies (the database; any remote classifier tier), on
purgatory's asyncio breaker.

Why: when PostgreSQL is away every batch fails; retried record by record, good events would end
as POISON dead letters. With a breaker, ``BREAKER_FAILURES_MAX`` consecutive infrastructure faults
open it; while open, calls fail at once with ``CircuitOpenError`` (a ``TransientError``: the
agents retry the batch, never dead-letter it) and the worker pauses its partitions
(``agents/observe.py``); after ``BREAKER_RESET_SECONDS`` one trial call is let through and a
success closes it. Business refusals (unknown account, closed period …) are answers, not faults:
they never count.

    breaker = named("database")
    result = await breaker.call(lambda: do_io())   # raises CircuitOpenError while open
    breaker.is_open                                # True while calls are refused
    breaker.state                                  # "closed" | "half-open" | "open"

Breakers are per process and named; ``named`` returns the same one for a name.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from pipeline.ledger.errors import TransientError
from pipeline.observability import metrics

T = TypeVar("T")
BREAKER_FAILURES_MAX = 5
BREAKER_RESET_SECONDS = 5.0
STATE_VALUES = {"closed": 0, "half-opened": 1, "opened": 2}
STATE_NAMES = {"closed": "closed", "half-opened": "half-open", "opened": "open"}


class CircuitOpenError(TransientError):
    """The breaker is open: the dependency is treated as down; retry later, never dead-letter."""


def is_infrastructure_fault(exc: BaseException) -> bool:
    """A fault of the dependency itself (unreachable, lost connection, timeout, server shutting
    down), as opposed to an answer it gave (a constraint, an unknown organisation)."""
    import asyncpg

    from pipeline.ledger.errors import LedgerError, map_db_error

    if isinstance(exc, (ConnectionError, OSError, asyncio.TimeoutError, asyncpg.InterfaceError,
                        asyncpg.PostgresConnectionError)) or lost_connection(exc):
        return True
    if isinstance(exc, (asyncpg.PostgresError, LedgerError)):
        return isinstance(map_db_error(exc), TransientError) and getattr(exc, "sqlstate", None) not in {
            "40001", "40P01"}  # serialization failures and deadlocks are contention, not an outage
    return False


def lost_connection(exc: BaseException) -> bool:
    """True when ``exc`` is or was raised while handling a lost connection."""
    import asyncpg

    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        # InternalClientError ("cannot switch to state …; another operation is in progress") is what
        # asyncpg raises when the server terminates a connection under a commit (seen with PostgreSQL
        # stopped mid-batch): the connection is broken, not the records
        if isinstance(cause, (ConnectionError, asyncpg.PostgresConnectionError, asyncpg.InternalClientError)):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


class Breaker:
    """One named breaker. ``is_fault`` says which exceptions count as failures of the dependency."""

    def __init__(self, name: str, *, failures_max: int = BREAKER_FAILURES_MAX,
                 reset_seconds: float = BREAKER_RESET_SECONDS,
                 is_fault: Callable[[BaseException], bool] = is_infrastructure_fault) -> None:
        self.name = name
        self.failures_max = failures_max
        self.reset_seconds = reset_seconds
        self._factory = AsyncCircuitBreakerFactory(default_threshold=failures_max, default_ttl=reset_seconds,
                                                   exclude=[(BaseException, lambda exc: not is_fault(exc))])
        self._factory.add_listener(self._on_event)
        self._breaker: Any = None
        metrics.BREAKER_STATE.labels(name).set(0)

    async def call(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run ``op`` through the breaker; ``CircuitOpenError`` at once while it is open."""
        if self._breaker is None:
            self._breaker = await self._factory.get_breaker(self.name)
        try:
            async with self._breaker:
                return await op()
        except OpenedState as exc:
            raise CircuitOpenError(f"circuit breaker {self.name!r} is open") from exc

    @property
    def state(self) -> str:
        """``closed``, ``half-open`` or ``open`` (an open breaker past its reset time is half-open:
        the next call is its trial)."""
        ctx = self._breaker.context if self._breaker is not None else None
        if ctx is None:
            return "closed"
        if ctx.state == "opened" and time.time() > (ctx.opened_at or 0) + self.reset_seconds:
            return "half-open"
        return STATE_NAMES.get(ctx.state, "closed")

    @property
    def is_open(self) -> bool:
        """True while calls are refused: pause consuming and wait (see ``agents/observe.py``)."""
        return self.state == "open"

    def _on_event(self, name: str, event_name: str, event: Any) -> None:
        if event_name != "state_changed":
            return
        metrics.BREAKER_STATE.labels(name).set(STATE_VALUES.get(event.state, 0))
        if event.state == "opened":
            metrics.BREAKER_OPENED.labels(name).inc()


_BREAKERS: dict[str, Breaker] = {}


def named(name: str, **options: Any) -> Breaker:
    """The process's breaker called ``name`` (created with ``options`` on first use)."""
    if name not in _BREAKERS:
        _BREAKERS[name] = Breaker(name, **options)
    return _BREAKERS[name]


def configure(failures_max: int, reset_seconds: float) -> None:
    """Set the defaults of breakers not created yet (the worker calls this from its settings)."""
    global BREAKER_FAILURES_MAX, BREAKER_RESET_SECONDS
    BREAKER_FAILURES_MAX, BREAKER_RESET_SECONDS = failures_max, reset_seconds


def database() -> Breaker:
    """The breaker around PostgreSQL (``LedgerStore`` calls go through it)."""
    return named("database", failures_max=BREAKER_FAILURES_MAX, reset_seconds=BREAKER_RESET_SECONDS)


def classifier_tier() -> Breaker:
    """The breaker for a remote classifier tier: wrap its calls in ``classifier_tier().call(...)``
    so an unreachable tier is retried, never blamed on the event."""
    return named("classifier", failures_max=BREAKER_FAILURES_MAX, reset_seconds=BREAKER_RESET_SECONDS)
