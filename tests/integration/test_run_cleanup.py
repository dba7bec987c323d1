"""``demo`` and ``bench`` clean up after themselves: the topics and consumer groups a run created
under its name are deleted, and nothing that existed before, or belongs to another run, is."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from pipeline.devtools.live import delete_run_names, kafka_names

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def _topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, num_partitions=1, replication_factor=1) for n in names])
    finally:
        await admin.close()


async def _group_commits(bootstrap: str, group: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"x")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    consumer.assign([TopicPartition(topic, 0)])
    await consumer.start()
    try:
        await consumer.getmany(timeout_ms=2000)
        await consumer.commit({TopicPartition(topic, 0): 1})
    finally:
        await consumer.stop()


async def test_a_run_deletes_only_its_own_topics_and_groups(kafka_bootstrap: str, topic_prefix: str) -> None:
    old = f"{topic_prefix}demo-old.raw"
    await _topics(kafka_bootstrap, [old, f"{topic_prefix}other.raw"])
    before = await kafka_names(kafka_bootstrap)
    mine = [f"{topic_prefix}demo-1234.raw", f"{topic_prefix}demo-1234.hera-stream-changelog"]
    beside = f"{topic_prefix}demo-5678.raw"  # another run's, going on at the same time
    await _topics(kafka_bootstrap, [*mine, beside])
    await _group_commits(kafka_bootstrap, f"{topic_prefix}demo-1234.hera-stream", mine[0])
    assert f"{topic_prefix}demo-1234.hera-stream" in (await kafka_names(kafka_bootstrap))[1]

    cleaned = await delete_run_names(kafka_bootstrap, [f"{topic_prefix}demo-1234."], before)

    topics, groups = await kafka_names(kafka_bootstrap)
    assert cleaned == {"topics_deleted": 2, "groups_deleted": 1}
    assert not set(mine) & topics and f"{topic_prefix}demo-1234.hera-stream" not in groups
    assert {old, f"{topic_prefix}other.raw", beside} <= topics
