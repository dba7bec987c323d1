"""Read raw records back by their coordinates (topic, partition, offset).

Envelopes never carry an event's original bytes (they may hold what sanitising removed); a stage that
must dead-letter an event verbatim after validation (a duplicate conflict, a classification or ledger
refusal, a poison envelope) names the raw record, and the agent reads its bytes back here just before
producing the dead letter. This is the rare path: one consumer without a group, started on first use.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import defaultdict
from typing import Any

from pipeline.domain.pan import mask_pan_bytes
from pipeline.envelopes import DLQ_HEADER_ORIGINAL_SHA256, Emit

Coords = tuple[str, int, int]
READ_TIMEOUT_SECONDS = 15.0
RECORDS_PER_FETCH_MAX = 2_000


class RawReader:
    def __init__(self, client_kwargs: dict[str, Any]) -> None:
        self.client_kwargs = client_kwargs  # pipeline.brokers.client_kwargs: address and security
        self._consumer: Any = None
        self._lock = asyncio.Lock()

    async def read(self, coords: set[Coords]) -> dict[Coords, bytes]:
        """The values at ``coords``; a record no longer in the topic (retention) is left out."""
        from aiokafka import TopicPartition

        if not coords:
            return {}
        async with self._lock:
            consumer = await self._start()
            by_tp: dict[Any, set[int]] = defaultdict(set)
            for topic, partition, offset in coords:
                by_tp[TopicPartition(topic, partition)].add(offset)
            consumer.assign(list(by_tp))
            found: dict[Coords, bytes] = {}
            for tp, offsets in by_tp.items():
                for offset, value in (await self._read_range(consumer, tp, offsets)).items():
                    found[(tp.topic, tp.partition, offset)] = value
            return found

    async def _read_range(self, consumer: Any, tp: Any, offsets: set[int]) -> dict[int, bytes]:
        """The values at ``offsets`` of one partition, read forward from the lowest in a few fetches
        (a batch's dead letters sit close together), not one seek and fetch per record."""
        consumer.seek(tp, min(offsets))
        last, found = max(offsets), {}
        deadline = time.monotonic() + READ_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            batch = await consumer.getmany(tp, timeout_ms=200, max_records=RECORDS_PER_FETCH_MAX)
            for msg in batch.get(tp, []):
                if msg.offset in offsets:
                    found[msg.offset] = bytes(msg.value)
                if msg.offset >= last:
                    return found  # an offset skipped on the way was compacted away: left out
        return found

    async def _start(self) -> Any:
        if self._consumer is None:
            from aiokafka import AIOKafkaConsumer

            consumer = AIOKafkaConsumer(**self.client_kwargs, group_id=None, enable_auto_commit=False,
                                        auto_offset_reset="earliest", fetch_max_wait_ms=10)
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def fill(self, emits: list[Emit]) -> list[Emit]:
        """``emits`` with the original bytes put into those that name them (``Emit.origin``)."""
        wanted = {e.origin for e in emits if e.needs_value and e.origin is not None}
        if not wanted:
            return emits
        values = await self.read(wanted)
        return [masked_letter(e, values.get(e.origin, b"")) if e.needs_value and e.origin else e for e in emits]

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


def masked_letter(emit: Emit, original: bytes) -> Emit:
    """The dead letter with its value: the original bytes with card numbers masked (no PAN at rest
    outside the raw topic), and the ``hera-original-sha256`` header of the unmasked original that
    links it to the raw record (``hera deadletter original``)."""
    digest = hashlib.sha256(original).hexdigest().encode()
    headers = tuple((k, digest) if k == DLQ_HEADER_ORIGINAL_SHA256 else (k, v) for k, v in emit.headers)
    return Emit(emit.topic_key, emit.key, mask_pan_bytes(original), headers)
