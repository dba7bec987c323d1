"""Review decisions end to end: an unsure feed line goes to review; a reviewer's correction posts it
and teaches the organisation. One correction is a hint (the next line goes to review with the
learnt code suggested); after two consistent corrections the next line of the same counterparty
auto-posts (pipeline/classify/memory.py)."""

from __future__ import annotations

import json

import asyncpg
import pytest

from pipeline.devtools.live import Tracker
from pipeline.signing import decision_key, sign
from tests.e2e import harness
from tests.e2e.harness import Pipeline, encode, org_ids

pipe = harness.pipe  # fixture
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

FEES = "HERA.FIN.EXP.PROFESSIONAL.FEES.v1"


def feed_line(org: str, event_id: str, amount: str) -> bytes:
    return encode({"schema_version": 1, "event_id": event_id, "organization_id": org, "source": "bank_feed",
                   "occurred_at": "2026-11-02T09:00:00Z", "amount": amount, "currency": "USD",
                   "direction": "debit", "description": "QXZV 77812", "counterparty": "Qxzv Holdings"})


async def send_decision(pipe: Pipeline, decision: dict[str, str]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=pipe.kafka_bootstrap)
    await producer.start()
    try:
        signed = sign(decision, decision_key(pipe.settings))  # the worker takes only signed decisions
        await producer.send_and_wait(pipe.settings.topic("decisions"), json.dumps(signed).encode(),
                                     key=decision["organization_id"].encode())
    finally:
        await producer.stop()


async def test_correction_posts_and_teaches_the_next_line(pipe: Pipeline) -> None:
    [org] = org_ids(1, "review")
    worker = pipe.start_worker()
    tracker = Tracker(pipe.settings)
    await tracker.start()
    try:
        for n, event_id in enumerate(("r-1", "r-2"), 1):          # two consistent corrections
            await pipe.produce([feed_line(org, event_id, f"{250 + n}.00")])
            await pipe.wait_for(tracker, lambda t, n=n: len(t.accounted) == n and t.counts()["review"] == 1, 60,
                                what=f"line {event_id} in review", watch=[worker])
            await send_decision(pipe, {"organization_id": org, "event_id": event_id, "decision": "correct",
                                       "smart_code": FEES, "reviewer": "ana"})
            await pipe.wait_for(tracker, lambda t, n=n: t.counts()["posted"] == n, 60,
                                what=f"corrected entry {event_id} posted", watch=[worker])
        await pipe.produce([feed_line(org, "r-3", "310.00")])
        await pipe.wait_for(tracker, lambda t: len(t.accounted) == 3, 60, what="the next line", watch=[worker])
    finally:
        await tracker.stop()
    assert tracker.counts()["posted"] == 3 and tracker.smart_codes[FEES] == 3  # learned: auto-posted
    conn = await asyncpg.connect(pipe.database_url)
    try:
        item = await conn.fetchrow("SELECT status, resolved_smart_code, resolved_by FROM review_items"
                                   " WHERE event_id = 'r-1'")
        codes = await conn.fetch("SELECT event_id, smart_code, created_by FROM universal_transactions"
                                 " ORDER BY event_id")
        memory_rows = await conn.fetchval("SELECT count(*) FROM classifier_memory")
    finally:
        await conn.close()
    assert dict(item) == {"status": "corrected", "resolved_smart_code": FEES, "resolved_by": "ana"}
    assert [(r["event_id"], r["smart_code"]) for r in codes] == [("r-1", FEES), ("r-2", FEES), ("r-3", FEES)]
    assert codes[0]["created_by"] == codes[1]["created_by"] == "ana" != codes[2]["created_by"]
    assert memory_rows == 1  # what was learned survives the worker
    assert (await pipe.ledger())["ok"]
