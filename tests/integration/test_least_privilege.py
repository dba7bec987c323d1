"""Least privilege against a real PostgreSQL: the worker's own login (hera_worker) runs the ledger
store, yet cannot read another organisation's rows, even after RESET ROLE; cannot move an audit
chain head by hand; cannot become the owner; and sees only its own organisations' clients."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest

from pipeline.domain.entries import JournalEntry, JournalLine
from pipeline.ledger.audit import verify_audit
from pipeline.ledger.migrate import migrate
from pipeline.ledger.roles import WORKER_ROLE, set_worker_password, with_login
from pipeline.ledger.store import LedgerStore
from pipeline.ledger.tenancy import act_for
from pipeline.ledger.verify import verify_ledger

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
KEY = b"q" * 32
MEALS = "HERA.FIN.EXP.MEALS.ENTERTAINMENT.v1"


def meal(org: str, event_id: str) -> JournalEntry:
    amount = Decimal("12.50")
    return JournalEntry(org, event_id, MEALS, datetime(2026, 3, 5, 12, tzinfo=UTC), "USD",
                        (JournalLine("6500", "DR", amount, "USD", MEALS), JournalLine("1010", "CR", amount, "USD", MEALS)),
                        "bank_feed")


@pytest.fixture()
async def worker(database_url: str) -> AsyncIterator[tuple[str, asyncpg.Connection, str, str]]:
    """(worker DSN, admin connection, org A, org B) with one entry each, posted by the worker's login."""
    await migrate(database_url)
    password = uuid.uuid4().hex
    await set_worker_password(database_url, password)
    worker_dsn = with_login(database_url, WORKER_ROLE, password)
    store = await LedgerStore.connect(worker_dsn, pool_size=2, timeout_seconds=10, audit_key=KEY)
    admin = await asyncpg.connect(database_url, timeout=10)
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        assert await store.ensure_organizations([a, b]) == {a, b}
        posted = await store.post_batch([meal(a, "a-1"), meal(b, "b-1")])
        assert [r.outcome for r in posted] == ["posted", "posted"]
        assert await store.known_organizations() == {a, b}    # ids only, through a function
        yield worker_dsn, admin, a, b
    finally:
        await store.close()
        await admin.close()


async def test_the_worker_login_has_no_way_around_row_level_security(worker) -> None:
    worker_dsn, admin, _, _ = worker
    role = await admin.fetchrow("SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = $1",
                                WORKER_ROLE)
    assert (role["rolsuper"], role["rolbypassrls"], role["rolcanlogin"]) == (False, False, True)
    assert (await verify_ledger(admin, key=KEY))["guards"]["worker_role_least_privilege"]
    conn = await asyncpg.connect(worker_dsn, timeout=10)
    try:
        assert await conn.fetchval("SELECT current_user") == WORKER_ROLE
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("SET ROLE postgres")
    finally:
        await conn.close()


async def test_the_worker_cannot_read_another_orgs_rows_even_after_reset_role(worker) -> None:
    worker_dsn, admin, a, b = worker
    assert {str(r[0]) for r in await admin.fetch("SELECT organization_id FROM universal_transactions")} == {a, b}
    conn = await asyncpg.connect(worker_dsn, timeout=10)
    try:
        async with conn.transaction():
            await act_for(conn, [a])
            assert await conn.fetchval("SELECT current_user") == "hera_app"
            await conn.execute("RESET ROLE")    # back to the login role itself
            assert await conn.fetchval("SELECT current_user") == WORKER_ROLE
            for table in ("universal_transactions", "universal_transaction_lines", "core_entities", "audit_log"):
                orgs = {str(r[0]) for r in await conn.fetch(f"SELECT DISTINCT organization_id FROM {table}")}
                assert orgs == {a}, table
            assert {str(r[0]) for r in await conn.fetch("SELECT id FROM core_organizations")} == {a}
        # acting for nobody: nothing at all, in any role
        assert await conn.fetchval("SELECT count(*) FROM universal_transactions") == 0
        assert await conn.fetchval("SELECT count(*) FROM core_organizations") == 0
    finally:
        await conn.close()


