"""Crypto-shredding against a real PostgreSQL: an entry's personal text is sealed with its
counterparty's key; `hera privacy erase` destroys the key; afterwards the ledger still balances,
the audit chain still verifies, and the name can be read nowhere in the database."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest
from click.testing import CliRunner

from pipeline.domain.entries import JournalEntry, JournalLine
from pipeline.domain.privacy import seal, sealed_subject, subject_id, unseal
from pipeline.ledger.export_beancount import export_beancount
from pipeline.ledger.migrate import migrate
from pipeline.ledger.privacy import ERASED, pepper_from, reveal, seal_entries
from pipeline.ledger.reports import account_ledger
from pipeline.ledger.store import LedgerStore
from pipeline.ledger.verify import verify_ledger

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
KEY = b"p" * 32
NAME = "Jane Q. Doe"
FEES = "HERA.FIN.EXP.PROFESSIONAL.FEES.v1"


def consulting(org: str, event_id: str, counterparty: str) -> JournalEntry:
    amount = Decimal("450.00")
    return JournalEntry(org, event_id, FEES, datetime(2026, 4, 2, 9, tzinfo=UTC), "EUR",
                        (JournalLine("6650", "DR", amount, "EUR", FEES, f"advice from {counterparty}"),
                         JournalLine("1010", "CR", amount, "EUR", FEES)),
                        "bank_feed", description=f"SEPA TRANSFER {counterparty.upper()} INV 7",
                        counterparty=counterparty)


def test_sealing_is_keyed_per_subject() -> None:
    key, other = os.urandom(32), os.urandom(32)
    subject = subject_id(b"pepper", "org", NAME)
    assert subject == subject_id(b"pepper", "org", "  jane q.   DOE ")   # one subject, however written
    token = seal(key, subject, NAME, nonce=os.urandom(16))
    assert NAME not in token and sealed_subject(token) == subject
    assert unseal(key, token) == NAME
    assert unseal(other, token) is None and unseal(None, token) is None
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert unseal(key, tampered) is None


async def test_erasing_a_subject_leaves_the_books_and_the_chain_intact(database_url: str, tmp_path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    await migrate(database_url)
    store = await LedgerStore.connect(database_url, pool_size=2, timeout_seconds=10, audit_key=KEY)
    admin = await asyncpg.connect(database_url, timeout=10)
    org = str(uuid.uuid4())
    try:
        await store.ensure_organization(org)
        entries = await seal_entries(admin, [consulting(org, "c-1", NAME), consulting(org, "c-2", "Acme GmbH")],
                                     pepper_from(KEY))
        assert [r.outcome for r in await store.post_batch(entries)] == ["posted", "posted"]
        stored = await admin.fetchval("SELECT counterparty FROM universal_transactions WHERE event_id = 'c-1'")
        assert await reveal(admin, org, stored) == NAME          # readable while the key exists
        assert await rows_mentioning(admin, "jane") == []         # and never stored in clear
        assert await ledger_names(admin, org) == {"c-1": (NAME, f"advice from {NAME}"),
                                                  "c-2": ("Acme GmbH", "advice from Acme GmbH")}
        assert f'"{NAME}" "SEPA TRANSFER JANE Q. DOE INV 7"' in await export_beancount(admin, org)

        monkeypatch.setenv("HERA_DATABASE_URL", database_url)
        monkeypatch.setenv("HERA_AUDIT_KEY", KEY.decode())
        monkeypatch.setenv("HERA_HOME", str(tmp_path))
        from pipeline.cli.app import main
        result = await asyncio.to_thread(CliRunner().invoke, main, ["privacy", "erase", "--org", org,
                                                                    "--subject", "jane q. doe"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["keys_destroyed"] == 1

        assert await reveal(admin, org, stored) is None           # gone for good
        other = await admin.fetchval("SELECT counterparty FROM universal_transactions WHERE event_id = 'c-2'")
        assert await reveal(admin, org, other) == "Acme GmbH"     # other subjects untouched
        assert await rows_mentioning(admin, "jane") == []
        assert await ledger_names(admin, org) == {"c-1": (ERASED, ERASED),          # reads say so
                                                  "c-2": ("Acme GmbH", "advice from Acme GmbH")}
        books = await export_beancount(admin, org)
        assert NAME not in books and f'"{ERASED}" "{ERASED}"' in books
        report = await verify_ledger(admin, key=KEY)
        assert report["ok"], report
        assert report["unbalanced_entries"] == 0 and report["audit"]["chain_breaks"] == 0
        erased = await admin.fetchval("SELECT count(*) FROM audit_log WHERE action = 'privacy.subject_erased'")
        assert erased == 1
    finally:
        await admin.close()
        await store.close()


async def ledger_names(admin: asyncpg.Connection, org: str) -> dict[str, tuple[str, str]]:
    """Per event, the counterparty and line description that `hera report ledger` shows on 6650."""
    return {r["event_id"]: (r["counterparty"], r["description"]) for r in await account_ledger(admin, org, "6650")}


async def rows_mentioning(admin: asyncpg.Connection, needle: str) -> list[str]:
    """Tables of the public schema with a row whose text form contains ``needle`` (case-insensitive)."""
    tables = [r[0] for r in await admin.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    hits = []
    for table in tables:
        if await admin.fetchval(f'SELECT count(*) FROM "{table}" t WHERE t::text ILIKE $1', f"%{needle}%"):
            hits.append(table)
    return hits
