"""Caches of per-organisation reads: bounded, expiring, and invalidated by the writes that change
what they hold, in this process and (through Redis) in every other."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from pipeline.devtools import services
from pipeline.ledger.cache import KINDS, BoundedMemoryCache, CacheConfigError, OrgCaches
from pipeline.ledger.migrate import migrate
from pipeline.ledger.store import LedgerStore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
ORG = "3b7e2c5a-6f1d-4d8e-9c2b-1a0f9e8d7c6b"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A real Redis server (Debian's redis-server, installed by `make setup`), for this module."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is missing: `make setup` installs it"
    port = services.free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture()
async def ledger(database_url: str) -> AsyncIterator[str]:
    await migrate(database_url)
    store = await LedgerStore.connect(database_url, pool_size=1)
    try:
        await store.ensure_organization(ORG)
    finally:
        await store.close()
    yield database_url


async def behind_the_stores_back(dsn: str, settings_json: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("UPDATE core_organizations SET settings = $1::jsonb WHERE id = $2", settings_json,
                           uuid.UUID(ORG))
    finally:
        await conn.close()


async def test_memory_cache_is_bounded_and_expires() -> None:
    cache = BoundedMemoryCache(3)
    for i in range(5):
        await cache.set(f"k{i}", i)
    assert await cache.multi_get([f"k{i}" for i in range(5)]) == [None, None, 2, 3, 4]
    await cache.set("k2", 22)  # re-set: now the newest
    await cache.set("k5", 5)
    assert await cache.multi_get(["k2", "k3", "k5"]) == [22, None, 5]
    await cache.set("short", 1, ttl=0.1)
    await asyncio.sleep(0.3)
    assert await cache.get("short") is None
    assert all(kind.size_max > 0 and kind.ttl_seconds > 0 for kind in KINDS.values())


async def test_settings_memory_and_chart_are_cached_and_invalidated_by_writes(ledger: str) -> None:
    store = await LedgerStore.connect(ledger, pool_size=2)
    try:
        assert await store.org_settings(ORG) == {}
        await behind_the_stores_back(ledger, '{"rate_limit_per_minute": 7}')
        assert await store.org_settings(ORG) == {}, "read again from the database: not cached"
        await store.set_org_settings(ORG, {"rate_limit_burst": 9})
        assert await store.org_settings(ORG) == {"rate_limit_per_minute": 7, "rate_limit_burst": 9}

        assert await store.load_memory(ORG) == {}
        await store.save_memory(ORG, {"org_memory": {"acme": "X"}})
        assert await store.load_memory(ORG) == {"org_memory": {"acme": "X"}}

        await store.caches.set_many("chart", {ORG: {"1010": uuid.uuid4()}})
        await store.add_account(ORG, "6991", "Other", "expense", "DR")
        assert await store.caches.get_many("chart", [ORG]) == {}
    finally:
        await store.close()


async def test_redis_shares_invalidation_between_processes(ledger: str, redis_url: str) -> None:
    worker = await LedgerStore.connect(ledger, pool_size=1, caches=OrgCaches.from_url(redis_url))
    operator = await LedgerStore.connect(ledger, pool_size=1, caches=OrgCaches.from_url(redis_url))
    try:
        assert worker.caches.shared
        assert await worker.org_settings(ORG) == {}
        await behind_the_stores_back(ledger, '{"rate_limit_per_minute": 3}')
        assert await worker.org_settings(ORG) == {}  # from Redis
        await operator.set_org_settings(ORG, {"rate_limit_burst": 4})  # e.g. `hera org set` elsewhere
        assert await worker.org_settings(ORG) == {"rate_limit_per_minute": 3, "rate_limit_burst": 4}
    finally:
        await worker.close()
        await operator.close()


async def test_an_unreachable_redis_is_a_miss_not_an_error(ledger: str) -> None:
    nobody = f"redis://127.0.0.1:{services.free_port()}/0"
    store = await LedgerStore.connect(ledger, pool_size=1, caches=OrgCaches.from_url(nobody))
    try:
        assert await store.org_settings(ORG) == {}
        await store.set_org_settings(ORG, {"rate_limit_burst": 5})
        assert await store.org_settings(ORG) == {"rate_limit_burst": 5}
    finally:
        await store.close()


def test_a_cache_url_that_cannot_work_is_refused() -> None:
    with pytest.raises(CacheConfigError, match="HERA_CACHE_URL"):
        OrgCaches.from_url("memcached://127.0.0.1:11211")
