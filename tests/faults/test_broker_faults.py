"""Broker faults on real Apache Kafka: the broker SIGKILLed mid-stream and restarted, and the broker
stopped gracefully and restarted, each while a worker is processing a stream.

Each test gets a broker of its own (its storage in the test's directory, restarted on the same
ports, as ``hera services up`` does), so killing it touches no other test. Afterwards every event
whose write the broker acknowledged before the fault, and every one written after it, must be
accounted for once, and the ledger must hold exactly one balanced entry per (organisation, event)
(docs/invariants.md: invariants 1–3). A chunk whose write was cut by the fault is written again
after the restart, as a producer would: a copy that did land is then a duplicate, never a
second entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from pipeline.devtools.local import kafka as embedded_kafka
from pipeline.devtools.local.process import free_port, pid_alive, terminate
from tests.e2e.harness import Pipeline, org_ids, structured_events
from tests.faults.test_worker_faults import wait_posted

pytestmark = [pytest.mark.faults]

EVENTS = 1500
WARM_UP = 100
POSTED_AT_FAULT = 300
FEED_PER_SECOND = 600
FEED_CHUNK = 50
OUTAGE_SECONDS = 3.0
RESTART_TIMEOUT_SECONDS = 120.0


@dataclass
class OwnBroker:
    home: Path
    port: int
    controller_port: int
    pid: int = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        # a restart after kill -9 recovers the logs first; a loaded CI machine is slower than 30 s
        self.pid = embedded_kafka.start(self.home, self.port, self.controller_port, timeout=RESTART_TIMEOUT_SECONDS).pid

    def kill(self, sig: signal.Signals) -> None:
        os.kill(self.pid, sig)
        deadline = time.monotonic() + 30
        while pid_alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(self.pid), "the broker did not exit"


@pytest.fixture()
async def broker_pipe(database_url: str, topic_prefix: str, tmp_path: Path) -> AsyncIterator[tuple[Pipeline, OwnBroker]]:
    broker = OwnBroker(tmp_path / "kafka", free_port(), free_port())
    await asyncio.to_thread(broker.start)
    pipe = Pipeline(broker.bootstrap, database_url, topic_prefix, tmp_path)
    await pipe.prepare()
    try:
        yield pipe, broker
    finally:
        pipe.stop()
        terminate(broker.pid)


class Feed:
    """Produce chunks at a steady pace, remembering which chunks the broker acknowledged."""

    def __init__(self, pipe: Pipeline, events: list[bytes]) -> None:
        self.pipe, self.events = pipe, events
        self.acked_until = 0  # events[:acked_until] are acknowledged

    async def run(self, stop_at: int) -> None:
        while self.acked_until < stop_at:
            chunk = self.events[self.acked_until:min(self.acked_until + FEED_CHUNK, stop_at)]
            await self.pipe.produce(chunk, by_org=True)
            self.acked_until += len(chunk)
            await asyncio.sleep(FEED_CHUNK / FEED_PER_SECOND)


async def run_through_fault(pipe: Pipeline, broker: OwnBroker, fault: signal.Signals, seed: str) -> dict:
    events = structured_events(EVENTS, seed=seed, orgs=org_ids(40, seed))
    worker = pipe.start_worker(f"w-{seed}")
    feed = Feed(pipe, events)
    await feed.run(WARM_UP)
    await wait_posted(pipe, WARM_UP // 2, 90, [worker])
    feeding = asyncio.ensure_future(feed.run(EVENTS * 2 // 3))
    at_fault = await wait_posted(pipe, POSTED_AT_FAULT, 90, [worker])
    await asyncio.to_thread(broker.kill, fault)
    feeding.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):  # cancelled, or cut by the dead broker
        await feeding
    acked_before_fault = feed.acked_until
    # mid-stream: the producer was still writing (the worker may keep up with it, leaving no backlog)
    assert POSTED_AT_FAULT <= at_fault <= acked_before_fault < EVENTS, "the fault did not land mid-stream"
    await asyncio.sleep(OUTAGE_SECONDS)
    await asyncio.to_thread(broker.start)
    assert worker.poll() is None, f"the worker died with the broker:\n{pipe.log_tail()}"
    await feed.run(EVENTS)  # the cut chunk again, then the rest
    await pipe.wait_accounted(EVENTS, 150, watch=[worker])
    return await assert_each_event_once(pipe, events, at_fault, acked_before_fault)


async def assert_each_event_once(pipe: Pipeline, events: list[bytes], at_fault: int, acked: int) -> dict:
    acc = await pipe.invariant3()
    assert acc["unaccounted"] == 0, acc
    assert (acc["rejected"], acc["review"], acc["deferred"]) == (0, 0, 0), acc
    assert acc["raw_events"] >= len(events), acc  # a re-sent chunk may have landed twice
    assert acc["posted"] + acc["duplicate"] == acc["raw_events"], acc
    ledger = await pipe.ledger()
    assert ledger["ok"], ledger
    assert ledger["entries"] == ledger["distinct_keys"] == len(events), ledger
    conn = await asyncpg.connect(pipe.database_url)
    try:
        keys = {(str(r["organization_id"]), r["event_id"])
                for r in await conn.fetch("SELECT organization_id, event_id FROM universal_transactions")}
    finally:
        await conn.close()
    assert keys == {(e["organization_id"], e["event_id"]) for e in map(json.loads, events)}
    return {**acc, "posted_at_fault": at_fault, "acked_before_fault": acked}


@pytest.mark.timeout(300)
async def test_broker_kill_9_mid_stream_then_restart(broker_pipe: tuple[Pipeline, OwnBroker]) -> None:
    pipe, broker = broker_pipe
    result = await run_through_fault(pipe, broker, signal.SIGKILL, "bkill9")
    print(f"broker kill -9: {result}")


@pytest.mark.timeout(300)
async def test_broker_graceful_restart_mid_stream(broker_pipe: tuple[Pipeline, OwnBroker]) -> None:
    pipe, broker = broker_pipe
    result = await run_through_fault(pipe, broker, signal.SIGTERM, "bterm")
    print(f"broker SIGTERM: {result}")
