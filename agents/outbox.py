"""Produce a batch's messages as record batches, one per topic partition, and wait for all of them.

A worker writes two to three messages per event (the classified and posted records, the admission
changelog, its share of the audit messages). Sent one by one through Faust's producer
(``app.producer.send``: a future, an accumulator lookup and Faust's sensor calls each) a message
costs the worker about twice the CPU of filling aiokafka's ``BatchBuilder`` per partition and
submitting it with ``send_batch`` (measured by ``benchmarks/faust_bench.py``; figures in BENCHMARKS.md).
What reaches the broker is the same: the same records on the same partitions — a
keyed record goes where the producer's partitioner puts it (Kafka's murmur2 on the key), an
unkeyed one to any available partition — and the caller still waits until the broker has them all.
"""

from __future__ import annotations

import asyncio
import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from aiokafka.partitioner import DefaultPartitioner

_DEFAULT_PARTITIONER = DefaultPartitioner()
_NO_HEADERS: list[tuple[str, bytes]] = []  # shared, never mutated


class Message(NamedTuple):
    topic: str
    partition: int | None  # None: the producer's partitioner decides (by key)
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]] | None = None


@functools.lru_cache(maxsize=65_536)
def keyed_partition(key: bytes, partitions: int) -> int:
    """Where Kafka's default partitioner puts a record with ``key`` (murmur2, in pure Python in
    aiokafka: worth remembering, as the same organisations' keys come back batch after batch)."""
    every = list(range(partitions))
    return int(_DEFAULT_PARTITIONER(key, every, every))


async def partition_count(producer: Any, topic: str) -> int:
    """How many partitions ``topic`` has, from the producer's metadata (fetched if need be)."""
    return len(await producer.client._wait_on_metadata(topic))


async def produce_all(producer: Any, messages: Iterable[Message]) -> None:
    """Produce ``messages`` with the aiokafka ``producer`` and wait until the broker acknowledged all.

    Records of one partition keep their order (one batch after the other); a record too large for
    an empty batch goes through ``producer.send`` on its own."""
    by_partition: dict[tuple[str, int], list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]] = defaultdict(list)
    counts: dict[str, int] = {}  # partitions per topic (waiting for the topic's metadata once)
    for msg in messages:
        if msg.topic not in counts:
            counts[msg.topic] = await partition_count(producer, msg.topic)
        if msg.partition is None and msg.key is not None and type(producer._partitioner) is DefaultPartitioner:
            partition = keyed_partition(msg.key, counts[msg.topic])
        else:
            partition = producer._partition(msg.topic, msg.partition, None, None, msg.key, msg.value)
        headers = msg.headers
        if type(headers) is not list:  # aiokafka's C batch builder takes only a list (shared ones are not copied)
            headers = list(headers) if headers else _NO_HEADERS
        by_partition[(msg.topic, partition)].append((msg.key, msg.value, headers))
    futures: list[asyncio.Future[Any]] = []
    for (topic, partition), msgs in by_partition.items():
        batch = producer.create_batch()
        for key, value, headers in msgs:
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is not None:
                continue
            if batch.record_count():  # full: submit it and start the next
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is not None:
                    continue
            futures.append(await producer.send(topic, value, key=key, partition=partition, headers=headers or None))
            batch = producer.create_batch()
        if batch.record_count():
            futures.append(await producer.send_batch(batch, topic, partition=partition))
    if futures:
        await asyncio.gather(*futures)
