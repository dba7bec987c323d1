"""Produce a batch's outputs, stamped with their schema, and wait until the broker has them all.

Every produced message carries a ``hera-schema`` header naming its contract and version
(``posted/v2``, ``review/v1`` …: ``SCHEMAS`` below), so a consumer can tell versions apart without parsing.
Audit records are grouped into one message per audit-topic partition: an organisation's records land
where a message keyed by it would (so they stay in order), in a handful of messages per batch.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from agents.outbox import Message, keyed_partition, partition_count, produce_all
from agents.profile import hop
from pipeline.config import Settings
from pipeline.envelopes import dumps
from pipeline.flow import BatchResult
from pipeline.observability import metrics

SCHEMA_HEADER = "hera-schema"
SCHEMAS = {
    "posted": "posted/v2",
    "review": "review/v1",
    "decisions": "decision/v1",
    "deadletter": "deadletter/v1",
    "validated": "validated/v1",
    "classified": "classified/v1",
    "deferred": "deferred/v1",
    "audit": "audit/v1",
}
_SCHEMA_HEADERS = {key: (SCHEMA_HEADER, name.encode()) for key, name in SCHEMAS.items()}


def org_partition(org: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a message keyed by ``org`` (murmur2)."""
    return keyed_partition(org.encode(), partitions)


_SCHEMA_ONLY = {key: [header] for key, header in _SCHEMA_HEADERS.items()}  # shared: nobody mutates headers


def with_schema(topic_key: str, headers: tuple[tuple[str, bytes], ...]) -> list[tuple[str, bytes]]:
    return [_SCHEMA_HEADERS[topic_key], *headers] if headers else _SCHEMA_ONLY[topic_key]


class Publisher:
    """Produces through the Faust app's aiokafka producer (started with the worker)."""

    def __init__(self, app: Any, settings: Settings, raw_reader: Any = None) -> None:
        self.app = app
        self.settings = settings
        self.raw_reader = raw_reader  # agents.raw_reader.RawReader: original bytes for dead letters
        self._topics = {key: settings.topic(key) for key in SCHEMAS}

    def producer(self) -> Any:
        return self.app.producer._ensure_producer()

    async def publish(self, stage: str, result: BatchResult) -> None:
        """Produce every output of ``result`` and wait for the broker's acknowledgement of all."""
        producer = self.producer()
        if self.raw_reader is not None and any(e.needs_value for e in result.emits):
            with hop(stage, "dead_letter_originals"):
                result.emits = await self.raw_reader.fill(result.emits)
        messages = [Message(w.topic, w.partition, w.key, w.value) for w in result.changelog]
        topics = self._topics
        messages += [Message(topics[e.topic_key], None, e.key, e.value, with_schema(e.topic_key, e.headers))
                     for e in result.emits]
        if result.audit:
            messages += await self._audit_messages(producer, stage, result.audit)
        await produce_all(producer, messages)
        metrics.record_outcomes(stage, result.outcomes, result.reasons)  # final outcomes only, once per event

    async def _audit_messages(self, producer: Any, stage: str, audit: list[dict[str, Any]]) -> list[Message]:
        topic = self.settings.topic("audit")
        partitions = await partition_count(producer, topic)
        by_partition: dict[int, list[dict[str, Any]]] = defaultdict(list)
        now = time.time()
        for rec in audit:
            by_partition[org_partition(rec.get("organization_id") or "-", partitions)].append(
                {**rec, "at": now, "stage": rec.get("stage", stage)})
        header = [_SCHEMA_HEADERS["audit"]]
        return [Message(topic, partition, None, dumps({"records": recs}), header)
                for partition, recs in by_partition.items()]
