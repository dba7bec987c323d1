"""Session fixtures: one real PostgreSQL server and one real Kafka-protocol broker per test session.

Started from the same code as ``hera services up`` (pipeline.devtools.services), in a temporary home so a
test run never touches a developer's ``.hera/``. Each test gets a fresh database and a fresh topic
prefix. Set HERA_TEST_KAFKA_BOOTSTRAP / HERA_TEST_DATABASE_URL to run against external services.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pipeline.devtools import services


@pytest.fixture(scope="session")
def services_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="hera-test-"))
    home.chmod(0o755)
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server(services_home: Path) -> Iterator[str]:
    """Admin (superuser) DSN of a real PostgreSQL server for the whole session."""
    external = os.environ.get("HERA_TEST_DATABASE_URL")
    if external:
        yield external
        return
    data_dir = services_home / "postgres" / "data"
    handle = services.start_postgres(data_dir, services.free_port(), durable=False)
    try:
        yield handle.url("postgres")
    finally:
        services.stop_postgres(data_dir)


@pytest.fixture()
async def database_url(pg_server: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test (superuser DSN); dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield await services.create_database(pg_server, name)
    await services.drop_database(pg_server, name)


@pytest.fixture(scope="session")
def kafka_bootstrap(services_home: Path) -> Iterator[str]:
    """Bootstrap address of a real Kafka-protocol broker for the whole session."""
    external = os.environ.get("HERA_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    broker = services.start_broker(services_home / "kafka", services.free_port())
    try:
        yield broker.bootstrap
    finally:
        services.terminate(broker.pid)


@pytest.fixture()
def topic_prefix() -> str:
    """A fresh topic namespace per test."""
    return f"t{uuid.uuid4().hex[:10]}."


def run(coro):  # helper for sync tests that need one async call
    return asyncio.run(coro)
