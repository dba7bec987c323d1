"""Fixtures of the web app's tests: two organisations with review items, users with roles, the app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.web.support import (
    Web,
    add_user,
    feed_event,
    org_id,
    review_item,
    running_web,
    seed_orgs,
    seed_reviews,
    set_threshold,
    settings_for,
)

ORG_A, ORG_B = org_id("a"), org_id("b")
THRESHOLD = "1000"


@pytest.fixture()
async def web(kafka_bootstrap: str, database_url: str, topic_prefix: str, tmp_path: Path) -> AsyncIterator[Web]:
    """The app over a database holding orgs A and B, each with open review items, and users:
    ana reviewer of A, bob reviewer of B, amy approver of A, aud auditor of A."""
    settings = settings_for(kafka_bootstrap, database_url, topic_prefix, tmp_path)
    async with running_web(settings) as w:
        await seed_orgs(database_url, {"Alpha Trading": ORG_A, "Beta Foods": ORG_B})
        await set_threshold(database_url, ORG_A, THRESHOLD)
        items = [review_item(feed_event(ORG_A, f"a-{i}", f"{100 + i}.00"), offset=i) for i in range(3)]
        items.append(review_item(feed_event(ORG_A, "a-big", "5000.00", counterparty="Big Spend Ltd")))
        items += [review_item(feed_event(ORG_B, f"b-{i}", "42.00", counterparty="Beta Secret Supplier"))
                  for i in range(2)]
        await seed_reviews(database_url, items)
        await add_user(database_url, "ana", [(ORG_A, "reviewer")])
        await add_user(database_url, "bob", [(ORG_B, "reviewer")])
        await add_user(database_url, "amy", [(ORG_A, "approver")])
        await add_user(database_url, "aud", [(ORG_A, "auditor")])
        yield w
