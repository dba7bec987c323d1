"""Ledger posting benchmark (not a test): entries/s through ``LedgerStore.post_batch`` in batches of
1, 100 and 1,000, one batch at a time, then batches of 1,000 with two in flight on a pool of two
connections (``store_concurrent``), beside the same run's raw COPY rate of the same rows into the
same tables (one connection, one batch at a time).

    .venv/bin/python benchmarks/ledger_bench.py [--dsn postgresql://…/postgres] [--entries 20000]

Without ``--dsn`` (or HERA_BENCH_DATABASE_URL) it starts a throwaway PostgreSQL from the embedded
binaries (fsync off, like the test server). Each measurement gets a fresh database. Prints one
JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.devtools import services
from pipeline.domain.entries import JournalEntry, JournalLine
from pipeline.ledger.migrate import migrate
from pipeline.ledger.posting import ENTRY_COLUMNS, LINE_COLUMNS, entry_id_for, entry_row, line_rows
from pipeline.ledger.store import LedgerStore

ORGS = 4
SINGLE_ENTRIES = 1_000          # batches of 1 are slow; fewer of them
CODE = "HERA.FIN.EXP.MEALS.ENTERTAINMENT.v1"


def make_entries(orgs: list[str], n: int, tag: str) -> list[JournalEntry]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        amount = Decimal(1000 + i % 9000) / 100
        lines = (JournalLine("6500", "DR", amount, "USD", CODE), JournalLine("1010", "CR", amount, "USD", CODE))
        out.append(JournalEntry(orgs[i % len(orgs)], f"{tag}-{i}", CODE, start + timedelta(minutes=i), "USD", lines,
                                "bank_feed", description=f"MERCHANT {i % 500}", counterparty="Merchant"))
    return out


async def fresh_db(admin_dsn: str) -> str:
    dsn = await services.create_database(admin_dsn, f"bench_{uuid.uuid4().hex[:10]}")
    await migrate(dsn)
    return dsn


async def setup_store(admin_dsn: str) -> tuple[LedgerStore, list[str], str]:
    dsn = await fresh_db(admin_dsn)
    store = await LedgerStore.connect(dsn, pool_size=2, timeout_seconds=60)
    orgs = [str(uuid.uuid4()) for _ in range(ORGS)]
    for org in orgs:
        await store.ensure_organization(org, f"bench {org[:8]}")
    return store, orgs, dsn


async def bench_store(admin_dsn: str, batch_size: int, n: int, *, audit: bool, in_flight: int = 1) -> dict:
    """Up to ``in_flight`` batches posted at once (each on its own pooled connection)."""
    store, orgs, _ = await setup_store(admin_dsn)
    entries = make_entries(orgs, n, f"b{batch_size}")
    batches = [entries[i:i + batch_size] for i in range(0, n, batch_size)]
    try:
        warm = make_entries(orgs, min(batch_size, 100) * in_flight, "warm")
        await asyncio.gather(*(store.post_batch(warm[k::in_flight], audit=audit) for k in range(in_flight)))
        slots = asyncio.Semaphore(in_flight)

        async def post(batch: list[JournalEntry]) -> int:
            async with slots:
                return sum(r.outcome == "posted" for r in await store.post_batch(batch, audit=audit))

        t0 = time.perf_counter()
        posted = sum(await asyncio.gather(*(post(b) for b in batches)))
        seconds = time.perf_counter() - t0
    finally:
        await store.close()
    if posted != n:
        raise SystemExit(f"posted {posted} of {n}")
    return {"batch_size": batch_size, "entries": n, "audit": audit, "in_flight": in_flight,
            "seconds": round(seconds, 3), "entries_per_second": round(n / seconds)}


async def bench_raw_copy(admin_dsn: str, n: int, batch_size: int) -> dict:
    """The same rows COPYed straight into the ledger tables (superuser, no staging, no checks in Python)."""
    store, orgs, dsn = await setup_store(admin_dsn)
    await store.close()
    entries = make_entries(orgs, n, "raw")
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch("SELECT organization_id, entity_code, id FROM core_entities")
        charts: dict = {}
        for r in rows:
            charts.setdefault(r["organization_id"], {})[r["entity_code"]] = r["id"]
        t0 = time.perf_counter()
        for i in range(0, n, batch_size):
            entry_records, line_records = [], []
            for entry in entries[i:i + batch_size]:
                org = uuid.UUID(entry.organization_id)
                eid = entry_id_for(org, entry.event_id)
                entry_records.append(entry_row(eid, org, entry))
                line_records.extend(line_rows(eid, org, entry, charts[org]))
            async with conn.transaction():
                await conn.copy_records_to_table("universal_transactions", records=entry_records,
                                                 columns=ENTRY_COLUMNS)
                await conn.copy_records_to_table("universal_transaction_lines", records=line_records,
                                                 columns=LINE_COLUMNS)
        seconds = time.perf_counter() - t0
    finally:
        await conn.close()
    return {"batch_size": batch_size, "entries": n, "seconds": round(seconds, 3),
            "entries_per_second": round(n / seconds)}


async def run(admin_dsn: str, n: int) -> dict:
    report: dict = {"entries_per_batch_run": n, "lines_per_entry": 2, "organizations": ORGS, "store": [],
                    "store_without_audit": []}
    for batch_size, count in ((1, SINGLE_ENTRIES), (100, n), (1000, n)):
        print(f"store, batches of {batch_size} …", file=sys.stderr)
        report["store"].append(await bench_store(admin_dsn, batch_size, count, audit=True))
    print("store, batches of 1000, 2 in flight …", file=sys.stderr)
    report["store_concurrent"] = [await bench_store(admin_dsn, 1000, n, audit=True, in_flight=2)]
    print("store without audit rows, batches of 1000 …", file=sys.stderr)
    report["store_without_audit"].append(await bench_store(admin_dsn, 1000, n, audit=False))
    print("raw COPY, batches of 1000 …", file=sys.stderr)
    report["raw_copy"] = await bench_raw_copy(admin_dsn, n, 1000)
    raw = report["raw_copy"]["entries_per_second"]
    best = max(r["entries_per_second"] for r in report["store"])
    best_concurrent = max(r["entries_per_second"] for r in report["store_concurrent"])
    report["store_vs_raw_copy"] = round(best / raw, 3)
    report["store_concurrent_vs_raw_copy"] = round(best_concurrent / raw, 3)   # raw COPY: one connection
    report["target_entries_per_second"] = 20_000
    report["target_met"] = best >= 20_000
    report["target_met_concurrent"] = best_concurrent >= 20_000
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("HERA_BENCH_DATABASE_URL"),
                        help="admin DSN of a PostgreSQL server (a throwaway one is started if absent)")
    parser.add_argument("--entries", type=int, default=20_000)
    args = parser.parse_args()
    if args.dsn:
        print(json.dumps(asyncio.run(run(args.dsn, args.entries)), indent=2))
        return
    home = Path(tempfile.mkdtemp(prefix="hera-bench-"))
    home.chmod(0o755)
    data_dir = home / "data"
    try:
        handle = services.start_postgres(data_dir, services.free_port(), durable=False)
        print(json.dumps(asyncio.run(run(handle.url("postgres"), args.entries)), indent=2))
    finally:
        services.stop_postgres(data_dir)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
