"""Personal data in the review workspace (SECURITY.md §7): a review item's counterparty and
descriptions are sealed in ``review_items.payload``; the queue reveals them for a signed-in user (and
filters, sorts and bulk-selects on the revealed name); once the subject's key is destroyed the item
shows ``[erased]`` and the name is nowhere in the row."""

from __future__ import annotations

import asyncpg
import pytest

from pipeline.ledger.privacy import ERASED
from tests.web.conftest import ORG_A
from tests.web.support import Web, feed_event, review_item, seed_reviews

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
NAME = "Ottilie Vandermolen"


async def test_the_queue_reveals_sealed_names_and_shows_erased_ones(web: Web) -> None:
    await seed_reviews(web.database_url, [
        review_item(feed_event(ORG_A, "gdpr-1", "20.00", counterparty=NAME, description=f"SEPA {NAME.upper()} 7")),
        review_item(feed_event(ORG_A, "gdpr-2", "21.00", counterparty="Aardvark Supplies"))])
    conn = await asyncpg.connect(web.database_url)
    try:
        row = await conn.fetchval("SELECT payload::text FROM review_items WHERE event_id = 'gdpr-1'")
        assert "vandermolen" not in row.lower() and "pii:v2:" in row          # sealed at rest
        ana = await web.client("ana")
        found = (await ana.get("/api/v1/review", params={"counterparty": "vandermol"})).json()["items"]
        assert [(i["event_id"], i["counterparty"]) for i in found] == [("gdpr-1", NAME)]
        assert found[0]["description"] == f"SEPA {NAME.upper()} 7"
        by_name = (await ana.get("/api/v1/review", params={"sort": "counterparty", "org": ORG_A})).json()["items"]
        names = [i["counterparty"] for i in by_name]
        assert names == sorted(names, key=str.casefold) and names[0] == "Aardvark Supplies"

        await conn.execute("DELETE FROM privacy_subject_keys WHERE subject_id = split_part($1, ':', 3)",
                           await conn.fetchval("SELECT payload->'event'->>'counterparty' FROM review_items"
                                               " WHERE event_id = 'gdpr-1'"))
        items = {i["event_id"]: i for i in (await ana.get("/api/v1/review", params={"page_size": 200})).json()["items"]}
        assert items["gdpr-1"]["counterparty"] == ERASED and items["gdpr-1"]["description"] == ERASED
        assert items["gdpr-2"]["counterparty"] == "Aardvark Supplies"          # other subjects untouched
        page = (await ana.get("/review", params={"page_size": 200})).text
        assert ERASED in page and "Vandermolen" not in page
        assert (await ana.get("/api/v1/review", params={"counterparty": "vandermol"})).json()["items"] == []
    finally:
        await conn.close()
