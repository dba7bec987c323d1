"""Worker faults on the real broker and PostgreSQL: a worker SIGKILLed mid-stream and restarted,
and one of two workers sharing the partitions stopped mid-stream. Whatever the timing of the
fault, every raw event must end accounted for (docs/invariants.md invariant 3) and the ledger must hold
exactly one balanced entry per (organization_id, event_id) (invariants 1 and 2).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time

import asyncpg
import pytest

from pipeline.devtools.live import Tracker
from tests.e2e import harness
from tests.e2e.harness import Pipeline, org_ids, structured_events

pytestmark = [pytest.mark.faults]
pipe, pipe4 = harness.pipe, harness.pipe4  # fixtures

EVENTS = 2000
BEFORE_FAULT = 1200  # produced before the fault; the rest while it is being handled
WARM_UP = 100  # produced at once, to know the workers are processing before the paced feed starts
POSTED_AT_FAULT = 300
FEED_PER_SECOND = 1000  # well below what the workers handle, so the fault lands mid-stream
FEED_CHUNK = 50


async def feed(p: Pipeline, events: list[bytes]) -> None:
    """Produce ``events`` at about ``FEED_PER_SECOND``: a worker handles a backlog of a thousand
    events in well under a second, faster than the fault could be aimed at its middle."""
    for start in range(0, len(events), FEED_CHUNK):
        await p.produce(events[start:start + FEED_CHUNK])
        await asyncio.sleep(FEED_CHUNK / FEED_PER_SECOND)


async def start_mid_stream(p: Pipeline, events: list[bytes], workers: list) -> tuple[int, asyncio.Task[None]]:
    """Feed the events before the fault and return once ``POSTED_AT_FAULT`` are posted (with how many
    were, and the feed still running): the moment to strike."""
    await p.produce(events[:WARM_UP])
    await wait_posted(p, WARM_UP // 2, 60, workers)
    feeding = asyncio.ensure_future(feed(p, events[WARM_UP:BEFORE_FAULT]))
    return await wait_posted(p, POSTED_AT_FAULT, 60, workers), feeding


async def wait_posted(p: Pipeline, n: int, timeout_seconds: float, watch: list) -> int:
    tracker = Tracker(p.settings)
    await tracker.start()
    try:
        await p.wait_for(tracker, lambda t: t.counts()["posted"] >= n, timeout_seconds,
                         what=f"{n} posted", watch=watch)
        return tracker.counts()["posted"]
    finally:
        await tracker.stop()


async def assert_all_accounted_once(p: Pipeline, events: list[bytes]) -> dict:
    acc = await p.invariant3()
    assert acc["raw_events"] == len(events), acc
    assert (acc["rejected"], acc["review"], acc["deferred"]) == (0, 0, 0), acc
    # an event whose first run died after its commit comes back as a duplicate of itself
    assert acc["posted"] + acc["duplicate"] == len(events), acc
    ledger = await p.ledger()
    assert ledger["ok"], ledger
    assert ledger["entries"] == ledger["distinct_keys"] == len(events), ledger
    conn = await asyncpg.connect(p.database_url)
    try:
        keys = {(str(r["organization_id"]), r["event_id"])
                for r in await conn.fetch("SELECT organization_id, event_id FROM universal_transactions")}
    finally:
        await conn.close()
    produced = {(e["organization_id"], e["event_id"]) for e in map(json.loads, events)}
    assert keys == produced
    return acc


@pytest.mark.timeout(180)
async def test_kill_9_mid_stream_then_restart(pipe: Pipeline) -> None:
    events = structured_events(EVENTS, seed="kill9", orgs=org_ids(50, "kill9"))  # 40 per organisation
    first = pipe.start_worker("w-first")
    at_kill, feeding = await start_mid_stream(pipe, events, [first])
    pipe.kill(first, signal.SIGKILL)
    first.wait(10)
    assert first.returncode == -signal.SIGKILL
    await feeding
    assert at_kill < BEFORE_FAULT, "the worker finished before it could be killed mid-stream"
    await pipe.produce(events[BEFORE_FAULT:])

    started = time.monotonic()
    second = pipe.start_worker("w-second")
    await pipe.wait_accounted(EVENTS, 75, watch=[second])
    recovery = time.monotonic() - started
    acc = await assert_all_accounted_once(pipe, events)
    print(f"kill -9 after {at_kill} posted; restarted worker finished in {recovery:.1f}s; {acc}")


@pytest.mark.timeout(180)
async def test_two_workers_share_partitions_one_stops_mid_stream(pipe4: Pipeline) -> None:
    events = structured_events(EVENTS, seed="pair", orgs=org_ids(50, "pair"))
    a = pipe4.start_worker("w-a")
    b = pipe4.start_worker("w-b")
    at_stop, feeding = await start_mid_stream(pipe4, events, [a, b])
    pipe4.kill(a, signal.SIGTERM)
    await feeding
    await pipe4.produce(events[BEFORE_FAULT:])
    a.wait(30)
    assert a.returncode == 0, f"worker a did not stop cleanly on SIGTERM:\n{pipe4.log_tail()}"
    assert at_stop < BEFORE_FAULT, "the stream was over before a worker could be stopped mid-stream"

    await pipe4.wait_accounted(EVENTS, 75, watch=[b])
    acc = await assert_all_accounted_once(pipe4, events)
    print(f"SIGTERM of one worker after {at_stop} posted; {acc}")
