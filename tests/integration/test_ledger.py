"""The ledger against a real PostgreSQL: the database itself refuses what would break the books
(raw SQL behind the code's back), the store posts batches with duplicates, closed periods and
unknown accounts inside, and the read side (trial balance, beancount, verify) agrees."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from pipeline.domain.entries import JournalEntry, JournalLine
from pipeline.domain.outcomes import Outcome, Reason
from pipeline.ledger.errors import (
    DuplicateEntryError,
    IntegrityError,
    PeriodClosedError,
    TenantViolationError,
    UnbalancedEntryError,
    map_db_error,
)
from pipeline.ledger.export_beancount import export_beancount
from pipeline.ledger.migrate import migrate
from pipeline.ledger.reports import account_ledger, trial_balance
from pipeline.ledger.store import LedgerStore
from pipeline.ledger.verify import verify_ledger

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

MEALS = "HERA.FIN.EXP.MEALS.ENTERTAINMENT.v1"
INVOICE = "HERA.FIN.AR.INVOICE.ISSUED.v1"
MARCH = datetime(2024, 3, 5, 12, 0, tzinfo=UTC)
BEAN_CHECK = Path(sys.executable).with_name("bean-check")


def entry(org: str, event_id: str, amount: str = "12.50", *, account: str = "6500", currency: str = "USD",
          when: datetime = MARCH, code: str = MEALS, description: str = "CAFE \"NERO\" 12") -> JournalEntry:
    value = Decimal(amount)
    lines = (JournalLine(account, "DR", value, currency, code), JournalLine("1010", "CR", value, currency, code))
    return JournalEntry(org, event_id, code, when, currency, lines, "bank_feed", description=description,
                        counterparty="Caffe Nero")


def invoice(org: str, event_id: str) -> JournalEntry:
    lines = (JournalLine("1100", "DR", Decimal("1050.00"), "EUR", INVOICE),
             JournalLine("4000", "CR", Decimal("1000.00"), "EUR", INVOICE),
             JournalLine("2100", "CR", Decimal("50.00"), "EUR", INVOICE))
    return JournalEntry(org, event_id, INVOICE, MARCH, "EUR", lines, "erp", reference="INV-1")


@pytest.fixture()
async def ledger_url(database_url: str) -> str:
    await migrate(database_url)
    return database_url


@pytest.fixture()
async def store(ledger_url: str) -> AsyncIterator[LedgerStore]:
    s = await LedgerStore.connect(ledger_url, pool_size=4, timeout_seconds=10)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture()
async def orgs(store: LedgerStore) -> tuple[str, str]:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    assert await store.ensure_organization(a, "Org A")
    assert await store.ensure_organization(b, "Org B")
    return a, b


@pytest.fixture()
async def admin(ledger_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(ledger_url, timeout=10)
    try:
        yield conn
    finally:
        await conn.close()


async def test_migrate_is_rerunnable(database_url: str) -> None:
    first = await migrate(database_url)
    assert first and all(name.endswith(".sql") for name in first)
    assert await migrate(database_url) == []


async def test_ensure_organization_is_idempotent_and_seeds_chart(store: LedgerStore, orgs, admin) -> None:
    a, _ = orgs
    assert await store.ensure_organization(a, "Org A") is False
    assert await store.organization_exists(a)
    assert not await store.organization_exists(str(uuid.uuid4()))
    assert set(orgs) <= await store.known_organizations()
    codes = {r["entity_code"] for r in await admin.fetch(
        "SELECT entity_code FROM core_entities WHERE organization_id = $1 AND entity_type = 'gl_account'", a)}
    assert {"1000", "1010", "1100", "2100", "4000", "6500", "7000"} <= codes


async def test_organisations_are_provisioned_and_read_in_bulk(store: LedgerStore, orgs, admin) -> None:
    a, b = orgs
    c, d = str(uuid.uuid4()), str(uuid.uuid4())
    assert await store.ensure_organizations([a, c, d, c]) == {c, d}  # a exists already
    assert await store.ensure_organizations([c, d]) == set()
    charts = await admin.fetch("SELECT organization_id, count(*) AS n FROM core_entities"
                               " WHERE entity_type = 'gl_account' GROUP BY organization_id")
    per_org = {str(r["organization_id"]): r["n"] for r in charts}
    assert per_org[c] == per_org[d] == per_org[a] > 0  # every new organisation got the whole chart
    heads = {str(r["organization_id"]) for r in await admin.fetch("SELECT organization_id FROM audit_heads")}
    assert {c, d} <= heads

    await store.set_org_settings(a, {"rate_limit_per_minute": 7})
    await store.save_memory(b, {"org_memory": {"x": 1}})
    unknown = str(uuid.uuid4())
    settings = await store.org_settings_many([a, b, unknown])
    assert settings[a]["rate_limit_per_minute"] == 7 and unknown not in settings
    assert await store.org_settings(a) == settings[a]
    memory = await store.load_memory_many([a, b, unknown])
    assert memory == {b: {"org_memory": {"x": 1}}}
    assert await store.load_memory(b) == memory[b] and await store.load_memory(a) == {}


# ---------------------------------------------------------------- the database refuses, whatever the code does

async def _raw_entry(conn: asyncpg.Connection, org: str, event_id: str, lines: list[tuple[str, str, str]]) -> None:
    """Header + lines by plain SQL (superuser), bypassing the store."""
    entry_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO universal_transactions (id, organization_id, event_id, smart_code, transaction_date,"
        " posting_period, occurred_at, currency, total_amount, source, created_by)"
        " VALUES ($1, $2, $3, $4, '2024-03-05', '2024-03', now(), 'USD', 10, 'api', 'test')",
        entry_id, uuid.UUID(org), event_id, MEALS)
    for n, (account, side, amount) in enumerate(lines, start=1):
        await conn.execute(
            "INSERT INTO universal_transaction_lines (transaction_id, line_number, organization_id, account_id,"
            " side, amount, currency, smart_code, created_by)"
            " SELECT $1, $2, $3, id, $5, $6::numeric, 'USD', $7, 'test' FROM core_entities"
            " WHERE organization_id = $3 AND entity_code = $4",
            entry_id, n, uuid.UUID(org), account, side, amount, MEALS)


async def test_database_rejects_unbalanced_entry_at_commit(orgs, admin) -> None:
    a, _ = orgs
    tx = admin.transaction()
    await tx.start()
    await _raw_entry(admin, a, "raw-unbalanced", [("6500", "DR", "10.00"), ("1010", "CR", "9.99")])
    with pytest.raises(asyncpg.CheckViolationError) as caught:
        await tx.commit()
    assert caught.value.constraint_name == "universal_transactions_balanced"
    assert isinstance(map_db_error(caught.value), UnbalancedEntryError)
    assert await admin.fetchval("SELECT count(*) FROM universal_transactions") == 0


async def test_database_rejects_single_line_and_headless_lines(orgs, admin) -> None:
    a, _ = orgs
    with pytest.raises(asyncpg.CheckViolationError):
        async with admin.transaction():
            await _raw_entry(admin, a, "raw-one-line", [("6500", "DR", "0")])
    with pytest.raises(asyncpg.ForeignKeyViolationError) as caught:
        async with admin.transaction():
            await admin.execute(
                "INSERT INTO universal_transaction_lines (transaction_id, line_number, organization_id, account_id,"
                " side, amount, currency, smart_code, created_by)"
                " SELECT $1, n, organization_id, id, s, 5, 'USD', $2, 'test' FROM core_entities,"
                " (VALUES (1, 'DR'), (2, 'CR')) v(n, s) WHERE organization_id = $3 AND entity_code = '1010'",
                uuid.uuid4(), MEALS, uuid.UUID(a))
    assert caught.value.constraint_name == "universal_transaction_lines_entry_fkey"


async def test_database_accepts_balanced_raw_entry_and_rejects_its_duplicate(orgs, admin) -> None:
    a, _ = orgs
    async with admin.transaction():
        await _raw_entry(admin, a, "raw-1", [("6500", "DR", "10.00"), ("1010", "CR", "10.00")])
    with pytest.raises(asyncpg.UniqueViolationError) as caught:
        async with admin.transaction():
            await _raw_entry(admin, a, "raw-1", [("6500", "DR", "10.00"), ("1010", "CR", "10.00")])
    assert caught.value.constraint_name == "universal_transactions_org_event_key"
    assert isinstance(map_db_error(caught.value), DuplicateEntryError)
    assert await admin.fetchval("SELECT count(*) FROM universal_transactions") == 1


async def test_database_rejects_negative_amount_bad_side_and_bad_smart_code(orgs, admin) -> None:
    a, _ = orgs
    with pytest.raises(asyncpg.CheckViolationError) as caught:
        async with admin.transaction():
            await _raw_entry(admin, a, "raw-neg", [("6500", "DR", "-5"), ("1010", "CR", "-5")])
    assert caught.value.constraint_name == "universal_transaction_lines_amount_non_negative"
    with pytest.raises(asyncpg.CheckViolationError):
        async with admin.transaction():
            await _raw_entry(admin, a, "raw-side", [("6500", "XX", "5"), ("1010", "CR", "5")])
    with pytest.raises(asyncpg.CheckViolationError) as caught:
        await admin.execute(
            "INSERT INTO universal_transactions (id, organization_id, event_id, smart_code, transaction_date,"
            " posting_period, occurred_at, currency, total_amount, source, created_by)"
            " VALUES (gen_random_uuid(), $1, 'bad-code', 'HERA.FIN.meals.v1', '2024-03-05', '2024-03', now(),"
            " 'USD', 1, 'api', 'test')", uuid.UUID(a))
    assert caught.value.constraint_name == "universal_transactions_smart_code_grammar"


async def test_posted_entries_are_append_only(store: LedgerStore, orgs, admin) -> None:
    a, _ = orgs
    await store.post_batch([entry(a, "e1")])
    with pytest.raises(asyncpg.PostgresError) as caught:
        await admin.execute("UPDATE universal_transaction_lines SET amount = amount + 1")
    assert caught.value.constraint_name == "universal_transaction_lines_append_only"
    with pytest.raises(asyncpg.PostgresError):
        await admin.execute("DELETE FROM universal_transactions")
    assert isinstance(map_db_error(caught.value), IntegrityError)


async def test_database_rejects_posting_into_closed_period(store: LedgerStore, orgs, admin) -> None:
    a, _ = orgs
    await store.set_period_closed(a, "2024-03")
    with pytest.raises(asyncpg.CheckViolationError) as caught:
        async with admin.transaction():
            await _raw_entry(admin, a, "raw-closed", [("6500", "DR", "1"), ("1010", "CR", "1")])
    assert caught.value.constraint_name == "posting_periods_closed"
    assert isinstance(map_db_error(caught.value), PeriodClosedError)


async def _raw_headers(conn: asyncpg.Connection, org: str, event_ids: list[str]) -> list[uuid.UUID]:
    """Many headers in ONE statement (superuser, bypassing the store)."""
    ids = [uuid.uuid4() for _ in event_ids]
    await conn.execute(
        "INSERT INTO universal_transactions (id, organization_id, event_id, smart_code, transaction_date,"
        " posting_period, occurred_at, currency, total_amount, source, created_by)"
        " SELECT i, $2, e, $4, '2024-03-05', '2024-03', now(), 'USD', 10, 'api', 'test'"
        " FROM unnest($1::uuid[], $3::text[]) AS x(i, e)", ids, uuid.UUID(org), event_ids, MEALS)
    return ids


async def _raw_lines(conn: asyncpg.Connection, org: str, rows: list[tuple[uuid.UUID, int, str, str, str]]) -> None:
    """Many lines (entry id, line number, account, side, amount) in ONE statement."""
    await conn.execute(
        "INSERT INTO universal_transaction_lines (transaction_id, line_number, organization_id, account_id,"
        " side, amount, currency, smart_code, created_by)"
        " SELECT t, n, $1, e.id, s, a::numeric, 'USD', $2, 'test'"
        " FROM unnest($3::uuid[], $4::int[], $5::text[], $6::text[], $7::text[]) AS x(t, n, c, s, a)"
        " JOIN core_entities e ON e.organization_id = $1 AND e.entity_code = x.c",
        uuid.UUID(org), MEALS, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
        [r[3] for r in rows], [r[4] for r in rows])


async def test_balance_check_covers_every_entry_of_a_multi_statement_transaction(orgs, admin) -> None:
    """0004 records the touched entries as one array per statement: the commit check still sees every
    entry of every statement, accepts a balanced multi-entry transaction and rejects one bad entry in it."""
    a, _ = orgs
    async with admin.transaction():   # 50 balanced entries: headers in one statement, lines in three
        ids = await _raw_headers(admin, a, [f"multi-{i}" for i in range(50)])
        await _raw_lines(admin, a, [(i, 1, "6500", "DR", "10.00") for i in ids[:25]])
        await _raw_lines(admin, a, [(i, 1, "6500", "DR", "10.00") for i in ids[25:]])
        await _raw_lines(admin, a, [(i, 2, "1010", "CR", "10.00") for i in ids])
    assert await admin.fetchval("SELECT count(*) FROM universal_transactions") == 50
    for bad_line in ((2, "1010", "CR", "9.99"), (2, "1010", "DR", "10.00")):   # off by a cent; one-sided
        tx = admin.transaction()
        await tx.start()
        ids = await _raw_headers(admin, a, [f"bad-{i}" for i in range(20)])
        await _raw_lines(admin, a, [(i, 1, "6500", "DR", "10.00") for i in ids])
        await _raw_lines(admin, a, [(i, *bad_line) if k == 13 else (i, 2, "1010", "CR", "10.00")
                                    for k, i in enumerate(ids)])
        with pytest.raises(asyncpg.CheckViolationError) as caught:
            await tx.commit()
        assert caught.value.constraint_name == "universal_transactions_balanced"
        assert str(ids[13]) in str(caught.value)
    async with admin.transaction():   # lines added later to an already posted entry are checked too
        first = await admin.fetchval("SELECT id FROM universal_transactions WHERE event_id = 'multi-0'")
        with pytest.raises(asyncpg.CheckViolationError):
            async with admin.transaction():
                await _raw_lines(admin, a, [(first, 3, "6500", "DR", "1.00")])
                await admin.execute("SET CONSTRAINTS universal_transactions_balanced IMMEDIATE")
    assert await admin.fetchval("SELECT count(*) FROM universal_transactions") == 50
    assert await admin.fetchval("SELECT count(*) FROM universal_transaction_lines") == 100
    # nothing is left behind by committed or failed transactions
    assert await admin.fetchval("SELECT count(*) FROM ledger_balance_pending_sets") == 0
    assert await admin.fetchval("SELECT count(*) FROM ledger_balance_marker") == 0


async def test_balance_check_can_run_before_commit_and_still_rejects(orgs, admin) -> None:
    """The store fires the deferred check early (SET CONSTRAINTS … IMMEDIATE); that is the same check."""
    a, _ = orgs
    with pytest.raises(asyncpg.CheckViolationError) as caught:
        async with admin.transaction():
            await _raw_entry(admin, a, "early", [("6500", "DR", "10.00"), ("1010", "CR", "9.00")])
            await admin.execute("SET CONSTRAINTS universal_transactions_balanced IMMEDIATE")
    assert caught.value.constraint_name == "universal_transactions_balanced"
    async with admin.transaction():
        await _raw_entry(admin, a, "early-ok", [("6500", "DR", "10.00"), ("1010", "CR", "10.00")])
        await admin.execute("SET CONSTRAINTS universal_transactions_balanced IMMEDIATE")
    assert await admin.fetchval("SELECT count(*) FROM universal_transactions") == 1


async def test_entries_and_audit_rows_need_an_existing_organisation(store: LedgerStore, orgs, admin) -> None:
    """0004 replaced the per-row foreign keys to core_organizations by a per-statement check (same
    constraint names) and made organisations permanent."""
    a, _ = orgs
    ghost = uuid.uuid4()
    with pytest.raises(asyncpg.ForeignKeyViolationError) as caught:
        async with admin.transaction():
            await _raw_entry(admin, str(ghost), "ghost", [])
    assert caught.value.constraint_name == "universal_transactions_organization_id_fkey"
    with pytest.raises(asyncpg.ForeignKeyViolationError) as caught:
        await admin.execute(
            "INSERT INTO audit_log (organization_id, seq, occurred_at, actor, action, prev_hash, hash)"
            " VALUES ($1, 1, now(), 'x', 'y', $2, $2), ($3, 1, now(), 'x', 'y', $2, $2)",
            uuid.UUID(a), "0" * 64, ghost)
    assert caught.value.constraint_name == "audit_log_organization_id_fkey"
    assert await admin.fetchval("SELECT count(*) FROM audit_log") == 0
    await store.post_batch([entry(a, "keep")])
    for sql in ("DELETE FROM core_organizations WHERE id = $1", "UPDATE core_organizations SET id = gen_random_uuid()"
                " WHERE id = $1"):
        with pytest.raises(asyncpg.IntegrityConstraintViolationError) as caught:
            await admin.execute(sql, uuid.UUID(a))
        assert caught.value.constraint_name == "core_organizations_permanent"
        assert isinstance(map_db_error(caught.value), IntegrityError)
    with pytest.raises(asyncpg.IntegrityConstraintViolationError):
        await admin.execute("TRUNCATE core_organizations CASCADE")
    await store.set_org_settings(a, {"rate_limit": 5})   # other updates are fine
    report = await verify_ledger(admin)
    assert report["ok"] and report["orphan_organization_rows"] == 0 and report["guards"]["organization_references"]


async def test_rls_refuses_ledger_rows_of_another_tenant(store: LedgerStore, orgs, admin) -> None:
    """The tenant policies of 0004 (acting organisations evaluated once per statement) still refuse, row by
    row, a write for an organisation the transaction does not act for, in a multi-row statement."""
    a, b = orgs
    await store.post_batch([entry(a, "a-1")])
    for table, sql in (
            ("universal_transactions",
             "INSERT INTO universal_transactions (id, organization_id, event_id, smart_code, transaction_date,"
             " posting_period, occurred_at, currency, total_amount, source, created_by)"
             " SELECT gen_random_uuid(), o, 'x-' || o, $3, '2024-03-05', '2024-03', now(), 'USD', 1, 'api', 't'"
             " FROM unnest(ARRAY[$1, $2]::uuid[]) o"),
            ("audit_log",
             "INSERT INTO audit_log (organization_id, seq, occurred_at, actor, action, prev_hash, hash, record_key)"
             " SELECT o, 1000, now(), 'x', 'y', repeat('2', 64), repeat('1', 64), o::text"
             " FROM unnest(ARRAY[$1, $2]::uuid[]) o WHERE $3 <> ''")):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with admin.transaction():
                await admin.execute("SET LOCAL ROLE hera_app")
                await admin.execute("SELECT set_config('app.organization_id', $1, true)", a)
                await admin.execute(sql, uuid.UUID(a), uuid.UUID(b), MEALS)
        assert await admin.fetchval(f"SELECT count(*) FROM {table} WHERE organization_id = $1", uuid.UUID(b)) == 0


async def test_amounts_are_stored_exactly(store: LedgerStore, orgs, admin) -> None:
    """The store stages amounts as decimal text: values and scales arrive exactly as given."""
    a, _ = orgs
    amounts = ["12.50", "0.10", "1500", "1E+2", "0.001", "123456789012345.678901"]
    batch = [entry(a, f"amt-{i}", amount) for i, amount in enumerate(amounts)]
    odd = JournalEntry(a, "conf", MEALS, MARCH, "USD", entry(a, "x").lines, "api", confidence=0.123455)  # type: ignore[arg-type]
    results = await store.post_batch([*batch, odd])
    assert all(r.outcome is Outcome.POSTED for r in results)
    rows = await admin.fetch("SELECT h.event_id, h.total_amount, l.amount FROM universal_transactions h"
                             " JOIN universal_transaction_lines l ON l.transaction_id = h.id AND l.line_number = 1"
                             " WHERE h.event_id LIKE 'amt-%' ORDER BY h.entry_number")
    assert [(r["total_amount"], r["amount"]) for r in rows] == [(Decimal(x), Decimal(x)) for x in amounts]
    assert [str(r["amount"]) for r in rows[:3]] == ["12.50", "0.10", "1500"]
    # a float confidence is converted as asyncpg would (Decimal(float): the float 0.123455 is
    # 0.12345499999…), then rounded to numeric(6, 5); str(0.123455) would have rounded up to 0.12346
    assert await admin.fetchval("SELECT confidence FROM universal_transactions WHERE event_id = 'conf'") == \
        Decimal("0.12345")


# ---------------------------------------------------------------- row-level security

async def test_rls_hides_and_refuses_other_tenants_rows(store: LedgerStore, orgs, admin) -> None:
    a, b = orgs
    await store.post_batch([entry(a, "a-1"), entry(b, "b-1")])
    role = await admin.fetchrow("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = 'hera_app'")
    assert role is not None and not role["rolsuper"] and not role["rolbypassrls"]
    async with admin.transaction():
        await admin.execute("SET LOCAL ROLE hera_app")
        await admin.execute("SELECT set_config('app.organization_id', $1, true)", a)
        seen = {r["event_id"] for r in await admin.fetch("SELECT event_id FROM universal_transactions")}
        assert seen == {"a-1"}
        assert await admin.fetchval("SELECT count(*) FROM universal_transaction_lines WHERE organization_id = $1",
                                    uuid.UUID(b)) == 0
        assert await admin.fetchval("SELECT count(*) FROM core_entities WHERE organization_id = $1",
                                    uuid.UUID(b)) == 0
        assert await admin.fetchval("SELECT count(*) FROM core_organizations") == 1
        assert await admin.fetchval("SELECT count(*) FROM audit_log WHERE organization_id = $1", uuid.UUID(b)) == 0
    with pytest.raises(asyncpg.InsufficientPrivilegeError) as caught:
        async with admin.transaction():
            await admin.execute("SET LOCAL ROLE hera_app")
            await admin.execute("SELECT set_config('app.organization_id', $1, true)", a)
            await admin.execute(
                "INSERT INTO classifier_memory (organization_id, key, value) VALUES ($1, 'k', '1')", uuid.UUID(b))
    assert isinstance(map_db_error(caught.value), TenantViolationError)
    async with admin.transaction():  # acting for A, B's rows cannot be changed either
        await admin.execute("SET LOCAL ROLE hera_app")
        await admin.execute("SELECT set_config('app.organization_id', $1, true)", a)
        status = await admin.execute("UPDATE core_organizations SET settings = '{\"x\": 1}' WHERE id = $1",
                                     uuid.UUID(b))
        assert status == "UPDATE 0"
    async with admin.transaction():  # acting for nobody: nothing at all
        await admin.execute("SET LOCAL ROLE hera_app")
        assert await admin.fetchval("SELECT count(*) FROM universal_transactions") == 0
    assert await store.org_settings(b) == {}


# ---------------------------------------------------------------- the posting store

async def test_batch_with_duplicates_posts_the_rest(store: LedgerStore, orgs, admin) -> None:
    a, b = orgs
    first = await store.post_batch([entry(a, "e1")])
    assert [r.outcome for r in first] == [Outcome.POSTED]
    batch = [entry(a, "e2"), entry(a, "e1"), entry(a, "e3"), entry(a, "e2"), entry(b, "e1")]
    results = await store.post_batch(batch)
    assert [(r.event_id, r.outcome) for r in results] == [
        ("e2", Outcome.POSTED), ("e1", Outcome.DUPLICATE), ("e3", Outcome.POSTED), ("e2", Outcome.DUPLICATE),
        ("e1", Outcome.POSTED)]
    assert results[1].entry_id == first[0].entry_id
    assert results[3].entry_id == results[0].entry_id
    assert await admin.fetchval("SELECT count(*) FROM universal_transactions") == 4
    assert await admin.fetchval("SELECT count(*) FROM universal_transaction_lines") == 8
    again = await store.post_batch(batch)
    assert all(r.outcome is Outcome.DUPLICATE for r in again)
    assert await admin.fetchval("SELECT count(*) FROM universal_transactions") == 4


async def test_rejections_hit_only_their_entry(store: LedgerStore, orgs, admin) -> None:
    a, _ = orgs
    await store.set_period_closed(a, "2024-02")
    unbalanced = JournalEntry(a, "unbal", MEALS, MARCH, "USD",
                              (JournalLine("6500", "DR", Decimal("2"), "USD", MEALS),
                               JournalLine("1010", "CR", Decimal("1"), "USD", MEALS)), "api")
    batch = [entry(a, "ok-1"), entry(a, "closed", when=datetime(2024, 2, 29, 23, tzinfo=UTC)),
             entry(a, "acct", account="9999"), entry(str(uuid.uuid4()), "org"), entry("not-a-uuid", "org2"),
             unbalanced, entry(a, "code", code="HERA.bad"), invoice(a, "ok-2")]
    results = await store.post_batch(batch)
    assert [(r.outcome, r.reason) for r in results] == [
        (Outcome.POSTED, None), (Outcome.REJECTED, Reason.PERIOD_CLOSED), (Outcome.REJECTED, Reason.ACCOUNT_UNKNOWN),
        (Outcome.REJECTED, Reason.ORG_UNKNOWN), (Outcome.REJECTED, Reason.ORG_UNKNOWN),
        (Outcome.REJECTED, Reason.UNBALANCED), (Outcome.REJECTED, Reason.SMART_CODE_INVALID),
        (Outcome.POSTED, None)]
    assert await admin.fetchval("SELECT count(*) FROM universal_transactions") == 2
    await store.set_period_closed(a, "2024-03")
    late = await store.post_batch([entry(a, "ok-1"), entry(a, "new-in-march")])
    assert [(r.outcome, r.reason) for r in late] == [(Outcome.DUPLICATE, None),
                                                     (Outcome.REJECTED, Reason.PERIOD_CLOSED)]
    await store.set_period_closed(a, "2024-03", closed=False)
    assert (await store.post_batch([entry(a, "new-in-march")]))[0].outcome is Outcome.POSTED


async def test_a_period_closed_behind_the_stores_back_is_refused_not_posted(store: LedgerStore, orgs, admin) -> None:
    # the store caches closed periods; one closed by another process meanwhile is caught by the
    # database's trigger, and the retry re-reads the periods and rejects the entry by name
    a, _ = orgs
    assert (await store.post_batch([entry(a, "warm-cache")]))[0].outcome is Outcome.POSTED
    await admin.execute("INSERT INTO posting_periods (organization_id, period, closed, changed_by)"
                        " VALUES ($1, '2024-03', true, 'elsewhere')", uuid.UUID(a))
    late = await store.post_batch([entry(a, "after-close"), entry(a, "april", when=datetime(2024, 4, 2, tzinfo=UTC))])
    assert [(r.outcome, r.reason) for r in late] == [(Outcome.REJECTED, Reason.PERIOD_CLOSED), (Outcome.POSTED, None)]
    assert await admin.fetchval("SELECT count(*) FROM universal_transactions WHERE event_id = 'after-close'") == 0


async def test_account_added_later_is_postable(store: LedgerStore, orgs) -> None:
    a, _ = orgs
    assert (await store.post_batch([entry(a, "x", account="1015")]))[0].reason is Reason.ACCOUNT_UNKNOWN
    assert await store.add_account(a, "1015", "Second bank", "asset", "DR")
    assert (await store.post_batch([entry(a, "x", account="1015")]))[0].outcome is Outcome.POSTED


async def test_concurrent_batches_post_an_event_once(store: LedgerStore, orgs, admin) -> None:
    a, b = orgs
    batches = [[entry(a, f"c{i}") for i in range(50)] + [entry(b, f"c{i}") for i in range(50)] for _ in range(4)]
    outcomes = await asyncio.gather(*(store.post_batch(batch) for batch in batches))
    posted = sum(r.outcome is Outcome.POSTED for results in outcomes for r in results)
    assert posted == 100
    assert await admin.fetchval("SELECT count(*) FROM universal_transactions") == 100


# ---------------------------------------------------------------- reads

async def test_trial_balance_and_account_ledger(store: LedgerStore, orgs, admin) -> None:
    a, b = orgs
    await store.post_batch([entry(a, "m1", "10.00"), entry(a, "m2", "2.50"), invoice(a, "inv"),
                            entry(a, "apr", "1.00", when=datetime(2024, 4, 2, tzinfo=UTC)), entry(b, "other", "99")])
    march = await trial_balance(admin, a, "2024-03")
    assert march["balanced"]
    usd = {row["account"]: row for row in march["currencies"]["USD"]["accounts"]}
    assert usd["6500"]["debit"] == "12.50" and usd["1010"]["credit"] == "12.50"
    assert march["currencies"]["EUR"]["total_debit"] == march["currencies"]["EUR"]["total_credit"] == "1050.00"
    whole = await trial_balance(admin, a, None)
    assert {row["account"]: row for row in whole["currencies"]["USD"]["accounts"]}["6500"]["debit"] == "13.50"
    rows = await account_ledger(admin, a, "6500")
    assert [r["event_id"] for r in rows] == ["m1", "m2", "apr"]
    assert [r["balance"] for r in rows] == ["10.00", "12.50", "13.50"]
    assert await account_ledger(admin, b, "6500") != rows


async def test_beancount_export_passes_bean_check(store: LedgerStore, orgs, admin, tmp_path: Path) -> None:
    a, b = orgs
    await store.post_batch([entry(a, "m1"), invoice(a, "inv"), entry(a, "jpy", "1500", currency="JPY"),
                            entry(b, "b1", "3.33"), entry(a, "q", description='quote " and \\ backslash')])
    for org, name in ((a, "a.beancount"), (None, "all.beancount")):
        text = await export_beancount(admin, org)
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        done = subprocess.run([str(BEAN_CHECK), str(path)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr + text
    assert "Assets:Bank-1010" in (await export_beancount(admin, a))


async def test_verify_ledger_reports_ok_then_a_tampered_entry(store: LedgerStore, orgs, admin) -> None:
    a, b = orgs
    await store.post_batch([entry(a, "v1"), entry(b, "v2"), invoice(a, "v3")])
    report = await verify_ledger(admin)
    assert report["ok"], report
    assert (report["entries"], report["lines"], report["unbalanced_entries"], report["duplicate_keys"]) == (3, 7, 0, 0)
    assert report["rls"]["enabled_on_all"] and report["rls"]["tenant_tables"] >= 10
    # one chained row per organisation per batch, listing its entries; the ledger matches it
    assert report["audit"]["rows"] == 2 and report["audit"]["chain_breaks"] == 0
    assert report["audit"]["entries_not_in_chain"] == report["audit"]["chain_entries_not_in_ledger"] == 0
    # a superuser switches the guards off and unbalances an entry behind the code's back
    await admin.execute("ALTER TABLE universal_transaction_lines DISABLE TRIGGER USER")
    await admin.execute("UPDATE universal_transaction_lines SET amount = amount + 1"
                        " WHERE line_number = 1 AND transaction_id = (SELECT id FROM universal_transactions"
                        " WHERE event_id = 'v1')")
    await admin.execute("ALTER TABLE universal_transactions NO FORCE ROW LEVEL SECURITY")
    report = await verify_ledger(admin)
    assert not report["ok"]
    assert report["unbalanced_entries"] == 1
    assert report["rls"]["unprotected"] == ["universal_transactions"]
    assert report["guards"]["touch_triggers"] is False


async def test_verify_finds_an_entry_changed_or_added_behind_the_audit_chain(store: LedgerStore, orgs,
                                                                            admin) -> None:
    a, b = orgs
    await store.post_batch([entry(a, "c1"), entry(a, "c2"), entry(b, "c3")])
    assert (await verify_ledger(admin))["ok"]
    # a superuser edits a posted entry's header (the append-only guard switched off): the lines
    # still balance and the chain is intact, but the entry no longer matches what the chain recorded
    await admin.execute("ALTER TABLE universal_transactions DISABLE TRIGGER USER")
    await admin.execute("UPDATE universal_transactions SET smart_code = 'HERA.FIN.EXP.TRAVEL.GROUND.v1'"
                        " WHERE event_id = 'c2'")
    report = await verify_ledger(admin)
    assert not report["ok"] and report["audit"]["entries_not_in_chain"] == 1, report
    assert report["audit"]["chain_breaks"] == 0 and report["unbalanced_entries"] == 0


async def test_entry_numbers_follow_input_order(store: LedgerStore, orgs, admin) -> None:
    a, b = orgs
    batch = [entry(a if i % 3 else b, f"order-{i}") for i in range(40)]   # ids (insert order) are shuffled
    await store.post_batch(batch)
    numbered = [r["event_id"] for r in await admin.fetch("SELECT event_id FROM universal_transactions"
                                                          " ORDER BY entry_number")]
    assert numbered == [e.event_id for e in batch]


async def test_concurrent_batches_sharing_keys_in_any_order_do_not_deadlock(ledger_url: str, orgs, admin) -> None:
    a, b = orgs
    one_try = await LedgerStore.connect(ledger_url, pool_size=4, timeout_seconds=10, attempts_max=1)
    try:
        await asyncio.gather(*(one_try.organization_exists(a) for _ in range(4)))   # open all 4 connections
        keys = [entry(a, f"s{i}") for i in range(750)] + [entry(b, f"s{i}") for i in range(750)]
        batches = [keys, keys[::-1], keys[::2] + keys[1::2], keys[1::2][::-1] + keys[::2]]
        outcomes = await asyncio.gather(*(one_try.post_batch(batch) for batch in batches))  # no retry allowed
    finally:
        await one_try.close()
    posted = sum(r.outcome is Outcome.POSTED for results in outcomes for r in results)
    assert posted == 1500
    report = await verify_ledger(admin)
    assert report["ok"] and report["entries"] == 1500 and report["audit"]["entries_not_in_chain"] == 0, report
    assert report["audit"]["rows"] <= 8  # at most one per organisation per batch


async def test_review_items_are_queued_in_one_batch_per_tenant_and_once(store: LedgerStore,
                                                                        orgs: tuple[str, str]) -> None:
    a, b = orgs
    items = [{"org_id": org, "event_id": f"r{i}", "payload": {"event": {"description": f"SHOP {i}"}},
              "suggested_smart_code": MEALS, "confidence": 0.5, "reason": "LOW_CONFIDENCE"}
             for i, org in enumerate([a, a, b])]
    assert await store.add_reviews(items) == 3
    assert await store.add_reviews(items[:2]) == 0  # already queued: left as they are
    assert [r["event_id"] for r in await store.open_reviews(a)] == ["r0", "r1"]
    assert [r["event_id"] for r in await store.open_reviews(b)] == ["r2"]
    item = await store.get_review(b, "r2")
    assert item is not None and item["suggested_smart_code"] == MEALS and item["status"] == "open"
    assert await store.get_review(a, "r2") is None  # another tenant's item is invisible


async def test_short_batches_chain_their_audit_rows_ahead_and_survive_a_moved_head(
        ledger_url: str, store: LedgerStore, orgs, admin, monkeypatch: pytest.MonkeyPatch) -> None:
    """A short batch's audit rows are chained on the heads the store last moved and appended by the
    statement that inserts its entries; a head moved by another writer, an organisation without a
    remembered head, or an entry already in the ledger each fall back to locking the heads first.
    Whatever the path, the chains verify and list every posted entry."""
    a, b = orgs
    locked: list[list[uuid.UUID]] = []
    lock_heads = store._lock_heads

    async def counting(conn: asyncpg.Connection, heads_of: list[uuid.UUID]) -> dict[uuid.UUID, tuple[int, str]]:
        locked.append(list(heads_of))
        return await lock_heads(conn, heads_of)

    monkeypatch.setattr(store, "_lock_heads", counting)
    other = await LedgerStore.connect(ledger_url, pool_size=2, timeout_seconds=10)   # a second worker
    try:
        assert [r.outcome for r in await store.post_batch([entry(a, "h1")])] == [Outcome.POSTED]
        assert len(locked) == 1                     # nothing remembered yet
        assert [r.outcome for r in await store.post_batch([entry(a, "h2"), entry(a, "h3")])] == [Outcome.POSTED] * 2
        assert len(locked) == 1                     # chained ahead, appended with the entries
        await other.post_batch([entry(a, "h4")])    # moves a's head behind this store's back
        assert [r.outcome for r in await store.post_batch([entry(a, "h5")])] == [Outcome.POSTED]
        assert len(locked) == 1                     # re-chained on the head the statement locked
        results = await store.post_batch([entry(a, "h5"), entry(a, "h6")])
        assert [r.outcome for r in results] == [Outcome.DUPLICATE, Outcome.POSTED]
        assert len(locked) == 2                     # not every entry went in: heads locked on their own
        await store.post_batch([entry(a, "h7"), entry(b, "h8")])
        assert len(locked) == 3                     # b's head not remembered
        await store.post_batch([entry(a, "h9"), entry(b, "h10")])
        assert len(locked) == 3
    finally:
        await other.close()
    report = await verify_ledger(admin)
    assert report["ok"], report
    assert report["entries"] == 10
    assert report["audit"]["rows"] == 9 and report["audit"]["chain_breaks"] == 0
    assert report["audit"]["entries_not_in_chain"] == report["audit"]["chain_entries_not_in_ledger"] == 0


@pytest.mark.parametrize("batch", [1, 150])   # a short batch (audit rows chained ahead) and a long one
async def test_staged_rows_read_back_exactly(store: LedgerStore, orgs, admin, batch: int) -> None:
    """Entries and lines travel to PostgreSQL as JSON rows: every value must read back as it was
    (exact decimals of any scale, microseconds and offsets, quotes, backslashes, newlines, non-ASCII
    text, absent values)."""
    from datetime import timedelta, timezone

    a, _ = orgs
    when = datetime(2024, 3, 5, 23, 59, 58, 123456, tzinfo=timezone(timedelta(hours=-5)))
    text = 'Café "Ñoño" \\ back\\slash\nnew line \u2014 \U0001F600 \'quoted\''
    entries = [JournalEntry(a, f"x{i}", MEALS, when, "USD",
                            (JournalLine("6500", "DR", Decimal("1234567.890123456789"), "USD", MEALS, description=text),
                             JournalLine("1010", "CR", Decimal("1234567.890123456789"), "USD", MEALS)),
                            "bank_feed", description=text, counterparty=None, reference=None)
               for i in range(batch)]
    assert {r.outcome for r in await store.post_batch(entries)} == {Outcome.POSTED}
    head = await admin.fetchrow("SELECT * FROM universal_transactions WHERE event_id = 'x0'")
    assert head["total_amount"] == Decimal("1234567.890123456789")
    assert head["occurred_at"] == when and head["transaction_date"] == when.date()   # the event's own day
    assert head["posting_period"] == "2024-03" and head["reference"] is None and head["counterparty"] is None
    lines = await admin.fetch("SELECT * FROM universal_transaction_lines WHERE transaction_id = $1 ORDER BY line_number",
                              head["id"])
    assert [(ln["line_number"], ln["side"], ln["amount"]) for ln in lines] == [
        (1, "DR", Decimal("1234567.890123456789")), (2, "CR", Decimal("1234567.890123456789"))]
    assert head["description"] == text and lines[0]["description"] == text and lines[1]["description"] is None
    assert await admin.fetchval("SELECT count(*) FROM universal_transactions") == batch
    assert (await verify_ledger(admin))["ok"]
