"""The audit log's hash chain against a real PostgreSQL: append-only, and any edit, deletion or
reordering (by a superuser who switches the append-only trigger off) is detected."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from pipeline.ledger.audit import GENESIS_HASH, AuditRecord, chain, check_chain, verify_audit
from pipeline.ledger.migrate import migrate
from pipeline.ledger.store import LedgerStore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
T0 = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


def records(org: str, n: int, start: int = 0) -> list[AuditRecord]:
    return [AuditRecord(org, "event.classified", "hera-stream", T0 + timedelta(seconds=i), subject=f"ev-{i}",
                        payload={"confidence": 0.93, "amount": "12.50", "i": i, "note": "café"},
                        record_key=f"k-{i}")
            for i in range(start, start + n)]


@pytest.fixture()
async def setup(database_url: str) -> AsyncIterator[tuple[LedgerStore, asyncpg.Connection, str, str]]:
    await migrate(database_url)
    store = await LedgerStore.connect(database_url, pool_size=2, timeout_seconds=10)
    admin = await asyncpg.connect(database_url, timeout=10)
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    await store.ensure_organization(a)
    await store.ensure_organization(b)
    await store.append_audit(records(a, 5) + records(b, 3))
    try:
        yield store, admin, a, b
    finally:
        await admin.close()
        await store.close()


def test_chain_is_pure_and_detects_edits_without_a_database() -> None:
    org = str(uuid.uuid4())
    rows = [asdict(r) for r in chain(records(org, 3), 0, GENESIS_HASH)]
    assert check_chain(rows, (3, rows[-1]["hash"])) == []
    rows[1] = {**rows[1], "payload": {**rows[1]["payload"], "amount": "99.00"}}
    assert [b["kind"] for b in check_chain(rows)] == ["hash"]


def test_fast_canonical_form_is_byte_identical_to_the_json_encoder() -> None:
    """canonical() writes flat payloads out directly; the bytes (and so every hash) must be exactly
    what the key-sorted json encoder produces, for any strings, escapes and scalar kinds."""
    from datetime import timezone

    from pipeline.ledger.audit import _canonical_json, canonical
    texts = ["", "plain", 'quote " back \\ slash', "tab\tnew\nline\r", "\x00\x1f\x7f", "café ü 東京 \u2028\u2029",
             "emoji \U0001f600", "</script>"]
    payloads = [{}, {"entry_id": str(uuid.uuid4()), "smart_code": "HERA.FIN.X.Y.Z.v1", "currency": "USD",
                     "total": "12.50", "lines": 2},
                {t or "k": t for t in texts}, {"b": True, "f": False, "n": None, "i": -7, "big": 10 ** 30, "Z": 0,
                                               "é": "x", "a b": "1"}]
    org = str(uuid.uuid4()).upper()
    for when in (T0, datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=-5)))):
        for payload in payloads:
            for record_key, subject in ((None, None), ("k-1", "ev \"1\""), ("ключ", None)):
                for actor, action in (("hera-stream", "entry.posted"), ('re"viewer', "review.ap\\proved")):
                    args = (org, 42, record_key, when, actor, action, subject, payload)
                    assert canonical(*args) == _canonical_json(*args), args
    nested = {"lines": [{"a": 1}], "x": 1.5}   # not flat: the json encoder itself
    assert canonical(org, 1, None, T0, "a", "b", None, nested) == _canonical_json(org, 1, None, T0, "a", "b", None,
                                                                                   nested)


async def test_append_is_idempotent_per_record_key_and_verifies(setup) -> None:
    store, admin, a, _ = setup
    again = await store.append_audit(records(a, 7))   # k-0..k-4 known: only k-5, k-6 appended
    assert [r.seq for r in again] == [6, 7]
    report = await verify_audit(admin)
    assert report == {"ok": True, "organizations": 2, "rows": 10, "breaks": 0, "break_details": []}
    with pytest.raises(asyncpg.PostgresError) as caught:
        await admin.execute("UPDATE audit_log SET actor = 'mallory'")
    assert caught.value.constraint_name == "audit_log_append_only"
    with pytest.raises(asyncpg.PostgresError):
        await admin.execute("DELETE FROM audit_log")


async def _tamper(admin: asyncpg.Connection, *statements: str, org: str) -> None:
    async with admin.transaction():
        await admin.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        for sql in statements:
            await admin.execute(sql, uuid.UUID(org))
        await admin.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")


async def test_edited_row_is_detected(setup) -> None:
    _, admin, a, b = setup
    await _tamper(admin, "UPDATE audit_log SET payload = jsonb_set(payload, '{amount}', '\"1.00\"')"
                         " WHERE organization_id = $1 AND seq = 3", org=a)
    report = await verify_audit(admin)
    assert not report["ok"]
    assert report["break_details"] == [{"organization_id": a, "seq": 3, "kind": "hash"}]
    assert (await verify_audit(admin, b))["ok"]


async def test_deleted_row_is_detected(setup) -> None:
    _, admin, a, _ = setup
    await _tamper(admin, "DELETE FROM audit_log WHERE organization_id = $1 AND seq = 2", org=a)
    kinds = {(d["seq"], d["kind"]) for d in (await verify_audit(admin, a))["break_details"]}
    assert (3, "seq_gap") in kinds and (3, "link") in kinds


async def test_deleted_newest_row_is_detected(setup) -> None:
    _, admin, a, _ = setup
    await _tamper(admin, "DELETE FROM audit_log WHERE organization_id = $1 AND seq = 5", org=a)
    assert [d["kind"] for d in (await verify_audit(admin, a))["break_details"]] == ["head"]


async def test_reordered_rows_are_detected(setup) -> None:
    _, admin, a, _ = setup
    await _tamper(admin, "UPDATE audit_log SET seq = 1000 WHERE organization_id = $1 AND seq = 2",
                  "UPDATE audit_log SET seq = 2 WHERE organization_id = $1 AND seq = 4",
                  "UPDATE audit_log SET seq = 4 WHERE organization_id = $1 AND seq = 1000", org=a)
    report = await verify_audit(admin, a)
    assert not report["ok"] and report["breaks"] >= 2
