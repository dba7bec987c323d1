"""Kafka client helpers shared by the CLI, the agents and the tests: topic admin and a broker shim.

The embedded broker (Tansu 0.6) answers ListOffsets "latest" with the newest *batch's* base offset
+ 1 instead of the high watermark, so ``end_offsets`` under-reports when the last batch holds more
than one record. Faust takes its changelog-recovery target from ``end_offsets`` and would silently
recover too little. ``install_end_offsets_shim`` wraps ``AIOKafkaConsumer.end_offsets`` to return
max(reported, the high watermark seen by one fetch at reported − 1), which is exact on Tansu and a
no-op on a correct broker (the fetch's high watermark *is* the end offset). The broker conformance
test (tests/integration/test_broker_conformance.py) proves both the bug and the shim.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

SHIM_FETCH_TIMEOUT_MS = 2_000
_original_end_offsets = AIOKafkaConsumer.end_offsets
_installed = False


async def fetched_high_watermarks(bootstrap: str, reported: Mapping[TopicPartition, int]
                                  ) -> dict[TopicPartition, int]:
    """Fetch once at ``reported - 1`` per partition and return the high watermarks the broker sent."""
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             group_id=None, request_timeout_ms=10_000)
    await probe.start()
    try:
        parts = [tp for tp, end in reported.items() if end > 0]
        if not parts:
            return dict(reported)
        probe.assign(parts)
        for tp in parts:
            probe.seek(tp, reported[tp] - 1)
        pending = set(parts)
        result = dict(reported)
        deadline = asyncio.get_running_loop().time() + SHIM_FETCH_TIMEOUT_MS / 1000
        while pending and asyncio.get_running_loop().time() < deadline:
            await probe.getmany(*pending, timeout_ms=200, max_records=1)
            for tp in list(pending):
                high = probe.highwater(tp)
                if high is not None:
                    result[tp] = max(result[tp], high)
                    pending.discard(tp)
        return result
    finally:
        await probe.stop()


async def true_end_offsets(consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition]
                           ) -> dict[TopicPartition, int]:
    reported = await _original_end_offsets(consumer, list(partitions))
    if not any(end > 0 for end in reported.values()):
        return reported
    bootstrap = consumer._client._bootstrap_servers  # the consumer's own brokers
    # The probe runs on a fresh event loop in its own thread: Faust calls end_offsets from its
    # consumer thread, where stopping a second consumer was seen to hang.
    return await asyncio.to_thread(lambda: asyncio.run(fetched_high_watermarks(bootstrap, reported)))


def install_end_offsets_shim() -> None:
    """Make every AIOKafkaConsumer in this process report true end offsets (idempotent)."""
    global _installed
    if _installed:
        return

    async def end_offsets(self: AIOKafkaConsumer, partitions: Iterable[TopicPartition]
                          ) -> dict[TopicPartition, int]:
        return await true_end_offsets(self, partitions)

    AIOKafkaConsumer.end_offsets = end_offsets  # type: ignore[method-assign]
    _installed = True


async def ensure_topics(bootstrap: str, names: Iterable[str], *, partitions: int,
                        replication_factor: int = 1, config: Mapping[str, Any] | None = None,
                        timeout_seconds: float = 15.0) -> list[str]:
    """Create the topics that do not exist yet (Faust would auto-create with 1 partition)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_seconds * 1000))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        created: list[str] = []
        for name in missing:  # one at a time: some brokers reject a mixed batch wholesale
            try:
                await admin.create_topics([NewTopic(name, partitions, replication_factor,
                                                    topic_configs=dict(config or {}))])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, names: Iterable[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [n for n in names if n in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()
