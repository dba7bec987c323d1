"""Per-organisation settings reach the worker: an organisation's stricter threshold sends to review an
event that the same worker posts for another organisation, and an account override changes the lines
of the entry posted (``hera org set --settings``; pipeline/domain/org_settings.py)."""

from __future__ import annotations

import json

import pytest

from pipeline.ledger.store import LedgerStore
from tests.e2e import harness
from tests.e2e.harness import Pipeline, encode, org_ids

pytestmark = [pytest.mark.e2e]
pipe = harness.pipe  # fixture

GROUND = "HERA.FIN.EXP.TRAVEL.GROUND.v1"
WORKER_READY_SECONDS = 60


def ride(org: str, event_id: str) -> bytes:
    """A bank-feed line the model classifies as ground travel, confidently but below 1.0."""
    return encode({"schema_version": 1, "event_id": event_id, "organization_id": org, "source": "bank_feed",
                   "occurred_at": "2026-11-02T10:00:00Z", "amount": "23.50", "currency": "USD",
                   "direction": "debit", "description": "UBER *TRIP HELP.UBER.COM"})


@pytest.mark.timeout(150)
async def test_org_threshold_and_account_override_are_applied(pipe: Pipeline) -> None:
    strict, remapped = org_ids(2, "org-settings")
    store = await LedgerStore.connect(pipe.database_url, pool_size=1)
    try:
        await store.ensure_organization(strict, "strict", settings={"thresholds": {GROUND: 1.0}})
        await store.ensure_organization(remapped, "remapped", settings={"accounts": {"1010": "1015"}})
        assert await store.add_account(remapped, "1015", "Second bank", "asset", "DR")
    finally:
        await store.close()
    worker = pipe.start_worker()
    await pipe.produce([ride(strict, "ride-strict"), ride(remapped, "ride-remapped")], by_org=True)
    tracker = await pipe.wait_accounted(2, WORKER_READY_SECONDS, watch=[worker])
    assert sorted(tracker.accounted.values()) == ["posted", "review"]

    [review] = [json.loads(m.value) for m in await pipe.read_topic("review")]
    assert review["event"]["organization_id"] == strict
    assert (review["classification"]["smart_code"], review["review_reason"]) == (GROUND, "LOW_CONFIDENCE")

    [posted] = [json.loads(m.value) for m in await pipe.read_topic("posted")]
    assert posted["organization_id"] == remapped
    assert {(line["account"], line["side"]) for line in posted["lines"]} == {("6420", "DR"), ("1015", "CR")}
    assert (await pipe.ledger())["ok"]
