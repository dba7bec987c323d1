"""``hera prepare`` (the migration Job's command) and ``hera probe`` (the image's health check)
against the real broker and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import asyncpg
import pytest

from pipeline.devtools import services
from pipeline.observability.health import Health, serve

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def hera(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=90)


async def test_prepare_creates_topics_and_migrates(kafka_bootstrap: str, database_url: str, topic_prefix: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    out = hera("prepare", HERA_KAFKA_BOOTSTRAP=kafka_bootstrap, HERA_DATABASE_URL=database_url,
               HERA_TOPIC_PREFIX=topic_prefix, HERA_PARTITIONS="3")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"prepared": True, "topic_prefix": topic_prefix, "partitions": 3}
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT to_regclass('universal_transactions') IS NOT NULL")
    finally:
        await conn.close()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        topics = set(await admin.list_topics())
    finally:
        await admin.close()
    assert f"{topic_prefix}hera.transactions.raw" in topics


def test_probe_exits_0_on_200_and_1_otherwise() -> None:
    health = Health()
    server = serve(health, 0)
    port = str(server.server_address[1])
    try:
        starting = hera("probe", "/startupz", HERA_METRICS_PORT=port)
        assert starting.returncode == 1 and json.loads(starting.stdout)["status"] == "fail"
        health.mark_started()
        live = hera("probe", "/livez", HERA_METRICS_PORT=port, HERA_METRICS_HOST="0.0.0.0")
        assert live.returncode == 0 and json.loads(live.stdout)["status"] == "ok"
    finally:
        server.shutdown()
        server.server_close()
    nobody = hera("probe", "/livez", HERA_METRICS_PORT=str(services.free_port()))
    assert nobody.returncode == 1 and json.loads(nobody.stdout)["status"] == "unreachable"
