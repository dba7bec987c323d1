"""What makes a running worker observable and well-behaved when PostgreSQL fails, wired onto the
Faust app by one call: ``install(app, settings, health)`` (from ``agents/worker.py``).

* probes (``pipeline.observability.health``): readiness checks for the broker, the database, table
  recovery and the database circuit breaker; a heartbeat timer for liveness; startup is complete
  once Faust runs the app's timers (it starts them after the first table recovery);
* gauges refreshed by timers: consumer lag per assigned partition of the agents' source topics,
  review-queue depth and oldest-item age (one query every ``REVIEW_BACKLOG_SECONDS``);
* back-pressure: while the database breaker is open, every assigned source partition is paused
  (nothing new is fetched; the batch in hand is retried by the agent, never dead-lettered);
  they are resumed when the breaker lets a trial call through. ``hold_partitions`` is the whole
  rule, callable from any loop that owns a consumer; ``hold_fetching`` applies it to the
  worker's Kafka client (see there for why not through Faust's ``pause_partitions``).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

import faust

from pipeline.config import Settings
from pipeline.observability import metrics
from pipeline.observability.health import Health
from pipeline.resilience import breaker as breakers

log = logging.getLogger("hera.observe")

HEARTBEAT_SECONDS = 1.0
LAG_SECONDS = 5.0
REVIEW_BACKLOG_SECONDS = 15.0
BREAKER_POLL_SECONDS = 0.5
PROBE_TIMEOUT_SECONDS = 2.0
SOURCE_TOPIC_KEYS = ("raw", "validated", "deferred", "decisions", "audit")
_BACKLOG_SQL = ("SELECT count(*) AS depth, extract(epoch FROM now() - min(created_at))::float8 AS oldest"
                " FROM review_items WHERE status = 'open'")


def install(app: faust.App, settings: Settings, health: Health) -> None:
    """Register the probes' checks and the timers on ``app`` (before the worker starts)."""
    sources = {settings.topic(key) for key in SOURCE_TOPIC_KEYS}
    breakers.configure(settings.breaker_failures_max, settings.breaker_reset_seconds)
    db_breaker = breakers.database()
    health.add_readiness_check("broker", broker_check(settings.bootstrap()))
    health.add_readiness_check("database", database_check(settings.dsn()))
    health.add_readiness_check("table_recovery", lambda: "recovering" if getattr(app, "in_recovery", False) else None)
    health.add_readiness_check("database_breaker", lambda: f"breaker {db_breaker.state}" if db_breaker.is_open else None)
    backlog = ReviewBacklog(settings.dsn())

    @app.timer(interval=HEARTBEAT_SECONDS)  # type: ignore[untyped-decorator]
    async def hera_heartbeat() -> None:
        health.beat()
        if health.started_at is None:  # Faust starts timers once the first recovery is complete
            health.mark_started()
            metrics.WORKER_UP.set(health.started_at or time.time())

    @app.timer(interval=BREAKER_POLL_SECONDS)  # type: ignore[untyped-decorator]
    async def hera_back_pressure() -> None:
        await hold_fetching(app.consumer, sources, db_breaker.is_open)

    @app.timer(interval=LAG_SECONDS)  # type: ignore[untyped-decorator]
    async def hera_consumer_lag() -> None:
        metrics.set_consumer_lag(consumer_lags(app.consumer, sources))

    @app.timer(interval=REVIEW_BACKLOG_SECONDS)  # type: ignore[untyped-decorator]
    async def hera_review_backlog() -> None:
        await backlog.refresh()

    @app.on_before_shutdown.connect  # type: ignore[untyped-decorator,arg-type]
    async def _close(app: faust.App, **_: Any) -> None:
        await backlog.close()