async def test_the_app_role_cannot_move_an_audit_chain_head(worker) -> None:
    worker_dsn, admin, a, _ = worker
    conn = await asyncpg.connect(worker_dsn, timeout=10)
    try:
        for sql in ("UPDATE audit_heads SET seq = 0", "DELETE FROM audit_heads",
                    f"INSERT INTO audit_heads VALUES ('{uuid.uuid4()}', 0, repeat('0', 64))"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with conn.transaction():
                    await act_for(conn, [a])
                    await conn.execute(sql)
    finally:
        await conn.close()
    assert (await verify_audit(admin, key=KEY))["ok"]


async def test_core_clients_are_visible_only_to_their_organisations(worker) -> None:
    worker_dsn, admin, a, b = worker
    for org, name in ((a, "client of A"), (b, "client of B")):
        client = await admin.fetchval("INSERT INTO core_clients (client_name, created_by) VALUES ($1, 'test')"
                                      " RETURNING id", name)
        await admin.execute("UPDATE core_organizations SET client_id = $1 WHERE id = $2", client, uuid.UUID(org))
    conn = await asyncpg.connect(worker_dsn, timeout=10)
    try:
        async with conn.transaction():
            await act_for(conn, [a])
            assert [r[0] for r in await conn.fetch("SELECT client_name FROM core_clients")] == ["client of A"]
    finally:
        await conn.close()
    report = await verify_ledger(admin, key=KEY)
    assert report["rls"]["enabled_on_all"] and "core_clients" not in report["rls"]["unprotected"]
    await admin.execute("ALTER TABLE core_clients NO FORCE ROW LEVEL SECURITY")
    assert (await verify_ledger(admin, key=KEY))["rls"]["unprotected"] == ["core_clients"]


async def test_the_embedded_server_demands_scram_passwords(pg_server: str, services_home) -> None:
    """The test session's server is started by the same code as `hera services up`."""
    import os
    import stat

    from pipeline.devtools.services import superuser_password_file

    if os.environ.get("HERA_TEST_DATABASE_URL"):
        pytest.fail("this test checks the embedded server; unset HERA_TEST_DATABASE_URL")
    admin = await asyncpg.connect(pg_server, timeout=10)
    try:
        methods = {r[0] for r in await admin.fetch("SELECT auth_method FROM pg_hba_file_rules")}
    finally:
        await admin.close()
    assert methods == {"scram-sha-256"}
    password_file = superuser_password_file(services_home / "postgres" / "data")
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    without = pg_server.replace(f":{password_file.read_text().strip()}@", "@")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(without, timeout=10)


async def test_the_outlier_rule_reads_an_orgs_history_as_the_worker(worker) -> None:
    from pipeline.domain.outcomes import Reason
    from pipeline.domain.outliers import HISTORY_ENTRIES_MIN, outlier_for

    worker_dsn, _, a, b = worker
    store = await LedgerStore.connect(worker_dsn, pool_size=1, timeout_seconds=10, audit_key=KEY)
    try:
        await store.post_batch([meal(a, f"h-{i}") for i in range(HISTORY_ENTRIES_MIN)])
        loaded = await store.amount_histories([a, b])
        history = loaded[a][MEALS]
        assert history.entries == HISTORY_ENTRIES_MIN + 1 and history.p99_total == Decimal("12.50")
        histories = {(org, code): h for org, codes in loaded.items() for code, h in codes.items()}
        assert outlier_for(histories, a, MEALS, Decimal("1000.00")) is Reason.AMOUNT_OUTLIER
        assert outlier_for(histories, a, MEALS, Decimal("100.00")) is None
        assert outlier_for(histories, b, MEALS, Decimal("1000.00")) is None   # one entry: no history yet
    finally:
        await store.close()
