"""``agents.outbox.produce_all`` against the real broker: the same records on the same partitions, in
order, as one ``producer.send`` per message would give — headers, unkeyed, explicit partitions, full
batches and a record larger than a batch included."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from agents.outbox import Message, produce_all
from pipeline.brokers import ensure_topics

pytestmark = pytest.mark.integration

PARTITIONS = 3


async def read_all(bootstrap: str, topic: str, expected: int) -> dict[int, list[tuple[bytes | None, bytes, list]]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    got: dict[int, list[tuple[bytes | None, bytes, list]]] = {p: [] for p in range(PARTITIONS)}
    try:
        for _ in range(100):
            if sum(len(v) for v in got.values()) >= expected:
                break
            for tp, msgs in (await consumer.getmany(timeout_ms=200)).items():
                got[tp.partition] += [(m.key, m.value, list(m.headers)) for m in msgs]
    finally:
        await consumer.stop()
    return got


async def test_produce_all_matches_one_send_per_message(kafka_bootstrap: str) -> None:
    topic = f"outbox-{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_bootstrap, [topic], partitions=PARTITIONS)
    keyed = [Message(topic, None, f"org-{i % 17}".encode(), f"value-{i}-".encode() * 40,
                     (("hera-reason", b"X"),) if i % 5 == 0 else None) for i in range(600)]  # several full batches
    pinned = [Message(topic, 2, None, f"pinned-{i}".encode()) for i in range(5)]
    big = Message(topic, None, b"org-3", b"B" * 100_000)  # larger than a whole batch
    unkeyed = Message(topic, None, None, b"anywhere")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, max_request_size=2_000_000)
    await producer.start()
    try:
        await produce_all(producer, [*keyed[:300], big, *pinned, unkeyed, *keyed[300:]])
        expected_partition = {m.key: producer._partition(topic, None, None, None, m.key, m.value) for m in keyed}
    finally:
        await producer.stop()

    got = await read_all(kafka_bootstrap, topic, len(keyed) + len(pinned) + 2)
    assert sum(len(v) for v in got.values()) == len(keyed) + len(pinned) + 2
    for msg in keyed:  # where one send per message (the producer's partitioner) would have put it
        assert (msg.key, msg.value, list(msg.headers or [])) in got[expected_partition[msg.key]]
    for partition, records in got.items():  # in the order given, per partition
        values = [value for _, value, _ in records]
        mine = [m.value for m in [*keyed[:300], big, *pinned, *keyed[300:]]
                if (m.partition if m.partition is not None else expected_partition[m.key]) == partition]
        assert [v for v in values if v != b"anywhere"] == mine
    assert sum(value == b"anywhere" for records in got.values() for _, value, _ in records) == 1
    assert [value for _, value, _ in got[2] if value.startswith(b"pinned")] == [m.value for m in pinned]
