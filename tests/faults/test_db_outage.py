"""PostgreSQL stopped for 30 s mid-stream: back-pressure, not dead letters.

The worker's database circuit breaker opens, its partitions pause, ``/readyz`` reports the
database as failed; when PostgreSQL is back the breaker closes on a trial call, the partitions
resume and every event ends accounted for exactly once: 0 POISON dead letters, 0 lost, 0 doubled.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from pipeline.devtools import services
from tests.e2e import harness
from tests.e2e.harness import Pipeline, org_ids, structured_events
from tests.e2e.test_metrics_and_probes import get, scrape, value
from tests.faults.test_worker_faults import BEFORE_FAULT, assert_all_accounted_once, start_mid_stream

pytestmark = [pytest.mark.faults]
pipe = harness.pipe  # fixture

EVENTS = 2000
OUTAGE_SECONDS = 30
READYZ_FAILS_WITHIN_SECONDS = 20


@pytest.mark.timeout(300)
async def test_postgres_down_30s_mid_stream(pipe: Pipeline, pg_server: str, services_home: Path) -> None:
    if os.environ.get("HERA_TEST_DATABASE_URL"):
        pytest.skip("the database is external: this test stops the session's own PostgreSQL")
    data_dir, port = services_home / "postgres" / "data", urlparse(pg_server).port
    assert port is not None
    metrics_port = services.free_port()
    events = structured_events(EVENTS, seed="dbdown", orgs=org_ids(50, "dbdown"))
    worker = pipe.start_worker("w-db", HERA_METRICS_PORT=str(metrics_port))
    at_fault, feeding = await start_mid_stream(pipe, events, [worker])
    assert get(metrics_port, "/readyz")[0] == 200

    services.stop_postgres(data_dir)
    stopped = time.monotonic()
    try:
        seen = {"not_ready": False, "breaker_open": False, "lag": False}
        while time.monotonic() - stopped < OUTAGE_SECONDS:
            status, body = get(metrics_port, "/readyz")
            if status == 503 and not body["checks"]["database"]["ok"]:
                seen["not_ready"] = True
            m = scrape(metrics_port)
            if value(m, "hera_circuit_breaker_state", name="database") == 2:
                seen["breaker_open"] = True
            if sum(v for (n, _), v in m.items() if n == "hera_consumer_lag_messages") > 0:
                seen["lag"] = True  # the feed goes on while the partitions are paused
            assert worker.poll() is None, f"the worker died during the outage:\n{pipe.log_tail()}"
            if not seen["not_ready"]:
                assert time.monotonic() - stopped < READYZ_FAILS_WITHIN_SECONDS, "/readyz never failed"
            await asyncio.sleep(1)
        await feeding
        await pipe.produce(events[BEFORE_FAULT:])  # more arrive while the database is still away
    finally:
        services.start_postgres(data_dir, port, durable=False)
        restarted = time.monotonic()
    assert seen == {"not_ready": True, "breaker_open": True, "lag": True}, seen

    await pipe.wait_accounted(EVENTS, 120, watch=[worker])
    acc = await assert_all_accounted_once(pipe, events)  # 0 rejected (so 0 POISON), 0 lost, 0 doubled
    deadline = time.monotonic() + 30
    while get(metrics_port, "/readyz")[0] != 200:
        assert time.monotonic() < deadline, f"/readyz did not recover: {get(metrics_port, '/readyz')[1]}"
        await asyncio.sleep(1)
    m = scrape(metrics_port)
    assert total_poison(m) == 0
    assert value(m, "hera_circuit_breaker_state", name="database") == 0
    assert value(m, "hera_circuit_breaker_opened_total", name="database") >= 1
    assert sum(v for (n, labels), v in m.items() if n == "hera_stage_retries_total" and ("kind", "transient") in labels) > 0
    log_text = (pipe.home / "worker.log").read_text(errors="replace")
    assert "database circuit breaker open: paused" in log_text, "the source partitions were never paused"
    assert "database circuit breaker no longer open: resumed" in log_text, "the source partitions were never resumed"
    print(f"PostgreSQL stopped {OUTAGE_SECONDS}s after {at_fault} posted; all accounted for "
          f"{time.monotonic() - restarted:.1f}s after its restart; {acc}")


def total_poison(samples: dict) -> float:
    return sum(v for (n, _), v in samples.items() if n == "hera_poison_events_total")
