"""A superuser who tampers with the ledger and its audit chain from inside the database is caught
(real PostgreSQL): the chain is keyed with a key the database never holds, each entry's header and
lines are digested into the chain, every guard trigger is checked, and a signed checkpoint kept
outside the database catches the newest rows deleted together with their head."""

from __future__ import annotations

import json
import stat
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from pipeline.config import Settings
from pipeline.domain.entries import JournalEntry, JournalLine
from pipeline.ledger.audit import canonical, chain_heads, link_hash, verify_audit
from pipeline.ledger.audit_keys import AuditKeyError, load_key, read_checkpoint, write_checkpoint
from pipeline.ledger.migrate import migrate
from pipeline.ledger.store import LedgerStore
from pipeline.ledger.verify import verify_ledger

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
KEY = b"k" * 32
GROUND = "HERA.FIN.EXP.TRAVEL.GROUND.v1"


def taxi(org: str, event_id: str, amount: str = "23.40") -> JournalEntry:
    value = Decimal(amount)
    return JournalEntry(org, event_id, GROUND, datetime(2026, 3, 5, 12, tzinfo=UTC), "USD",
                        (JournalLine("6420", "DR", value, "USD", GROUND), JournalLine("1010", "CR", value, "USD", GROUND)),
                        "bank_feed")


@pytest.fixture()
async def ledger(database_url: str) -> AsyncIterator[tuple[LedgerStore, asyncpg.Connection, str]]:
    await migrate(database_url)
    store = await LedgerStore.connect(database_url, pool_size=2, timeout_seconds=10, audit_key=KEY)
    admin = await asyncpg.connect(database_url, timeout=10)
    org = str(uuid.uuid4())
    await store.ensure_organization(org)
    await store.post_batch([taxi(org, "t-1"), taxi(org, "t-2")])
    await store.post_batch([taxi(org, "t-3")])
    try:
        yield store, admin, org
    finally:
        await admin.close()
        await store.close()


async def test_untouched_ledger_verifies(ledger) -> None:
    _, admin, _ = ledger
    report = await verify_ledger(admin, key=KEY)
    assert report["ok"], report
    assert report["header_total_mismatches"] == report["audit"]["entries_changed_since_audited"] == 0
    assert not (await verify_audit(admin, key=b"x" * 32))["ok"]   # another key: every keyed link fails


async def test_chain_recomputed_without_the_key_is_detected(ledger) -> None:
    """Multiply an entry by ten, fix its audit row, and re-compute every link as a plain hash chain."""
    _, admin, org = ledger
    async with admin.transaction():
        await admin.execute("SET LOCAL session_replication_role = replica")   # all triggers off
        await admin.execute("UPDATE universal_transaction_lines SET amount = amount * 10 WHERE transaction_id ="
                            " (SELECT id FROM universal_transactions WHERE event_id = 't-3')")
        await admin.execute("UPDATE universal_transactions SET total_amount = total_amount * 10 WHERE event_id = 't-3'")
        rows = await admin.fetch("SELECT * FROM audit_log WHERE organization_id = $1 ORDER BY seq", uuid.UUID(org))
        prev = "0" * 64
        for row in rows:
            payload = json.loads(row["payload"])
            for e in payload.get("entries", []):
                if e[1] == "t-3":
                    e[4] = str(Decimal(e[4]) * 10)
            digest = link_hash(prev, canonical(org, row["seq"], row["record_key"], row["occurred_at"], row["actor"],
                                               row["action"], row["subject"], payload))   # no key: sha256
            await admin.execute("UPDATE audit_log SET payload = $3::jsonb, prev_hash = $4, hash = $5"
                                " WHERE organization_id = $1 AND seq = $2", uuid.UUID(org), row["seq"],
                                json.dumps(payload), prev, digest)
            prev = digest
        await admin.execute("UPDATE audit_heads SET hash = $2 WHERE organization_id = $1", uuid.UUID(org), prev)
    report = await verify_ledger(admin, key=KEY)
    assert not report["ok"]
    assert report["audit"]["chain_breaks"] >= 1
    assert {d["kind"] for d in report["audit"]["break_details"]} == {"hash"}


async def test_a_moved_line_is_detected(ledger) -> None:
    """6420 -> 3100: still balanced, totals still right, but the entry is not the one the chain recorded."""
    _, admin, org = ledger
    async with admin.transaction():
        await admin.execute("SET LOCAL session_replication_role = replica")
        await admin.execute(
            "UPDATE universal_transaction_lines l SET account_id = (SELECT id FROM core_entities WHERE"
            " organization_id = $1 AND entity_code = '3100') WHERE l.side = 'DR' AND l.transaction_id ="
            " (SELECT id FROM universal_transactions WHERE event_id = 't-2')", uuid.UUID(org))
    report = await verify_ledger(admin, key=KEY)
    assert not report["ok"]
    assert report["unbalanced_entries"] == 0 and report["audit"]["chain_breaks"] == 0
    assert report["audit"]["entries_changed_since_audited"] == 1


