"""``hera bench``: end-to-end throughput and latency, with the same run's raw limits beside them.

Two modes, each measured in one run on one machine beside the raw limits it should be read against:
* flat out (``--events N``): N events produced at once; events/s from the first produce until every
  event is accounted for, beside the raw produce/consume rates of a plain aiokafka client and the raw
  COPY rate of asyncpg (``run_bench``);
* open loop (``--rate R --duration S``): a plain Kafka producer offers R events/s for S seconds
  whatever the pipeline does (so a slow pipeline shows as latency, not as a slower producer), beside
  the raw broker round trip (produce → a plain consumer has it) at the same rate (``run_rate_bench``).

Latency is from the raw record's timestamp to its posted record's timestamp (both CreateTime, set
by producers on this machine's clock), for every posted event; figures in BENCHMARKS.md.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from pipeline.config import Settings

WORKER_JOIN_SECONDS = 8.0  # a worker's group join and first assignment, before the clock starts
WORKER_JOIN_EXTRA_SECONDS = 4.0  # per further worker (one more rebalance)
DRAIN_SECONDS_MAX = 60.0  # after the offered load stops, how long to wait for the last outcomes
PROBE_SECONDS_MAX = 5.0  # the raw broker round trip is measured over at most this long
WARM_UP_EVENTS = 40  # over 40 organisations: every partition gets some
WARM_UP_SEED = 99_991
WARM_UP_SECONDS_MAX = 180.0
PRODUCER_LINGER_MS = 0  # the open-loop producer sends each event when it is due


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
    """Flat out: ``n_events`` produced at once, throughput until all are accounted for."""
    return _on_scratch_database(settings, lambda s, env: _run_bench(s, n_events, workers, timeout_seconds, env))


def run_rate_bench(settings: Settings, rate: float, duration_seconds: float, *, workers: int = 1,
                   drain_seconds: float = DRAIN_SECONDS_MAX) -> dict[str, Any]:
    """Open loop: ``rate`` events/s offered for ``duration_seconds``; latency percentiles."""
    return _on_scratch_database(settings, lambda s, env: _run_rate_bench(s, rate, duration_seconds, workers,
                                                                         drain_seconds, env))


def _on_scratch_database(settings: Settings, fn: Callable[[Settings, dict[str, str]], dict[str, Any]]
                         ) -> dict[str, Any]:
    """Run ``fn`` on a fresh database of the embedded server (dropped afterwards), so that runs
    compare: a ledger grown by earlier runs makes later ones slower. External databases are used as
    they are."""
    from pydantic import SecretStr

    from pipeline.devtools import services
    from pipeline.devtools.live import ensure_services

    env: dict[str, str] = {}
    scratch: tuple[str, str] | None = None
    if not settings.database_external:
        ensure_services(settings)
        admin, name = settings.dsn(), f"hera_bench_{uuid.uuid4().hex[:8]}"
        dsn = asyncio.run(services.create_database(admin, name))
        scratch, env["HERA_DATABASE_URL"] = (admin, name), dsn
        settings = settings.model_copy(update={"database_url": SecretStr(dsn)})
    try:
        return fn(settings, env)
    finally:
        if scratch is not None:
            asyncio.run(services.drop_database(*scratch))


def _run_bench(settings: Settings, n_events: int, workers: int, timeout_seconds: float, env: dict[str, str]
               ) -> dict[str, Any]:
    from pipeline.devtools.live import Tracker, isolated_run, org_key, produce, start_worker, stop_worker

    settings, events = isolated_run(settings, "bench", n_events)
    limits = {"broker": asyncio.run(broker_limits(settings, events)),
              "database": asyncio.run(database_limits(settings.dsn()))}
    profiles = _profile_paths(settings, workers)
    procs = [start_worker(settings, {**env, "HERA_TOPIC_PREFIX": settings.topic_prefix,
                                     "HERA_WORKER_ID": f"bench-{i}", "HERA_PROFILE_FILE": str(profiles[i])})
             for i in range(workers)]

    async def drive() -> dict[str, Any]:
        tracker = Tracker(settings)
        await tracker.start()
        await asyncio.sleep(join_seconds(workers))  # let the workers join, so the clock measures processing
        try:
            keys = [org_key(value) for value in events]  # a producer knows its events' organisations
            budget.start()
            started = time.monotonic()
            metas = await produce(settings, events, keys)
            while len(tracker.accounted) < len(events) and time.monotonic() - started < timeout_seconds:
                await tracker.poll()
            elapsed = time.monotonic() - started
            budget.stop()
        finally:
            await tracker.stop()
        sent_ms = {(m.partition, m.offset): m.timestamp for m in metas}
        latencies = [(tracker.posted_at_ms[k] - sent_ms[k]) / 1000 for k in tracker.posted_at_ms if k in sent_ms]
        counts = tracker.counts()
        return {"events": len(events), "accounted_for": len(tracker.accounted), "seconds": round(elapsed, 2),
                "events_per_second": round(len(tracker.accounted) / elapsed, 1),
                "posted": counts["posted"], "review": counts["review"], "rejected": counts["rejected"],
                "latency_seconds": percentiles(latencies),
                "cpu_ms_per_event": budget.per_event_ms(len(tracker.accounted))}

    budget = cpu_budget(settings, procs, scratch_database="HERA_DATABASE_URL" in env)
    try:
        pipeline = asyncio.run(drive())
    finally:
        for proc in procs:
            stop_worker(proc)
    return {"pipeline": pipeline, "limits": limits, "worker_hops": [_read_profile(p) for p in profiles],
            "partitions": settings.partitions, "workers": workers, "batch_size_max": settings.batch_size_max,
            "cores": os.cpu_count()}


def cpu_budget(settings: Settings, procs: list[Any], *, scratch_database: bool) -> Any:
    """The processes whose CPU a run's events cost: the workers, the embedded broker and PostgreSQL
    (with its backends) when they run here (the bench's scratch database is on the embedded server),
    and this bench (producer and tracker)."""
    from pathlib import Path

    from pipeline.devtools import services
    from pipeline.devtools.cpu_budget import CpuBudget

    state = settings.embedded_state
    broker = state.get("kafka", {}).get("pid") if not settings.kafka_external else None
    data_dir = state.get("postgres", {}).get("data_dir")
    postmaster = services.postmaster_pid(Path(data_dir)) if scratch_database and data_dir else None
    budget = CpuBudget()
    budget.add("workers", [p.pid for p in procs])
    budget.add("broker", [broker] if services.pid_alive(broker) else [])
    budget.add("postgres", [postmaster] if services.pid_alive(postmaster) else [], with_children=True)
    budget.add("bench", [os.getpid()])
    return budget


def _profile_paths(settings: Settings, workers: int) -> list[Any]:
    """Where each bench worker writes its per-hop times on exit (``HERA_PROFILE_FILE``)."""
    return [settings.home.resolve() / "bench" / f"{settings.topic_prefix}{i}.profile.json" for i in range(workers)]


def join_seconds(workers: int) -> float:
    return WORKER_JOIN_SECONDS + WORKER_JOIN_EXTRA_SECONDS * (workers - 1)


async def warm_up(settings: Settings, producer: Any, tracker: Any, workers: int, orgs: list[str]) -> int:
    """Wait until the workers have joined and handle events on every partition, so that the offered
    load measures processing, not start-up: a few events of other organisations (every partition gets
    some), and one of each organisation of the run (``orgs``: its first event registers it, seeds its
    chart and creates its keys, a cost paid once per organisation, not per event), until all are
    accounted for. Returns how many."""
    from pipeline.devtools.live import org_key
    from pipeline.devtools.sample import sample_events, sample_orgs

    await asyncio.sleep(join_seconds(workers) / 2)
    events = list(sample_events(WARM_UP_EVENTS, seed=WARM_UP_SEED, bad_share=0.0,
                                 orgs=sample_orgs(WARM_UP_EVENTS, WARM_UP_SEED)))
    events += list(sample_events(len(orgs), seed=WARM_UP_SEED + 1, bad_share=0.0, orgs=orgs))
    await asyncio.gather(*[await producer.send(settings.topic("raw"), e, key=org_key(e)) for e in events])
    deadline = time.monotonic() + WARM_UP_SECONDS_MAX
    while len(tracker.accounted) < len(events) and time.monotonic() < deadline:
        await tracker.poll()
    await asyncio.sleep(1.0)  # the workers' first commits and a quiet second before the clock starts
    return len(events)


async def offer(producer: Any, topic: str, events: list[bytes], keys: list[bytes | None], rate: float,
                on_sent: Callable[[int], None] | None = None) -> list[tuple[Any, int]]:
    """Send ``events`` at ``rate`` per second from now, each when it is due (open loop: the schedule
    never waits for the consumer side); returns each one's produce future and send time (epoch ms:
    the record's CreateTime, which aiokafka's RecordMetadata reports only for a batch's first record)."""
    futures: list[tuple[Any, int]] = []
    started = time.monotonic()
    for i, (value, key) in enumerate(zip(events, keys, strict=True)):
        delay = started + i / rate - time.monotonic()
        if delay > 0.001:
            await asyncio.sleep(delay)
        sent_ms = int(time.time() * 1000)
        futures.append((await producer.send(topic, value, key=key, timestamp_ms=sent_ms), sent_ms))
        if on_sent is not None and i % 64 == 0:
            on_sent(i + 1)
    return futures


def run_orgs(events: list[bytes]) -> list[str]:
    """The organisations of ``events``, in order of first appearance (unparseable events skipped)."""
    import orjson

    seen: dict[str, None] = {}
    for value in events:
        try:
            org = orjson.loads(value).get("organization_id")
        except (orjson.JSONDecodeError, AttributeError):
            continue
        if isinstance(org, str):
            seen.setdefault(org)
    return list(seen)


def _producer(settings: Settings) -> Any:
    from aiokafka import AIOKafkaProducer

    from pipeline.brokers import client_kwargs

    return AIOKafkaProducer(**client_kwargs(settings), linger_ms=PRODUCER_LINGER_MS, acks=1)


async def broker_round_trip(settings: Settings, events: list[bytes], rate: float) -> dict[str, Any]:
    """The floor any pipeline on this broker starts from: a plain producer offering ``events`` at
    ``rate``, a plain consumer reading them; seconds from a record's timestamp to its consumption."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from pipeline.brokers import client_kwargs, ensure_topics

    topic = f"{settings.topic_prefix}bench-probe-{uuid.uuid4().hex[:6]}"
    await ensure_topics(settings, [topic])
    consumer = AIOKafkaConsumer(**client_kwargs(settings), enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest", fetch_max_wait_ms=5)
    await consumer.start()
    tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    producer = _producer(settings)
    await producer.start()
    latencies: list[float] = []

    async def consume() -> None:
        while len(latencies) < len(events):
            batch = await consumer.getmany(timeout_ms=100, max_records=5000)
            now_ms = time.time() * 1000
            latencies.extend((now_ms - m.timestamp) / 1000 for msgs in batch.values() for m in msgs)

    reader = asyncio.ensure_future(consume())
    try:
        await asyncio.gather(*[f for f, _ in await offer(producer, topic, events, [None] * len(events), rate)])
        await asyncio.wait_for(reader, timeout=30)
    finally:
        reader.cancel()
        await producer.stop()
        await consumer.stop()
    return {"events": len(latencies), "latency_seconds": percentiles(latencies)}


def _run_rate_bench(settings: Settings, rate: float, duration_seconds: float, workers: int, drain_seconds: float,
                    env: dict[str, str]) -> dict[str, Any]:
    from pipeline.devtools.live import isolated_run, org_key, start_worker, stop_worker

    n_events = max(1, round(rate * duration_seconds))
    settings, events = isolated_run(settings, "bench", n_events)
    probe = events[:max(1, round(rate * min(duration_seconds, PROBE_SECONDS_MAX)))]
    broker = asyncio.run(broker_round_trip(settings, probe, rate))
    profiles = _profile_paths(settings, workers)
    procs = [start_worker(settings, {**env, "HERA_TOPIC_PREFIX": settings.topic_prefix,
                                     "HERA_WORKER_ID": f"bench-{i}", "HERA_PROFILE_FILE": str(profiles[i])})
             for i in range(workers)]
    keys = [org_key(value) for value in events]  # a producer knows its events' organisations
    budget = cpu_budget(settings, procs, scratch_database="HERA_DATABASE_URL" in env)
    try:
        pipeline = asyncio.run(_drive_open_loop(settings, events, keys, rate, workers, drain_seconds, budget))
    finally:
        for proc in procs:
            stop_worker(proc)
    return {"mode": "open_loop", "offered_per_second": rate, "duration_seconds": duration_seconds,
            "pipeline": pipeline, "broker_round_trip": broker, "worker_hops": [_read_profile(p) for p in profiles], "partitions": settings.partitions,
            "workers": workers, "batch_size_max": settings.batch_size_max, "cores": os.cpu_count()}


async def _drive_open_loop(settings: Settings, events: list[bytes], keys: list[bytes | None], rate: float,
                           workers: int, drain_seconds: float, budget: Any) -> dict[str, Any]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pipeline.devtools.live import Tracker

    tracker = Tracker(settings)
    await tracker.start()
    producer = _producer(settings)
    await producer.start()
    warm = await warm_up(settings, producer, tracker, workers, run_orgs(events))
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=Console(stderr=True), transient=True)
    try:
        with progress:
            offered = progress.add_task("offered", total=len(events))
            done = progress.add_task("accounted for", total=len(events))
            budget.start()
            started = time.monotonic()
            sending = asyncio.ensure_future(offer(producer, settings.topic("raw"), events, keys, rate,
                                                  lambda n: progress.update(offered, completed=n)))
            deadline = started + len(events) / rate + drain_seconds
            while len(tracker.accounted) < warm + len(events) and time.monotonic() < deadline:
                await tracker.poll()
                progress.update(done, completed=len(tracker.accounted) - warm)
            futures = await sending
            progress.update(offered, completed=len(events))
            elapsed = time.monotonic() - started
            budget.stop()
            metas = await asyncio.gather(*[f for f, _ in futures])
    finally:
        await producer.stop()
        await tracker.stop()
    sent_ms = {(m.partition, m.offset): at for m, (_, at) in zip(metas, futures, strict=True)}
    latencies = [(tracker.posted_at_ms[k] - sent_ms[k]) / 1000 for k in tracker.posted_at_ms if k in sent_ms]
    counts = tracker.counts()
    mine = [tracker.accounted[k] for k in sent_ms if k in tracker.accounted]
    return {"events": len(events), "accounted_for": len(mine), "seconds": round(elapsed, 2),
            "events_per_second": round(len(mine) / elapsed, 1), "warm_up_events": warm,
            "posted": counts["posted"], "review": counts["review"], "rejected": counts["rejected"],
            "duplicate": counts["duplicate"], "deferred": counts["deferred"], "anomalies": dict(tracker.extra),
            "latency_seconds": percentiles(latencies), "cpu_ms_per_event": budget.per_event_ms(len(mine))}


def _read_profile(path: Any) -> Any:
    """A worker's per-hop times (``agents/profile.py``), written when it stopped; removed once read."""
    import json
    from pathlib import Path

    target = Path(path)
    try:
        data = json.loads(target.read_text())
    except (OSError, ValueError):
        return None
    target.unlink(missing_ok=True)
    return data
