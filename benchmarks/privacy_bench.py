"""Cost of sealing personal text on the posting path (SECURITY.md §7), per batch (not a test).

    .venv/bin/python benchmarks/privacy_bench.py [--batch 500] [--batches 30]

Posts batches of entries (4 organisations, 50 counterparties, a described line each) through
``LedgerStore.post_batch`` on a throwaway PostgreSQL (``fsync=off``), alternating runs with sealing
and with ``ledger.privacy.seal_batch`` replaced by the identity, each on a fresh database; the first
5 batches of a run are warm-up. Reports wall-clock medians per batch, the time inside ``seal_batch``
and inside its one key statement, and the CPU time of sealing alone (``time.process_time``, best of
5, no database). Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from pipeline.devtools import services
from pipeline.domain.entries import JournalEntry, JournalLine
from pipeline.ledger import privacy
from pipeline.ledger.migrate import migrate
from pipeline.ledger.store import LedgerStore

FEES = "HERA.FIN.EXP.PROFESSIONAL.FEES.v1"
WARM_UP = 5
ORGS = 4
COUNTERPARTIES = 50
SEAL, KEYS = privacy.seal_batch, privacy.keys_for


def entry(org: str, event_id: str, i: int) -> JournalEntry:
    amount, cp = Decimal("450.00"), f"Counterparty Number {i % COUNTERPARTIES}"
    return JournalEntry(org, event_id, FEES, datetime(2026, 4, 2, 9, tzinfo=UTC), "EUR",
                        (JournalLine("6650", "DR", amount, "EUR", FEES, f"advice from {cp}"),
                         JournalLine("1010", "CR", amount, "EUR", FEES)),
                        "bank_feed", description=f"SEPA TRANSFER {cp.upper()} INV {i}", counterparty=cp)


async def run(url: str, sealed: bool, batch: int, batches: int, inside: dict[str, list[float]]) -> list[float]:
    async def identity(conn, entries, pepper, timeout=None):  # type: ignore[no-untyped-def]
        return list(entries)

    async def timed_seal(conn, entries, pepper, timeout=None):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        out = await SEAL(conn, entries, pepper, timeout=timeout)
        inside["seal_batch"].append(time.perf_counter() - started)
        return out

    async def timed_keys(*args, **kwargs):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        out = await KEYS(*args, **kwargs)
        inside["keys"].append(time.perf_counter() - started)
        return out

    privacy.seal_batch, privacy.keys_for = (timed_seal if sealed else identity), timed_keys
    store = await LedgerStore.connect(url, pool_size=2, audit_key=b"k" * 32)
    orgs = [str(uuid.uuid4()) for _ in range(ORGS)]
    await store.ensure_organizations(orgs)
    seconds = []
    try:
        for b in range(batches):
            entries = [entry(orgs[i % ORGS], f"{b}-{i}", i) for i in range(batch)]
            started = time.perf_counter()
            await store.post_batch(entries)
            seconds.append(time.perf_counter() - started)
    finally:
        await store.close()
        privacy.seal_batch, privacy.keys_for = SEAL, KEYS
    return seconds[WARM_UP:]


def seal_cpu(batch: int) -> float:
    """CPU seconds to seal one batch (subject ids, sealing; no database), best of 5."""
    orgs = [str(uuid.uuid4()) for _ in range(ORGS)]
    entries = [entry(orgs[i % ORGS], f"c-{i}", i) for i in range(batch)]
    pepper, best = os.urandom(32), float("inf")
    for _ in range(5):
        started = time.process_time()
        pairs = [privacy._subject_of(pepper, e.organization_id, e.counterparty) for e in entries]
        seal = privacy._Seal({p: b"k" * 32 for p in pairs if p}, 4 * batch)
        [privacy.sealed_entry(e, p, seal) for e, p in zip(entries, pairs, strict=True)]
        best = min(best, time.process_time() - started)
    return best


async def main(batch: int, batches: int) -> dict[str, object]:
    home = Path(tempfile.mkdtemp(prefix="hera-privacy-bench-"))
    server = services.start_postgres(home / "postgres" / "data", services.free_port(), durable=False)
    walls: dict[bool, list[float]] = {False: [], True: []}
    inside: dict[str, list[float]] = {"seal_batch": [], "keys": []}
    try:
        for sealed in (False, True, False, True):
            url = await services.create_database(server.url("postgres"), f"b_{uuid.uuid4().hex[:8]}")
            await migrate(url)
            walls[sealed] += await run(url, sealed, batch, batches, inside)
    finally:
        services.stop_postgres(home / "postgres" / "data")

    def ms(values: list[float]) -> float:
        return round(1000 * statistics.median(values), 1)

    return {"batch": batch, "batches_measured_each": len(walls[True]),
            "post_batch_ms_median_clear": ms(walls[False]), "post_batch_ms_median_sealed": ms(walls[True]),
            "seal_batch_ms_median": ms(inside["seal_batch"]), "key_statement_ms_median": ms(inside["keys"]),
            "seal_cpu_ms_per_batch": round(1000 * seal_cpu(batch), 2)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--batches", type=int, default=30)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.batch, args.batches))))