async def test_a_header_total_that_is_not_its_lines_is_detected(ledger) -> None:
    _, admin, _ = ledger
    async with admin.transaction():
        await admin.execute("SET LOCAL session_replication_role = replica")
        await admin.execute("UPDATE universal_transactions SET total_amount = 1 WHERE event_id = 't-1'")
    report = await verify_ledger(admin, key=KEY)
    assert not report["ok"] and report["header_total_mismatches"] == 1


@pytest.mark.parametrize(("table", "trigger", "guard"), [
    ("universal_transactions", "universal_transactions_append_only", "ledger_append_only"),
    ("universal_transaction_lines", "universal_transaction_lines_append_only", "ledger_append_only"),
    ("audit_log", "audit_log_append_only", "audit_append_only"),
    ("ledger_balance_marker", "universal_transactions_balanced", "balance_trigger"),
])
async def test_a_disabled_trigger_is_detected(ledger, table: str, trigger: str, guard: str) -> None:
    _, admin, _ = ledger
    await admin.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
    report = await verify_ledger(admin, key=KEY)
    assert not report["ok"] and report["guards"][guard] is False


async def test_deleted_newest_rows_with_their_head_are_caught_by_the_checkpoint(ledger, tmp_path: Path) -> None:
    _, admin, org = ledger
    checkpoint_file = tmp_path / "checkpoint.json"
    write_checkpoint(checkpoint_file, await chain_heads(admin), KEY)
    assert stat.S_IMODE(checkpoint_file.stat().st_mode) == 0o600
    checkpoint = read_checkpoint(checkpoint_file, KEY)
    assert (await verify_audit(admin, key=KEY, checkpoint=checkpoint))["ok"]
    async with admin.transaction():   # remove the newest row and rewind the head to the row before it
        await admin.execute("SET LOCAL session_replication_role = replica")
        await admin.execute("DELETE FROM audit_log WHERE organization_id = $1 AND seq = (SELECT max(seq) FROM"
                            " audit_log WHERE organization_id = $1)", uuid.UUID(org))
        await admin.execute("UPDATE audit_heads h SET seq = l.seq, hash = l.hash FROM audit_log l WHERE"
                            " l.organization_id = h.organization_id AND h.organization_id = $1 AND l.seq ="
                            " (SELECT max(seq) FROM audit_log WHERE organization_id = $1)", uuid.UUID(org))
        await admin.execute("DELETE FROM universal_transaction_lines WHERE transaction_id ="
                            " (SELECT id FROM universal_transactions WHERE event_id = 't-3')")
        await admin.execute("DELETE FROM universal_transactions WHERE event_id = 't-3'")
    assert (await verify_audit(admin, key=KEY))["ok"]          # the chain alone cannot tell
    report = await verify_audit(admin, key=KEY, checkpoint=checkpoint)
    assert not report["ok"] and [d["kind"] for d in report["break_details"]] == ["checkpoint"]


def test_an_edited_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    write_checkpoint(path, {str(uuid.uuid4()): (7, "a" * 64)}, KEY)
    doc = json.loads(path.read_text())
    next(iter(doc["heads"].values()))["seq"] = 3
    path.write_text(json.dumps(doc))
    with pytest.raises(AuditKeyError):
        read_checkpoint(path, KEY)


def test_the_embedded_default_key_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    key = load_key(settings)
    assert len(key) >= 32 and load_key(settings) == key
    assert stat.S_IMODE((tmp_path / "audit.key").stat().st_mode) == 0o600
    assert load_key(Settings(home=tmp_path, audit_key="z" * 40)) == b"z" * 40


async def test_cli_checkpoint_then_verify_against_it(ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     database_url: str) -> None:
    import asyncio

    from click.testing import CliRunner

    from pipeline.cli.app import main

    monkeypatch.setenv("HERA_DATABASE_URL", database_url)
    monkeypatch.setenv("HERA_AUDIT_KEY", KEY.decode())
    monkeypatch.setenv("HERA_HOME", str(tmp_path))
    runner, out = CliRunner(), tmp_path / "cp.json"

    def invoke(*args: str):   # the command runs its own event loop: off this test's loop
        return runner.invoke(main, list(args))

    written = await asyncio.to_thread(invoke, "audit", "checkpoint", "--out", str(out))
    assert written.exit_code == 0, written.output
    verified = await asyncio.to_thread(invoke, "audit", "verify", "--checkpoint", str(out))
    assert verified.exit_code == 0 and json.loads(verified.output)["checkpoint"]["organizations"] == 1
    monkeypatch.setenv("HERA_AUDIT_KEY", "y" * 32)
    refused = await asyncio.to_thread(invoke, "audit", "verify", "--checkpoint", str(out))
    assert refused.exit_code == 1 and "signature" in refused.output
