"""Clients nobody here wrote: librdkafka (confluent-kafka) produces raw events, keyed and unkeyed, and a
downstream team reads ``hera.entries.posted`` in its own consumer group, as production users do.

Keyed records must land where the worker (aiokafka, murmur2 like Java clients) expects them, which
holds with ``partitioner=murmur2_random`` (the README tells librdkafka users to set it); unkeyed ones
are re-keyed by the worker. Every event must be accounted for, and the downstream group must read one
posted message per entry.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from pipeline.brokers import librdkafka_config
from pipeline.devtools.live import org_key
from tests.e2e import harness
from tests.e2e.harness import Pipeline, org_ids, structured_events

pytestmark = [pytest.mark.e2e]
pipe = harness.pipe  # fixture

KEYED = 150
UNKEYED = 90


def produce_with_librdkafka(pipe: Pipeline, events: list[bytes], *, keyed: bool) -> dict[int, int]:
    from confluent_kafka import Producer

    producer = Producer({**librdkafka_config(pipe.settings), "partitioner": "murmur2_random",
                         "linger.ms": 5, "enable.idempotence": True})
    delivered: dict[int, int] = {}
    errors: list[str] = []

    def on_delivery(err: object, msg: object) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            delivered[msg.partition()] = delivered.get(msg.partition(), 0) + 1  # type: ignore[attr-defined]

    for value in events:
        producer.produce(pipe.settings.topic("raw"), value=value, key=org_key(value) if keyed else None,
                         on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(30) == 0, "librdkafka did not deliver everything"
    assert not errors, errors
    return delivered


def expected_partition(key: bytes, partitions: int) -> int:
    from aiokafka.partitioner import murmur2

    return (murmur2(key) & 0x7FFFFFFF) % partitions


def consume_posted_in_group(pipe: Pipeline, group: str, n: int, timeout_seconds: float) -> list[dict]:
    from confluent_kafka import Consumer

    consumer = Consumer({**librdkafka_config(pipe.settings), "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([pipe.settings.topic("posted")])
    seen: list[dict] = []
    deadline = time.monotonic() + timeout_seconds
    try:
        while len(seen) < n and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            seen.append(json.loads(msg.value()))
            consumer.commit(message=msg, asynchronous=False)
    finally:
        consumer.close()
    return seen


@pytest.mark.timeout(240)
async def test_librdkafka_producer_and_consumer_group(pipe: Pipeline) -> None:
    orgs = org_ids(12, "rdk")
    keyed = structured_events(KEYED, seed="rdk-keyed", orgs=orgs)
    unkeyed = structured_events(UNKEYED, seed="rdk-unkeyed", orgs=orgs)
    worker = pipe.start_worker("w-rdk")
    await asyncio.to_thread(produce_with_librdkafka, pipe, keyed, keyed=True)
    await asyncio.to_thread(produce_with_librdkafka, pipe, unkeyed, keyed=False)

    # keyed records sit on the partition the worker's murmur2 gives their organisation
    for record in await pipe.read_topic("raw"):
        if record.key is not None:
            assert record.partition == expected_partition(record.key, pipe.partitions)

    total = KEYED + UNKEYED
    tracker = await pipe.wait_accounted(total, 150, watch=[worker])
    assert tracker.counts()["posted"] == total
    posted = await asyncio.to_thread(consume_posted_in_group, pipe, f"{pipe.topic_prefix}downstream", total, 60)
    assert len(posted) == total
    assert len({m["entry_id"] for m in posted}) == total
    produced = {(e["organization_id"], e["event_id"]) for e in map(json.loads, keyed + unkeyed)}
    assert {(m["organization_id"], m["event_id"]) for m in posted} == produced
