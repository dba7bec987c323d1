"""Personal data through a real worker (SECURITY.md §7): events naming a counterparty are posted,
reviewed, decided and learnt from; the name is never in clear in any table (entries, lines, review
items, classifier memory), the CLI reveals it with the subject's key, and the posted topic carries it
to consumers (bounded by the topic's retention). After `hera privacy erase` the books still balance,
`hera verify` is ok (the audit chain verifies), the name can be read nowhere in the database, reads
show "[erased]", and an open review item of the erased subject can still be decided."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import asyncpg
import pytest

from pipeline.classify.memory import subject_memory_keys
from pipeline.devtools.live import Tracker
from pipeline.ledger.audit_keys import load_key
from pipeline.ledger.privacy import ERASED, pepper_from
from tests.e2e import harness
from tests.e2e.harness import Pipeline, encode, org_ids, structured_event
from tests.e2e.test_review_decisions import FEES, send_decision
from tests.integration.test_privacy_erasure import rows_mentioning

pipe = harness.pipe  # fixture
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

NAME = "Ottilie Vandermolen"
NEEDLES = ("vandermolen", "ottilie")


def feed_line(org: str, event_id: str, amount: str) -> bytes:
    """A bank line the model is unsure of (it goes to review), from NAME."""
    return encode({"schema_version": 1, "event_id": event_id, "organization_id": org, "source": "bank_feed",
                   "occurred_at": "2026-11-02T09:00:00Z", "amount": amount, "currency": "USD",
                   "direction": "debit", "description": "QXZV 77812", "counterparty": NAME})


def named(org: str, event_id: str, i: int) -> bytes:
    """A structured event (auto-posts) with NAME as counterparty and in its description."""
    return encode({**structured_event(org, event_id, i), "counterparty": NAME,
                   "description": f"Invoice for {NAME}, account 7"})


async def hera(pipe: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERA_")}
    s = pipe.settings
    env.update(HERA_HOME=str(pipe.home), HERA_KAFKA_BOOTSTRAP=pipe.kafka_bootstrap, HERA_DATABASE_URL=pipe.database_url,
               HERA_TOPIC_PREFIX=pipe.topic_prefix, HERA_PARTITIONS=str(pipe.partitions), HERA_APP_ID=s.app_id)
    return await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "pipeline", *args], env=env,
                                   capture_output=True, text=True, timeout=120)


async def in_clear(pipe: Pipeline) -> dict[str, list[str]]:
    conn = await asyncpg.connect(pipe.database_url)
    try:
        return {n: hits for n in NEEDLES if (hits := await rows_mentioning(conn, n))}
    finally:
        await conn.close()


async def memory_state(pipe: Pipeline, org: str) -> dict[str, Any]:
    conn = await asyncpg.connect(pipe.database_url)
    try:
        return json.loads(await conn.fetchval("SELECT value::text FROM classifier_memory WHERE organization_id = $1",
                                              org) or "{}")
    finally:
        await conn.close()


async def test_a_name_is_sealed_through_the_pipeline_and_erased(pipe: Pipeline) -> None:
    [org] = org_ids(1, "privacy")
    worker = pipe.start_worker()
    tracker = Tracker(pipe.settings)
    await tracker.start()
    try:
        await pipe.produce([named(org, f"n-{i}", i) for i in range(3)]
                           + [encode(structured_event(org, f"a-{i}", i)) for i in range(2)]   # Acme Trading LLC
                           + [feed_line(org, "r-1", "251.00")], key=org.encode())
        await pipe.wait_for(tracker, lambda t: t.counts()["posted"] == 5 and t.counts()["review"] == 1, 90,
                            what="5 posted and 1 in review", watch=[worker])
        await send_decision(pipe, {"organization_id": org, "event_id": "r-1", "decision": "correct",
                                   "smart_code": FEES, "reviewer": "ana"})   # posts r-1 and teaches memory
        await pipe.wait_for(tracker, lambda t: t.counts()["posted"] == 6, 60, what="r-1 posted", watch=[worker])
        await pipe.produce([feed_line(org, "r-2", "252.00")], key=org.encode())
        await pipe.wait_for(tracker, lambda t: len(t.accounted) == 7 and t.counts()["review"] == 1, 60,
                            what="r-2 in review", watch=[worker])

        # sealed at rest, everywhere; revealed to the CLI with the key
        assert await in_clear(pipe) == {}
        pepper = pepper_from(load_key(pipe.settings))
        [clear_key, subject_key] = subject_memory_keys(org, NAME, pepper)
        entries = (await memory_state(pipe, org))["orgs"][org]["entries"]
        assert subject_key in entries and clear_key not in entries           # learnt, under a pseudonym
        listed = await hera(pipe, "review", "list", "--org", org)
        assert listed.returncode == 0, listed.stderr
        assert [(i["event_id"], i["counterparty"]) for i in json.loads(listed.stdout)["items"]] == [("r-2", NAME)]
        export = await hera(pipe, "export", "beancount", "--org", org)
        assert export.stdout.count(f'"{NAME}" "Invoice for {NAME}, account 7"') == 3, export.stdout
        posted = [json.loads(m.value) for m in await pipe.read_topic("posted")]
        assert {p["event_id"] for p in posted if p.get("counterparty") == NAME} == {"n-0", "n-1", "n-2", "r-1"}

        erased = await hera(pipe, "privacy", "erase", "--org", org, "--subject", NAME.lower())
        assert erased.returncode == 0, erased.stderr
        assert json.loads(erased.stdout)["keys_destroyed"] == 1
        assert json.loads(erased.stdout)["memory_keys_forgotten"] == 1

        assert await in_clear(pipe) == {}
        assert subject_key not in (await memory_state(pipe, org))["orgs"][org]["entries"]
        verify = await hera(pipe, "verify")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        report = json.loads(verify.stdout)
        assert report["ok"] and report["unbalanced_entries"] == 0 and report["audit"]["chain_breaks"] == 0
        listed = json.loads((await hera(pipe, "review", "list", "--org", org)).stdout)["items"]
        assert [(i["counterparty"], i["description"]) for i in listed] == [(ERASED, ERASED)]   # its description was sealed too
        export = (await hera(pipe, "export", "beancount", "--org", org)).stdout
        assert NAME not in export and f'"{ERASED}" "{ERASED}"' in export and '"Acme Trading LLC"' in export

        # the erased subject's open item can still be decided: posted without a counterparty
        await send_decision(pipe, {"organization_id": org, "event_id": "r-2", "decision": "approve",
                                   "reviewer": "ana"})
        await pipe.wait_for(tracker, lambda t: t.counts()["posted"] == 7, 60, what="r-2 posted", watch=[worker])
    finally:
        await tracker.stop()
    assert await in_clear(pipe) == {}
    assert subject_key not in (await memory_state(pipe, org))["orgs"][org]["entries"]   # not written back
    ledger = await pipe.ledger()
    assert ledger["ok"] and ledger["entries"] == 7, ledger
