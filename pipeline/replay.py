"""``hera replay``: re-feed a range of a topic into the pipeline's raw topic.

Replaying is safe by construction: posting is idempotent on (organization_id, event_id) in the
database, so what was posted stays posted once (counted as ``duplicate``) and what was lost or
dead-lettered for a cause since fixed is completed. Dead letters are replayed from their value,
which is the original bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pipeline.config import Settings

REPLAY_IDLE_POLLS_MAX = 10


@dataclass(frozen=True)
class ReplayRange:
    topic: str
    from_offset: int | None = None
    to_offset: int | None = None        # exclusive
    from_time_ms: int | None = None
    to_time_ms: int | None = None       # exclusive
    org: str | None = None


def org_of(value: bytes | None) -> str | None:
    try:
        data = json.loads(value or b"")
    except ValueError:
        return None
    return data.get("organization_id") if isinstance(data, dict) else None


async def replay(target: Settings | str, target_topic: str, rng: ReplayRange, *, progress: Any = None) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    from pipeline.brokers import admin_kwargs, partition_counts

    consumer = AIOKafkaConsumer(**admin_kwargs(target), enable_auto_commit=False, group_id=None)
    producer = AIOKafkaProducer(**admin_kwargs(target), linger_ms=5)
    await consumer.start()
    await producer.start()
    read = sent = skipped = 0
    try:
        count = (await partition_counts(target, [rng.topic])).get(rng.topic, 0)
        parts = list(range(count))
        if not parts:
            raise ValueError(f"topic {rng.topic!r} does not exist")
        tps = [TopicPartition(rng.topic, p) for p in parts]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, rng.from_offset or 0)
        done = {tp for tp in tps if consumer_position_done(rng, ends[tp], rng.from_offset or 0)}
        futures = []
        idle = 0
        while len(done) < len(tps) and idle < REPLAY_IDLE_POLLS_MAX:
            batches = await consumer.getmany(*[tp for tp in tps if tp not in done], timeout_ms=500, max_records=2000)
            idle = 0 if batches else idle + 1
            for tp, msgs in batches.items():
                for m in msgs:
                    if m.offset >= ends[tp] or (rng.to_offset is not None and m.offset >= rng.to_offset):
                        done.add(tp)
                        break
                    read += 1
                    if not in_time(rng, m.timestamp) or (rng.org and org_of(m.value) != rng.org) or m.value is None:
                        skipped += 1
                        continue
                    futures.append(await producer.send(target_topic, m.value, key=m.key))
                    sent += 1
                if msgs and msgs[-1].offset + 1 >= ends[tp]:
                    done.add(tp)
            if progress is not None:
                progress(read)
        for fut in futures:
            await fut
    finally:
        await producer.stop()
        await consumer.stop()
    return {"topic": rng.topic, "target": target_topic, "read": read, "replayed": sent, "skipped": skipped}


def consumer_position_done(rng: ReplayRange, end: int, start: int) -> bool:
    return start >= end or (rng.to_offset is not None and start >= rng.to_offset)


def in_time(rng: ReplayRange, timestamp_ms: int | None) -> bool:
    if timestamp_ms is None:
        return rng.from_time_ms is None and rng.to_time_ms is None
    if rng.from_time_ms is not None and timestamp_ms < rng.from_time_ms:
        return False
    return not (rng.to_time_ms is not None and timestamp_ms >= rng.to_time_ms)
