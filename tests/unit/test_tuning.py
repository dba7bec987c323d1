"""The loop's own reliance on Faust internals is fingerprinted like agents/patches.py's, and the
latency settings reach Faust and the consumer."""

from __future__ import annotations

import pytest

from agents import patches, tuning
from pipeline.config import Settings


@pytest.mark.parametrize("target", sorted(tuning.UPSTREAM))
def test_upstream_source_is_what_the_loop_was_written_against(target: str) -> None:
    assert patches.source_fingerprint(target) == tuning.UPSTREAM[target], (
        f"{target} changed upstream: re-check agents/tuning.py and agents/source.py, re-run the e2e and "
        "fault tests, then update tuning.UPSTREAM")


def test_latency_settings_reach_faust() -> None:
    options = tuning.faust_options(Settings(producer_linger_ms=2, commit_interval_seconds=0.5))
    assert options["producer_linger"] == 0.002 and options["broker_commit_interval"] == 0.5
    assert options["producer_compression_type"] is None
    assert options["producer_max_batch_size"] == 512 * 1024   # not Faust's 16 KiB: see agents/tuning.py
    assert options["producer_max_request_size"] >= 2 * options["producer_max_batch_size"]
    big = tuning.faust_options(Settings(producer_batch_bytes=8 * 1024 * 1024))
    assert big["producer_max_request_size"] == 16 * 1024 * 1024
    with pytest.raises(ValueError):
        Settings(producer_batch_bytes=1024)
    assert options["table_standby_replicas"] == 0   # not Faust's 1: see agents/tuning.py
    assert tuning.faust_options(Settings(table_standby_replicas=1))["table_standby_replicas"] == 1
    with pytest.raises(ValueError):
        Settings(table_standby_replicas=-1)


async def test_compressed_batches_are_what_aiokafka_can_write() -> None:
    from aiokafka import AIOKafkaProducer

    sizes = {}
    for setting in ("none", "lz4"):
        codec = tuning.faust_options(Settings(producer_compression=setting))["producer_compression_type"]
        producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:9", compression_type=codec)  # never started
        batch = producer.create_batch()
        for i in range(200):
            batch.append(key=None, value=b'{"entry": "%d", "lines": []}' % i, timestamp=None, headers=[])
        sizes[setting] = len(batch._build())  # the record batch as it would go to the broker
    assert sizes["lz4"] * 3 < sizes["none"]
    with pytest.raises(ValueError):
        Settings(producer_compression="brotli")


def test_the_worker_consumer_gets_the_fetch_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    made = type("Consumer", (), {"_fetch_max_wait_ms": 1500})
    original = AIOKafkaConsumerThread._create_worker_consumer
    monkeypatch.setattr(AIOKafkaConsumerThread, "_create_worker_consumer", lambda self, transport: made())
    monkeypatch.setattr(tuning, "_fetch_max_wait_ms", None)
    tuning.apply(Settings(kafka_fetch_max_wait_ms=7))
    consumer = AIOKafkaConsumerThread._create_worker_consumer(object(), None)  # type: ignore[arg-type]
    assert consumer._fetch_max_wait_ms == 7
    assert original is not AIOKafkaConsumerThread._create_worker_consumer


def test_the_worker_runs_on_the_event_loop_it_is_given() -> None:
    import asyncio

    import uvloop

    from agents.worker import use_event_loop

    try:
        for name, kind in (("uvloop", uvloop.Loop), ("asyncio", asyncio.BaseEventLoop)):
            use_event_loop(name)
            loop = asyncio.new_event_loop()
            try:
                assert isinstance(loop, kind) and (name == "uvloop") == isinstance(loop, uvloop.Loop)
            finally:
                loop.close()
    finally:
        asyncio.set_event_loop_policy(None)
    with pytest.raises(ValueError):
        Settings(event_loop="trio")


def test_chunks_keep_every_item_in_order_and_a_short_batch_whole() -> None:
    items = list(range(1001))
    parts = list(tuning.chunks(items, 250))
    assert [len(p) for p in parts] == [250, 250, 250, 250, 1]
    assert [x for p in parts for x in p] == items
    short = list(range(250))
    assert list(tuning.chunks(short, 250)) == [short] and list(tuning.chunks([], 250)) == [[]]
