"""The worker takes only decisions the web app signed: unsigned and forged ones are dead-lettered
with their reason and post nothing; a signed one posts (real worker, broker and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import time

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from pipeline.envelopes import DLQ_HEADER_REASON, headers_dict
from pipeline.signing import decision_key, sign
from tests.e2e import harness
from tests.e2e.harness import Pipeline, encode
from tests.web.support import FEES, feed_event, org_id

pipe = harness.pipe  # fixture
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(200)]
ORG = org_id("signed")


async def send(p: Pipeline, message: dict[str, object]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=p.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(p.settings.topic("decisions"), json.dumps(message).encode(), key=ORG.encode())
    finally:
        await producer.stop()


async def wait_until(p: Pipeline, sql: str, expected: object, timeout_seconds: float = 60) -> None:
    conn = await asyncpg.connect(p.database_url)
    try:
        deadline = time.monotonic() + timeout_seconds
        while (got := await conn.fetchval(sql)) != expected:
            assert time.monotonic() < deadline, f"{sql} = {got}, not {expected}; worker log:\n{p.log_tail()}"
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def test_only_signed_decisions_post(pipe: Pipeline) -> None:
    worker = pipe.start_worker()
    await pipe.produce([encode(feed_event(ORG, "s-1", "250.00"))])
    await wait_until(pipe, "SELECT count(*) FROM review_items WHERE status = 'open'", 1)
    decision = {"organization_id": ORG, "event_id": "s-1", "decision": "correct", "smart_code": FEES,
                "reviewer": "mallory", "decision_id": "d-1"}
    await send(pipe, decision)                                                    # unsigned
    await send(pipe, {**sign(decision, b"not the shared key" * 3)})               # signed with another key
    await send(pipe, {**sign(decision, decision_key(pipe.settings)), "reviewer": "eve"})  # altered after signing
    reasons: list[str] = []
    deadline = time.monotonic() + 60
    while len(reasons) < 3:
        assert time.monotonic() < deadline, f"dead letters: {reasons}; worker log:\n{pipe.log_tail()}"
        assert worker.poll() is None, pipe.log_tail()
        reasons = [headers_dict(m.headers)[DLQ_HEADER_REASON] for m in await pipe.read_topic("deadletter")]
        await asyncio.sleep(0.5)
    assert reasons == ["DECISION_UNSIGNED", "DECISION_FORGED", "DECISION_FORGED"]
    await wait_until(pipe, "SELECT count(*) FROM universal_transactions", 0, 1)
    await send(pipe, sign({**decision, "reviewer": "ana"}, decision_key(pipe.settings)))
    await wait_until(pipe, "SELECT created_by || ' ' || smart_code FROM universal_transactions", f"ana {FEES}")
    await wait_until(pipe, "SELECT resolved_by FROM review_items WHERE event_id = 's-1'", "ana")