def hold_partitions(breaker_open: bool, assigned: set[Any], paused: set[Any], pause: Callable[[Iterable[Any]], None],
                    resume: Callable[[Iterable[Any]], None]) -> None:
    """Pause every assigned source partition while the breaker is open; resume those paused here
    (and still assigned) once it is not. ``paused`` is the caller's memory of what it paused."""
    if breaker_open:
        todo = assigned - paused
        if todo:
            pause(todo)
            paused |= todo
            log.warning("database circuit breaker open: paused %d partitions", len(todo))
    elif paused:
        back = paused & assigned
        paused.clear()
        if back:
            resume(back)
            log.warning("database circuit breaker no longer open: resumed %d partitions", len(back))


async def hold_fetching(consumer: Any, topics: set[str], breaker_open: bool) -> None:
    """``hold_partitions`` on the aiokafka client under Faust's ``consumer``, on the client's own thread.

    Faust's ``pause_partitions`` is not used: it only removes the partitions from the set that
    ``Consumer.getmany`` filters its batch in hand by, so the rest of that batch's records for a
    partition paused mid-batch are dropped while the fetch position has already moved past them.
    After the resume, the next record delivered looks like the end of a gap and the commit passes
    the dropped records (they never reach the agents). aiokafka's own pause keeps the position at
    the first record not handed out, and throws away only records it has not returned yet, which it
    fetches again after the resume. Paused is read back from the client each time, so partitions
    assigned anew by a rebalance during an outage are paused too.
    """
    thread = consumer._thread
    client = thread._ensure_consumer()

    async def apply() -> None:
        assigned = {tp for tp in client.assignment() if tp.topic in topics}
        hold_partitions(breaker_open, assigned, client.paused() & assigned,
                        lambda tps: client.pause(*tps), lambda tps: client.resume(*tps))

    await thread.call_thread(apply)


def consumer_lags(consumer: Any, topics: set[str]) -> dict[tuple[str, int], tuple[int, int]]:
    """(high watermark minus committed offset, committed offset) for each assigned partition of
    ``topics`` whose figures are known (a partition not committed on yet in this session falls back to the position
    read so far)."""
    lags = {}
    for tp in consumer.assignment():
        if tp.topic not in topics:
            continue
        high = consumer.highwater(tp)
        done = consumer._committed_offset.get(tp)
        if done is None:
            read = consumer._read_offset.get(tp)
            done = None if read is None else read + 1
        if high is not None and done is not None:
            lags[(tp.topic, tp.partition)] = (int(high) - int(done), int(done))
    return lags


def broker_check(bootstrap: str) -> Callable[[], str | None]:
    """Passes when a TCP connection to any bootstrap server opens within the probe timeout."""
    hosts = [h.strip().rsplit(":", 1) for h in bootstrap.split(",") if h.strip()]

    def check() -> str | None:
        errors = []
        for host, port in hosts:
            try:
                socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_SECONDS).close()
                return None
            except OSError as exc:
                errors.append(f"{host}:{port} {type(exc).__name__}")
        return "unreachable: " + ", ".join(errors)

    return check


def database_check(dsn: str) -> Callable[[], Any]:
    """Passes when PostgreSQL answers ``SELECT 1`` on a fresh connection within the probe timeout."""
    async def check() -> None:
        import asyncpg

        conn = await asyncpg.connect(dsn, timeout=PROBE_TIMEOUT_SECONDS)
        try:
            await conn.fetchval("SELECT 1", timeout=PROBE_TIMEOUT_SECONDS)
        finally:
            await conn.close(timeout=PROBE_TIMEOUT_SECONDS)

    return check


class ReviewBacklog:
    """Open review items of every organisation (the DSN's role reads across tenants, as
    ``known_organizations`` does), on one connection kept for the purpose."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: Any = None

    async def refresh(self) -> None:
        import asyncpg

        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(self._dsn, timeout=PROBE_TIMEOUT_SECONDS)
            row = await self._conn.fetchrow(_BACKLOG_SQL, timeout=PROBE_TIMEOUT_SECONDS)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.debug("review backlog not refreshed: %r", exc)  # the gauges keep their last figures
            await self.close()
            return
        metrics.set_review_backlog(int(row["depth"]), row["oldest"])

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=PROBE_TIMEOUT_SECONDS)
            self._conn = None
