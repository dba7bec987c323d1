"""The original bytes of a record, read back from the topic it sits in by its coordinates.

Envelopes between stages and dead letters never carry a raw event's bytes (they may hold card
numbers: SECURITY.md); a stage or an operator that needs the original reads it here from the raw
topic, by the ``source`` / ``hera-source-*`` coordinates it was given.
"""

from __future__ import annotations

import asyncio

from pipeline.config import Settings

FETCH_TIMEOUT_SECONDS = 10.0


async def fetch_record(target: Settings | str, topic: str, partition: int, offset: int) -> bytes | None:
    """The value of the record at ``topic/partition/offset`` (None when there is none); ``target``:
    the configured cluster (its security settings included) or a bare bootstrap address."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from pipeline.brokers import admin_kwargs

    consumer = AIOKafkaConsumer(**admin_kwargs(target), enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        if offset >= end:
            return None
        consumer.seek(tp, offset)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FETCH_TIMEOUT_SECONDS
        while loop.time() < deadline:
            batches = await consumer.getmany(tp, timeout_ms=500, max_records=1)
            for msg in batches.get(tp, []):
                if msg.offset == offset:
                    return bytes(msg.value or b"")
                if msg.offset > offset:
                    return None
        return None
    finally:
        await consumer.stop()
