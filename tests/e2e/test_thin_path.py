"""End to end through the real broker and PostgreSQL: raw -> classified -> posted, in one hop for
events keyed by organisation (as ``hera``'s own producers key them).

A worker runs as a separate process (as in production); the test is a producer and a downstream
consumer. Every raw event must be accounted for exactly once and every posted entry must be in the
ledger, balanced.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from pipeline.brokers import ensure_topics, partition_counts, topic_configs
from pipeline.config import Settings
from pipeline.devtools.live import Tracker, produce, start_worker, stop_worker
from pipeline.devtools.sample import sample_events
from tests.e2e.harness import worker_login

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

EVENTS = 300


async def test_mixed_events_are_all_accounted_for(kafka_bootstrap: str, database_url: str, topic_prefix: str,
                                                  tmp_path: Path) -> None:
    from pipeline.ledger.migrate import migrate

    settings = Settings(kafka_bootstrap=kafka_bootstrap, database_url=database_url, topic_prefix=topic_prefix,
                        home=tmp_path, partitions=2, app_id=f"hera-{topic_prefix}")
    await ensure_topics(settings)
    await migrate(database_url)
    events = list(sample_events(EVENTS, seed=11, bad_share=0.05))
    worker = start_worker(settings, {"HERA_KAFKA_BOOTSTRAP": kafka_bootstrap, "HERA_DATABASE_URL": database_url,
                                     "HERA_WORKER_DATABASE_URL": await worker_login(database_url),
                                     "HERA_TOPIC_PREFIX": topic_prefix, "HERA_PARTITIONS": "2",
                                     "HERA_APP_ID": settings.app_id})
    tracker = Tracker(settings)
    await tracker.start()
    try:
        await produce(settings, events)
        deadline = time.monotonic() + 150
        while len(tracker.accounted) < EVENTS and time.monotonic() < deadline and worker.poll() is None:
            await tracker.poll()
        # the worker commits what it handled (within its 1 s commit interval) while it runs
        group, raw = f"{topic_prefix}{settings.app_id}", settings.topic("raw")
        ends = await topic_sizes(kafka_bootstrap, [raw])
        committed = await committed_total(kafka_bootstrap, group, raw, settings.partitions)
        while committed < ends[raw] and time.monotonic() < deadline + 10:
            await asyncio.sleep(0.5)
            committed = await committed_total(kafka_bootstrap, group, raw, settings.partitions)
        assert committed == ends[raw] == EVENTS, (committed, ends)
    finally:
        await tracker.stop()
        stop_worker(worker)
    log = (tmp_path / "worker.log").read_text(errors="replace")[-3000:]
    assert len(tracker.accounted) == EVENTS, f"only {len(tracker.accounted)} of {EVENTS} accounted; log:\n{log}"
    assert not tracker.extra, f"an event was accounted twice or dead-lettered from elsewhere: {tracker.extra}"
    counts = tracker.counts()
    assert counts["posted"] > EVENTS // 2
    assert counts["rejected"] >= 1  # the sample stream carries bad input on purpose
    conn = await asyncpg.connect(database_url)
    try:
        in_ledger = await conn.fetchval("SELECT count(*) FROM universal_transactions")
        unbalanced = await conn.fetchval("""
            SELECT count(*) FROM (
              SELECT transaction_id FROM universal_transaction_lines GROUP BY transaction_id, currency
              HAVING sum(CASE WHEN side = 'DR' THEN amount ELSE -amount END) <> 0) u""")
    finally:
        await conn.close()
    assert in_ledger == counts["posted"]
    assert unbalanced == 0
    # the worker's tables live in compacted changelog topics (a key's last value is what counts)
    changelogs = [n for n in await topic_names(kafka_bootstrap) if n.startswith(settings.topic_prefix)
                  and n.endswith("-changelog")]
    assert len(changelogs) == 3, changelogs
    assert {c["cleanup.policy"] for c in (await topic_configs(kafka_bootstrap, changelogs)).values()} == {"compact"}
    # keyed by organisation, every event was already on its organisation's partition: none took the
    # re-keying hop, and every auto-posted one was published as classified
    ends = await topic_sizes(kafka_bootstrap, [settings.topic("validated"), settings.topic("classified")])
    assert ends[settings.topic("validated")] == 0, ends
    assert ends[settings.topic("classified")] == counts["posted"], ends
    await check_published_contracts(settings, counts)


async def check_published_contracts(settings: Settings, counts: dict[str, int]) -> None:
    """Every message the run published validates against its JSON Schema (schemas/json/), and the
    posted ones keep the producer's source, carry their origin and the classification's confidence."""
    import json

    import jsonschema

    from pipeline.envelopes import headers_dict
    from schemas.messages import SCHEMA_HEADER, SCHEMA_HEADER_VALUES, json_schema

    for name, topic_key in (("posted", "posted"), ("review", "review"), ("deadletter", "deadletter")):
        validator = jsonschema.Draft202012Validator(json_schema(name), format_checker=jsonschema.FormatChecker())
        messages = await read_messages(settings.kafka_bootstrap or "", settings.topic(topic_key))
        assert len(messages) >= {"posted": counts["posted"], "review": 0, "deadletter": 1}[name]
        for m in messages:
            headers = headers_dict(m.headers)
            if SCHEMA_HEADER in headers:
                assert headers[SCHEMA_HEADER] == SCHEMA_HEADER_VALUES[name].decode()
            body = headers if name == "deadletter" else json.loads(m.value)
            errors = [e.message for e in validator.iter_errors(body)]
            assert not errors, (name, errors[:3], body)
            if name == "posted":
                assert body["source"] in ("bank_feed", "card_feed", "pos", "erp", "api")
                assert body["origin"]["topic"] == settings.topic("raw")
                assert body["confidence"] == format(Decimal(str(body["classification"]["confidence"])).normalize(), "f")


async def read_messages(bootstrap: str, topic: str) -> list[Any]:
    """Every record of ``topic`` up to its current end."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    count = (await partition_counts(bootstrap, [topic]))[topic]
    tps = [TopicPartition(topic, p) for p in range(count)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        got: list[Any] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all([await consumer.position(tp) >= ends[tp] for tp in tps]):
                break
            for msgs in (await consumer.getmany(timeout_ms=500)).values():
                got += [m for m in msgs if m.offset < ends[TopicPartition(m.topic, m.partition)]]
        return got
    finally:
        await consumer.stop()


async def committed_total(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return sum([await consumer.committed(TopicPartition(topic, p)) or 0 for p in range(partitions)])
    finally:
        await consumer.stop()


async def topic_sizes(bootstrap: str, topics: list[str]) -> dict[str, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        sizes = {}
        for topic in topics:
            count = (await partition_counts(bootstrap, [topic]))[topic]
            tps = [TopicPartition(topic, p) for p in range(count)]
            sizes[topic] = sum((await consumer.end_offsets(tps)).values())
        return sizes
    finally:
        await consumer.stop()


async def topic_names(bootstrap: str) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return list(await admin.list_topics())
    finally:
        await admin.close()
