"""The circuit breaker on real faults: a refused connection (a port nobody listens on) counts,
an answer of a live PostgreSQL (a division by zero, an unknown organisation) does not; while open,
calls fail at once with a transient error (retried, never dead-lettered); a trial call after the
reset time closes it again."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from pipeline.devtools import services
from pipeline.ledger.errors import OrganizationUnknownError, TransientError
from pipeline.ledger.migrate import migrate
from pipeline.ledger.store import LedgerStore
from pipeline.observability.metrics import BREAKER_OPENED
from pipeline.resilience.breaker import Breaker, CircuitOpenError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
RESET_SECONDS = 0.3


async def refused() -> None:
    await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{services.free_port()}/x", timeout=2)


async def test_faults_open_it_answers_do_not_and_a_trial_closes_it(database_url: str) -> None:
    breaker = Breaker("test-db", failures_max=3, reset_seconds=RESET_SECONDS)

    async def answer() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.fetchval("SELECT 1 / 0")
        finally:
            await conn.close()

    for _ in range(5):  # the database answered: not a fault, however often
        with pytest.raises(asyncpg.DivisionByZeroError):
            await breaker.call(answer)
    assert breaker.state == "closed"
    opened_before = BREAKER_OPENED.labels("test-db")._value.get()
    for _ in range(3):
        with pytest.raises(OSError):
            await breaker.call(refused)
    assert breaker.is_open and breaker.state == "open"
    assert BREAKER_OPENED.labels("test-db")._value.get() == opened_before + 1
    with pytest.raises(CircuitOpenError) as err:
        await breaker.call(answer)  # refused at once, without trying
    assert isinstance(err.value, TransientError)
    await asyncio.sleep(RESET_SECONDS * 1.5)
    assert not breaker.is_open and breaker.state == "half-open"

    async def healthy() -> int:
        conn = await asyncpg.connect(database_url)
        try:
            return int(await conn.fetchval("SELECT 1"))
        finally:
            await conn.close()

    assert await breaker.call(healthy) == 1
    assert breaker.state == "closed"


async def test_the_store_goes_through_the_breaker_and_business_errors_pass(database_url: str) -> None:
    await migrate(database_url)
    store = await LedgerStore.connect(database_url, pool_size=1)
    try:
        with pytest.raises(OrganizationUnknownError):
            await store.set_org_settings("6d1f4f7e-3a51-4d6e-9a8f-2f0c1c1b2a10", {"x": 1})
        assert store.breaker.state == "closed"
        assert store.breaker.name == "database"
        assert isinstance(await store.known_organizations(), set)
    finally:
        await store.close()
