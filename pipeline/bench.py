"""``hera bench``: end-to-end throughput and latency, with the same run's raw limits beside them.

Three numbers that only mean something together, all measured in one run on one machine:
* broker: raw produce and consume rates of the same events with a plain aiokafka client;
* database: raw COPY rate of journal-line-sized rows with asyncpg;
* pipeline: events/s from the first produce until every event is accounted for, and the
  produce → posted latency percentiles (broker timestamps of the raw and the posted record).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from typing import Any

from pipeline.config import Settings


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    qs = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {"p50": round(qs[49], 3), "p95": round(qs[94], 3), "p99": round(qs[98], 3), "max": round(max(values), 3)}


async def broker_limits(settings: Settings, events: list[bytes]) -> dict[str, float]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from pipeline.brokers import client_kwargs, ensure_topics

    topic = f"{settings.topic_prefix}bench-raw-{uuid.uuid4().hex[:6]}"
    await ensure_topics(settings, [topic])
    producer = AIOKafkaProducer(**client_kwargs(settings), linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    started = time.perf_counter()
    try:
        futures = [await producer.send(topic, e) for e in events]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    produce_s = time.perf_counter() - started
    consumer = AIOKafkaConsumer(topic, **client_kwargs(settings), auto_offset_reset="earliest",
                                group_id=None, enable_auto_commit=False)
    await consumer.start()
    started, seen = time.perf_counter(), 0
    try:
        while seen < len(events) and time.perf_counter() - started < 120:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            seen += sum(len(v) for v in batch.values())
    finally:
        await consumer.stop()
    consume_s = time.perf_counter() - started
    return {"produce_per_second": round(len(events) / produce_s), "consume_per_second": round(seen / consume_s)}


async def database_limits(dsn: str, rows: int = 50_000) -> dict[str, float]:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute("CREATE TEMP TABLE bench_lines (id uuid, org uuid, account text, side text,"
                           " amount numeric(20,4), currency text, smart_code text)")
        org, code = uuid.uuid4(), "HERA.FIN.EXP.TRAVEL.GROUND.v1"
        from decimal import Decimal
        records = [(uuid.uuid4(), org, "6420", "DR" if i % 2 else "CR", Decimal("12.34"), "USD", code)
                   for i in range(rows)]
        started = time.perf_counter()
        await conn.copy_records_to_table("bench_lines", records=records)
        seconds = time.perf_counter() - started
    finally:
        await conn.close()
    return {"copy_rows_per_second": round(rows / seconds)}


def run_bench(settings: Settings, n_events: int, *, workers: int = 1, timeout_seconds: float = 600.0) -> dict[str, Any]:
    from pydantic import SecretStr

    from pipeline import services
    from pipeline.live import ensure_services

    env: dict[str, str] = {}
    scratch: tuple[str, str] | None = None
    if not settings.database_external:
        # the embedded server: a fresh database per run, so that runs compare (a ledger grown by
        # earlier runs makes later ones slower), dropped afterwards
        ensure_services(settings)
        admin, name = settings.dsn(), f"hera_bench_{uuid.uuid4().hex[:8]}"
        dsn = asyncio.run(services.create_database(admin, name))
        scratch, env["HERA_DATABASE_URL"] = (admin, name), dsn
        settings = settings.model_copy(update={"database_url": SecretStr(dsn)})
    try:
        return _run_bench(settings, n_events, workers, timeout_seconds, env)
    finally:
        if scratch is not None:
            asyncio.run(services.drop_database(*scratch))


def _run_bench(settings: Settings, n_events: int, workers: int, timeout_seconds: float, env: dict[str, str]
               ) -> dict[str, Any]:
    from pipeline.live import Tracker, isolated_run, org_key, produce, start_worker, stop_worker

    settings, events = isolated_run(settings, "bench", n_events)
    limits = {"broker": asyncio.run(broker_limits(settings, events)),
              "database": asyncio.run(database_limits(settings.dsn()))}
    procs = [start_worker(settings, {**env, "HERA_TOPIC_PREFIX": settings.topic_prefix,
                                     "HERA_WORKER_ID": f"bench-{i}"}) for i in range(workers)]

    async def drive() -> dict[str, Any]:
        tracker = Tracker(settings)
        await tracker.start()
        await asyncio.sleep(8 + 4 * (workers - 1))  # let the workers join, so the clock measures processing
        try:
            keys = [org_key(value) for value in events]  # a producer knows its events' organisations
            started = time.monotonic()
            metas = await produce(settings, events, keys)
            while len(tracker.accounted) < len(events) and time.monotonic() - started < timeout_seconds:
                await tracker.poll()
            elapsed = time.monotonic() - started
        finally:
            await tracker.stop()
        sent_ms = {(m.partition, m.offset): m.timestamp for m in metas}
        latencies = [(tracker.posted_at_ms[k] - sent_ms[k]) / 1000 for k in tracker.posted_at_ms if k in sent_ms]
        counts = tracker.counts()
        return {"events": len(events), "accounted_for": len(tracker.accounted), "seconds": round(elapsed, 2),
                "events_per_second": round(len(tracker.accounted) / elapsed, 1),
                "posted": counts["posted"], "review": counts["review"], "rejected": counts["rejected"],
                "latency_seconds": percentiles(latencies)}

    try:
        pipeline = asyncio.run(drive())
    finally:
        for proc in procs:
            stop_worker(proc)
    return {"pipeline": pipeline, "limits": limits, "partitions": settings.partitions, "workers": workers,
            "batch_size_max": settings.batch_size_max, "cores": __import__("os").cpu_count()}
