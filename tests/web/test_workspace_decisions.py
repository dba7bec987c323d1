"""Deciding through the workspace: the signed message on the real topic, two deciders, bulk
approval, refusals coming back from the dead-letter topic, API tokens, and hostile input."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from pipeline.envelopes import DLQ_HEADER_REASON, DLQ_HEADER_STAGE
from pipeline.signing import decision_key, verify
from tests.web.conftest import ORG_A
from tests.web.support import FEES, Web, csrf_of, feed_event, review_item, seed_reviews

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

HOSTILE = ["<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "'; DROP TABLE review_items; --",
           "%' OR '1'='1", "\\", "{{ 7*7 }}", "${7*7}", "\u202e\u0000x", "a" * 300]


async def decisions_on_topic(web: Web, n: int) -> list[dict[str, object]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=web.settings.bootstrap(), group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(web.settings.topic("decisions"), p) for p in range(web.settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[dict[str, object]] = []
        for _ in range(100):
            for msgs in (await consumer.getmany(timeout_ms=200)).values():
                out.extend(json.loads(m.value) for m in msgs)
            if len(out) >= n:
                break
        return out
    finally:
        await consumer.stop()


async def test_a_decision_is_signed_with_the_user_and_one_decider_wins(web: Web) -> None:
    ana, amy = await web.client("ana"), await web.client("amy")
    csrf_ana, csrf_amy = csrf_of((await ana.get("/review")).text), csrf_of((await amy.get("/review")).text)
    first, second = await asyncio.gather(
        ana.post("/api/v1/review/decide", headers={"X-CSRF-Token": csrf_ana},
                 json={"organization_id": ORG_A, "event_id": "a-0", "decision": "correct", "smart_code": FEES}),
        amy.post("/api/v1/review/decide", headers={"X-CSRF-Token": csrf_amy},
                 json={"organization_id": ORG_A, "event_id": "a-0", "decision": "approve"}))
    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [200, 409], (first.text, second.text)
    loser = first if first.status_code == 409 else second
    winner_name = "ana" if first.status_code == 200 else "amy"
    assert loser.json()["detail"] == f"already decided by {winner_name}"
    [message] = await decisions_on_topic(web, 1)
    assert verify(message, decision_key(web.settings)) is None
    assert message["reviewer"] == winner_name and message["event_id"] == "a-0"
    status = (await ana.get(f"/api/v1/review/{ORG_A}/a-0/status")).json()
    assert status["state"] == "pending" and status["decided_by"] == winner_name


async def test_bulk_approve_selected_and_by_counterparty(web: Web) -> None:
    amy = await web.client("amy")
    csrf = csrf_of((await amy.get("/review")).text)
    r = await amy.post("/review/bulk", data={"csrf_token": csrf, "item": [f"{ORG_A}|a-0", f"{ORG_A}|a-1"]})
    assert r.status_code == 200 and "2 sent, 0 refused" in r.text
    r = await amy.post("/api/v1/review/bulk-approve", headers={"X-CSRF-Token": csrf},
                       json={"counterparty": "Qxzv Holdings", "organization_id": ORG_A})
    outcomes = {o["event_id"]: o["outcome"] for o in r.json()}
    assert outcomes == {"a-0": "refused", "a-1": "refused", "a-2": "sent"}  # the first two already sent
    assert sorted(m["event_id"] for m in await decisions_on_topic(web, 3)) == ["a-0", "a-1", "a-2"]


async def test_a_refusal_from_the_pipeline_reaches_the_status_page(web: Web) -> None:
    ana = await web.client("ana")
    csrf = csrf_of((await ana.get("/review")).text)
    claim = (await ana.post("/api/v1/review/decide", headers={"X-CSRF-Token": csrf},
                            json={"organization_id": ORG_A, "event_id": "a-1", "decision": "approve"})).json()
    # what the worker does with a decision it cannot take: dead-letter its bytes with a reason
    [message] = await decisions_on_topic(web, 1)
    producer = AIOKafkaProducer(bootstrap_servers=web.settings.bootstrap())
    await producer.start()
    try:
        for _ in range(3):  # the watcher starts at the topic's end; repeat until it has seen one
            await producer.send_and_wait(web.settings.topic("deadletter"), json.dumps(message).encode(),
                                         headers=[(DLQ_HEADER_REASON, b"PERIOD_CLOSED"), (DLQ_HEADER_STAGE, b"review")])
            for _ in range(30):
                status = (await ana.get(f"/api/v1/review/{ORG_A}/a-1/status")).json()
                if status["state"] == "refused":
                    break
                await asyncio.sleep(0.2)
            if status["state"] == "refused":
                break
    finally:
        await producer.stop()
    assert claim["decision_id"] == message["decision_id"]
    assert status["state"] == "refused" and status["reason"] == "PERIOD_CLOSED"
    page = await ana.get(f"/review/status?org={ORG_A}&event_id=a-1")
    assert "refused this decision" in page.text and "PERIOD_CLOSED" in page.text
    # a refused item may be decided again
    again = await ana.post("/api/v1/review/decide", headers={"X-CSRF-Token": csrf},
                           json={"organization_id": ORG_A, "event_id": "a-1", "decision": "approve"})
    assert again.status_code == 200 and again.json()["decision_id"] != claim["decision_id"]


async def test_an_api_token_needs_no_csrf_and_a_disabled_user_loses_it(web: Web) -> None:
    conn = await asyncpg.connect(web.database_url)
    try:
        from datetime import timedelta

        from pipeline.web import identity
        token = await identity.create_api_token(conn, "ana", "ci", timedelta(days=1))
        c = await web.client()
        auth = {"Authorization": f"Bearer {token}"}
        assert (await c.get("/api/v1/me", headers=auth)).json()["username"] == "ana"
        r = await c.post("/api/v1/review/decide", headers=auth,
                         json={"organization_id": ORG_A, "event_id": "a-2", "decision": "approve"})
        assert r.status_code == 200
        await identity.set_status(conn, "ana", "disabled")
        assert (await c.get("/api/v1/me", headers=auth)).status_code == 401
        assert (await c.get("/api/v1/me", headers={"Authorization": "Bearer hera_forged"})).status_code == 401
    finally:
        await conn.close()


async def test_hostile_strings_reach_neither_sql_nor_html(web: Web) -> None:
    items = [review_item(feed_event(ORG_A, f"h-{i}-{s[:40]}", "10.00", counterparty=s, description=s))
             for i, s in enumerate(HOSTILE) if "\u0000" not in s]
    await seed_reviews(web.database_url, items)
    ana = await web.client("ana")
    page = await ana.get("/review", params={"page_size": 100})
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "{{ 7*7 }}" in page.text
    for s in HOSTILE:  # as filters, in the page and the API
        for params in ({"counterparty": s}, {"smart_code": s}, {"amount_min": s}, {"org": s}, {"sort": s},
                       {"reason": s}, {"page": s}):
            r = await ana.get("/review", params=params)
            assert r.status_code in (200, 403), (params, r.status_code)
            assert "<script>alert(1)" not in r.text and "<img src=x" not in r.text
            api = await ana.get("/api/v1/review", params=params)
            assert api.status_code in (200, 403, 422), (params, api.status_code)
    found = (await ana.get("/api/v1/review", params={"counterparty": "%' OR '1'='1"})).json()
    assert [i["counterparty"] for i in found["items"]] == ["%' OR '1'='1"]  # matched literally, not as a pattern
    csrf = csrf_of(page.text)
    for s in HOSTILE:
        r = await ana.post("/api/v1/review/decide", headers={"X-CSRF-Token": csrf},
                           json={"organization_id": ORG_A, "event_id": s, "decision": "correct", "smart_code": s})
        assert r.status_code in (404, 422)
        r = await ana.post("/review/decide", data={"csrf_token": csrf, "org": s, "event_id": s, "decision": s})
        assert r.status_code in (404, 422) and "<script>alert(1)" not in r.text
        assert (await ana.get(f"/books/{ORG_A}/ledger/{quote(s[:50], safe='')}")).status_code in (200, 404, 422)
    conn = await asyncpg.connect(web.database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM review_items") >= len(items)  # still there
    finally:
        await conn.close()


async def test_card_numbers_are_masked_in_the_queue(web: Web) -> None:
    # an item queued before masking existed (or by another producer path) still shows no card number
    await seed_reviews(web.database_url, [review_item(feed_event(
        ORG_A, "pan-1", "9.99", description="CARD 4111 1111 1111 1111 PAYMENT", counterparty="Acme 4111111111111111"))])
    ana = await web.client("ana")
    page = (await ana.get("/review", params={"counterparty": "Acme"})).text
    api = (await ana.get("/api/v1/review", params={"counterparty": "Acme"})).json()["items"]
    assert [i["event_id"] for i in api] == ["pan-1"]
    for text in (page, json.dumps(api)):
        assert "4111 1111 1111 1111" not in text and "4111111111111111" not in text
    assert "411111*1111" in api[0]["description"]
