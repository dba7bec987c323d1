"""The one retry policy of the product: bounded attempts, capped exponential backoff with full
jitter, and a metric per retry (``hera_stage_retries_total{stage, kind="transient"}``).

Only transient faults are retried (a lost connection, a serialization failure, a broker timeout):
the same work may succeed on a later attempt. Bad input and bugs are never retried here; the agents
dead-letter them (``agents/failure.py``). When the attempts run out the last fault is raised:
the caller decides what giving up means (the store raises it to its caller; a worker stops, so its
unacknowledged records are redelivered to whoever owns the partition next: ``agents/stages.py``).

Built on tenacity, so the policy is one object that reads the same at every call site::

    await retry_policy("post").call(lambda: store.post_batch(entries))
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_random_exponential,
)

log = logging.getLogger("hera.retry")

T = TypeVar("T")

ATTEMPTS_MAX = 8
BACKOFF_BASE_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 5.0
ELAPSED_SECONDS_MAX = 60.0


def is_transient(exc: BaseException) -> bool:
    """Faults that a later retry of the same work can cure (never bad input, never a bug)."""
    import asyncpg
    from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NotLeaderForPartitionError

    from pipeline.ledger.errors import TransientError, map_db_error
    from pipeline.resilience import breaker

    if breaker.database().state != "closed":
        return True  # the database is down or on trial: whatever failed, the record is not to blame
    if isinstance(exc, (TransientError, ConnectionError, OSError, asyncio.TimeoutError, KafkaConnectionError,
                        KafkaTimeoutError, NotLeaderForPartitionError, asyncpg.InterfaceError)):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        return isinstance(map_db_error(exc), TransientError)
    return False


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry ``is_retryable`` faults up to ``attempts_max`` times within ``elapsed_seconds_max``."""

    stage: str
    attempts_max: int = ATTEMPTS_MAX
    elapsed_seconds_max: float = ELAPSED_SECONDS_MAX
    backoff_base_seconds: float = BACKOFF_BASE_SECONDS
    backoff_cap_seconds: float = BACKOFF_CAP_SECONDS
    is_retryable: Callable[[BaseException], bool] = is_transient
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            stop=self._stop,
            wait=wait_random_exponential(multiplier=self.backoff_base_seconds, max=self.backoff_cap_seconds),
            retry=retry_if_exception(self.is_retryable),
            before_sleep=self._count,
            sleep=self.sleep,
            reraise=True,
        )

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        async for attempt in self.retrying():
            with attempt:
                return await fn()
        raise AssertionError("unreachable: tenacity raises when it stops")

    def _stop(self, state: RetryCallState) -> bool:
        """Bounded by attempts and time, except while the database's circuit breaker is not closed
        (open, or half-open between trial calls): then the breaker paces the trial calls and the
        partitions are paused (back-pressure), and giving up would dead-letter or strand good work only
        because the database is away. (Judged on ``is_open`` alone, a fault that landed just as the
        breaker turned half-open ended the retries, and the worker stopped mid-outage.)"""
        from pipeline.resilience import breaker

        if breaker.database().state != "closed":
            return False
        return (state.attempt_number >= self.attempts_max
                or (state.seconds_since_start or 0.0) >= self.elapsed_seconds_max)

    def _count(self, state: RetryCallState) -> None:
        from pipeline.observability import metrics

        metrics.RETRIES.labels(self.stage, "transient").inc()
        exc = state.outcome.exception() if state.outcome is not None else None
        log.warning("%s: transient fault (attempt %d of %d), retrying: %r", self.stage, state.attempt_number,
                    self.attempts_max, exc)


def retry_policy(stage: str, **overrides: Any) -> RetryPolicy:
    return RetryPolicy(stage, **overrides)
