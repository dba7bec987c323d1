"""What the pipeline relies on from Kafka, checked against the broker in use (Apache Kafka, embedded),
and the topics as ``hera`` creates them: partitions, retention, compaction, refusal of a mismatch.
"""

from __future__ import annotations

import json

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from pipeline.brokers import TopicLayoutError, ensure_topics, partition_counts, pipeline_topics, topic_configs
from pipeline.config import Settings

pytestmark = pytest.mark.integration

PARTITIONS = 4
BATCHES = 200
PER_BATCH = 7


async def produce_batches(bootstrap: str, topic: str) -> dict[int, list[int]]:
    """Write BATCHES batches of PER_BATCH records round-robin over partitions; return seqs per partition."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    written: dict[int, list[int]] = {p: [] for p in range(PARTITIONS)}
    try:
        seq = 0
        for b in range(BATCHES):
            part = b % PARTITIONS
            batch = producer.create_batch()
            for _ in range(PER_BATCH):
                batch.append(key=None, value=json.dumps({"seq": seq}).encode(), timestamp=None)
                written[part].append(seq)
                seq += 1
            fut = await producer.send_batch(batch, topic, partition=part)
            await fut
    finally:
        await producer.stop()
    return written


async def consume(bootstrap: str, topic: str, group: str, limit: int, *, commit_every: int | None = None
                  ) -> list[tuple[int, int]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                session_timeout_ms=6000, heartbeat_interval_ms=1000,
                                rebalance_timeout_ms=6000)
    await consumer.start()
    seen: list[tuple[int, int]] = []
    try:
        idle = 0
        while len(seen) < limit and idle < 40:
            records = await consumer.getmany(timeout_ms=250, max_records=limit - len(seen))
            if not records:
                idle += 1
                continue
            idle = 0
            for tp, msgs in records.items():
                seen.extend((tp.partition, json.loads(m.value)["seq"]) for m in msgs)
                if commit_every is not None:
                    await consumer.commit({tp: msgs[-1].offset + 1})
    finally:
        await consumer.stop()
    return seen


async def test_produce_consume_in_order_across_partitions(kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}conf.order"
    await ensure_topics(kafka_bootstrap, [topic], partitions=PARTITIONS)
    written = await produce_batches(kafka_bootstrap, topic)
    total = BATCHES * PER_BATCH
    seen = await consume(kafka_bootstrap, topic, f"{topic_prefix}g1", total)
    assert len(seen) == total
    for part in range(PARTITIONS):
        assert [s for p, s in seen if p == part] == written[part], f"partition {part} out of order"


async def test_end_offsets_equal_records_written(kafka_bootstrap: str, topic_prefix: str) -> None:
    """Exact end offsets (consumer lag, changelog recovery and ``hera verify`` depend on them)."""
    topic = f"{topic_prefix}conf.end"
    await ensure_topics(kafka_bootstrap, [topic], partitions=PARTITIONS)
    written = await produce_batches(kafka_bootstrap, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    assert {tp.partition: ends[tp] for tp in tps} == {p: len(v) for p, v in written.items()}


async def test_pipeline_topics_carry_retention_and_partitions(kafka_bootstrap: str, topic_prefix: str,
                                                              tmp_path) -> None:
    settings = Settings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, home=tmp_path,
                        partitions=3, raw_retention_hours=2)
    created = await ensure_topics(settings)
    assert sorted(created) == sorted(spec.name for spec in pipeline_topics(settings))
    assert set((await partition_counts(settings, created)).values()) == {3}
    raw, posted = settings.topic("raw"), settings.topic("posted")
    configs = await topic_configs(kafka_bootstrap, [raw, posted])
    assert configs[raw]["retention.ms"] == str(2 * 3_600_000)
    assert configs[posted]["retention.ms"] == str(168 * 3_600_000)
    assert await ensure_topics(settings) == []  # re-runnable


async def test_worker_refuses_topics_of_another_partition_count(kafka_bootstrap: str, topic_prefix: str,
                                                                tmp_path) -> None:
    settings = Settings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, home=tmp_path, partitions=2)
    await ensure_topics(settings)
    other = Settings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, home=tmp_path, partitions=4)
    with pytest.raises(TopicLayoutError, match="HERA_PARTITIONS") as refused:
        await ensure_topics(other)
    assert "has 2, not 4" in str(refused.value)


async def test_group_commit_and_resume_without_loss_or_duplicates(kafka_bootstrap: str, topic_prefix: str
                                                                   ) -> None:
    topic = f"{topic_prefix}conf.resume"
    group = f"{topic_prefix}g-resume"
    await ensure_topics(kafka_bootstrap, [topic], partitions=PARTITIONS)
    written = await produce_batches(kafka_bootstrap, topic)
    total = BATCHES * PER_BATCH
    first = await consume(kafka_bootstrap, topic, group, total // 3, commit_every=1)
    second = await consume(kafka_bootstrap, topic, group, total, commit_every=1)  # a restarted consumer
    seqs = [s for _, s in first + second]
    assert len(seqs) == total, f"lost or extra: {len(seqs)} of {total}"
    assert sorted(seqs) == sorted(s for v in written.values() for s in v)
    assert len(set(seqs)) == total, "duplicates after resume"


async def test_headers_keys_and_large_values_round_trip(kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}conf.misc"
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    big = b"x" * 900_000
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, max_request_size=2_000_000)
    await producer.start()
    try:
        await producer.send_and_wait(topic, big, key=b"k1", headers=[("h", b"v")])
        await producer.send_and_wait(topic, None, key=b"k2")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                                fetch_max_bytes=5_000_000, max_partition_fetch_bytes=5_000_000)
    await consumer.start()
    try:
        got = []
        while len(got) < 2:
            recs = await consumer.getmany(timeout_ms=1000)
            got.extend(m for msgs in recs.values() for m in msgs)
    finally:
        await consumer.stop()
    assert got[0].key == b"k1" and got[0].value == big and list(got[0].headers) == [("h", b"v")]
    assert got[1].key == b"k2" and got[1].value is None
