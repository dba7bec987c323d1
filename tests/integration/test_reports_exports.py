"""Reports and exports against a real PostgreSQL, through the library and through the ``hera``
command: normal-side balances, profit and loss, balance sheet, unknown organisations, one-line
errors, and the hledger journal that Debian's ``hledger`` accepts."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import shutil
import subprocess
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner

from pipeline.cli.app import main
from pipeline.domain.entries import JournalEntry, JournalLine
from pipeline.ledger.export_ledger import export_ledger
from pipeline.ledger.migrate import migrate
from pipeline.ledger.reports import UnknownOrganization, balance_sheet, profit_and_loss, trial_balance
from pipeline.ledger.store import LedgerStore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

MEALS = "HERA.FIN.EXP.MEALS.ENTERTAINMENT.v1"
INVOICE = "HERA.FIN.AR.INVOICE.ISSUED.v1"
DRAW = "HERA.FIN.EQUITY.OWNER.DRAW.v1"
MARCH = datetime(2024, 3, 5, 12, 0, tzinfo=UTC)
APRIL = datetime(2024, 4, 2, 9, 0, tzinfo=UTC)
HLEDGER = shutil.which("hledger")


def _entry(org: str, event_id: str, code: str, when: datetime, ccy: str, *legs: tuple[str, str, str],
           counterparty: str | None = None, description: str | None = None) -> JournalEntry:
    lines = tuple(JournalLine(acct, side, Decimal(amt), ccy, code) for acct, side, amt in legs)  # type: ignore[arg-type]
    return JournalEntry(org, event_id, code, when, ccy, lines, "erp", counterparty=counterparty,
                        description=description)


def books(org: str) -> list[JournalEntry]:
    return [
        _entry(org, "inv-1", INVOICE, MARCH, "EUR", ("1100", "DR", "1050.00"), ("4000", "CR", "1000.00"),
               ("2100", "CR", "50.00"), counterparty="Acme | Co; Ltd", description="Invoice ; 1\nline two"),
        _entry(org, "meal-1", MEALS, MARCH, "EUR", ("6500", "DR", "30.00"), ("1010", "CR", "30.00")),
        _entry(org, "meal-2", MEALS, APRIL, "EUR", ("6500", "DR", "20.00"), ("1010", "CR", "20.00")),
        _entry(org, "draw-1", DRAW, APRIL, "EUR", ("3100", "DR", "100.00"), ("1010", "CR", "100.00")),
        _entry(org, "jpy-1", MEALS, APRIL, "JPY", ("6500", "DR", "1500"), ("2300", "CR", "1500")),
    ]


async def _seed(url: str) -> tuple[str, str]:
    await migrate(url)
    store = await LedgerStore.connect(url, pool_size=2, timeout_seconds=10)
    try:
        a, b = str(uuid.uuid4()), str(uuid.uuid4())
        await store.ensure_organizations([a, b])
        other = _entry(b, "other", MEALS, MARCH, "USD", ("6500", "DR", "9.99"), ("1010", "CR", "9.99"))
        await store.post_batch([*books(a), other])
        return a, b
    finally:
        await store.close()


async def test_reports_on_the_normal_side(database_url: str) -> None:
    a, _ = await _seed(database_url)
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        tb = await trial_balance(conn, a, "2024-03")
        april = await profit_and_loss(conn, a, "2024-04", "2024-04")
        whole = await profit_and_loss(conn, a)
        bs = await balance_sheet(conn, a)
        with pytest.raises(UnknownOrganization):
            await trial_balance(conn, str(uuid.uuid4()))
    finally:
        await conn.close()
    eur = {r["account"]: r for r in tb["currencies"]["EUR"]["accounts"]}
    assert eur["2100"]["balance"] == "50.00" and eur["2100"]["net_debit"] == "-50.00"   # output VAT positive
    assert eur["4000"]["balance"] == "1000.00" and eur["1010"]["balance"] == "-30.00"
    assert tb["balanced"] and "JPY" not in tb["currencies"]                           # April is after March
    assert april["currencies"]["EUR"]["total_revenue"] == "0"
    assert april["currencies"]["EUR"]["net_income"] == "-20.00"
    assert whole["currencies"]["EUR"]["net_income"] == "950.00"
    assert whole["currencies"]["JPY"]["total_expenses"] == "1500"
    book = bs["currencies"]["EUR"]
    assert bs["balanced"] and book["total_assets"] == "900.00"                        # 1050 AR − 150 bank
    assert book["total_liabilities"] == "50.00" and book["total_equity"] == "850.00"  # 950 earnings − 100 drawings
    assert {"account": "3100", "name": "Drawings", "amount": "100.00", "contra": True} in book["equity"]


@pytest.mark.skipif(HLEDGER is None, reason="hledger is installed by `make setup`")
async def test_ledger_export_passes_hledger_check(database_url: str, tmp_path: Path) -> None:
    a, _ = await _seed(database_url)
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        texts = {"a.journal": await export_ledger(conn, a), "all.journal": await export_ledger(conn, None)}
    finally:
        await conn.close()
    for name, text in texts.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        for args in (["check"], ["check", "--strict"]):
            done = subprocess.run([HLEDGER, "-f", str(path), *args], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stdout + done.stderr + text
    done = subprocess.run([HLEDGER, "-f", str(tmp_path / "a.journal"), "balance", "--flat", "-O", "csv",
                           "Liabilities"], capture_output=True, text=True, timeout=60, check=True)
    assert "-50.00 EUR" in done.stdout                               # output VAT, as hledger sums it
    assert "Acme" in texts["a.journal"] and "; 1\n" not in texts["a.journal"]


def test_hledger_is_installed() -> None:
    """Not a skip that counts as a pass: ``make setup`` installs hledger, so it must be here."""
    assert HLEDGER is not None, "run `make setup` (installs Debian's hledger)"


def test_cli_reports_formats_and_errors(database_url: str) -> None:
    a, b = asyncio.run(_seed(database_url))
    runner = CliRunner()
    env = {"HERA_DATABASE_URL": database_url}

    def hera(*args: str) -> tuple[int, str, str]:
        res = runner.invoke(main, list(args), env=env)
        return res.exit_code, res.stdout, res.stderr

    code, out, _ = hera("report", "trial-balance", "--org", a, "--period", "2024-03", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and {r["account"]: r["balance"] for r in rows}["2100"] == "50.00"
    code, out, _ = hera("report", "trial-balance", "--org", a, "--format", "table")
    assert code == 0 and "Output VAT" in out and "balanced" in out and "{" not in out
    code, out, _ = hera("report", "pnl", "--org", a, "--format", "json")
    assert code == 0 and json.loads(out)["currencies"]["EUR"]["net_income"] == "950.00"
    code, out, _ = hera("report", "balance-sheet", "--org", a, "--format", "table")
    assert code == 0 and "Drawings (contra)" in out and "NOT BALANCED" not in out
    code, out, _ = hera("report", "ledger", "--org", a, "--account", "6500", "--format", "csv")
    assert code == 0 and out.splitlines()[0].startswith("date,event_id")
    code, out, _ = hera("org", "list", "--format", "csv")
    assert code == 0 and set(out.split()[1:]) == {a, b}

    unknown = str(uuid.uuid4())
    code, out, err = hera("report", "trial-balance", "--org", unknown)
    assert code == 1 and out == "" and err.count("\n") == 1 and f"organisation {unknown} is not registered" in err
    code, _, err = hera("org", "set", a, "--settings", '{"rate_limit_per_minut": 5}')
    assert code == 2 and "rate_limit_per_minut" in err and err.count("\n") == 1
    code, _, err = hera("org", "set", a, "--settings", '{"thresholds": {"HERA.FIN.NOPE.NOPE.NOPE.v1": "0.9"}}')
    assert code == 2 and err.startswith("hera: --settings:")
    code, out, _ = hera("org", "set", a, "--settings", '{"rate_limit_per_minute": 60}')
    assert code == 0 and json.loads(out)["settings"]["rate_limit_per_minute"] == 60
    code, _, err = hera("org", "set", unknown, "--settings", "{}")
    assert code == 1 and "not registered" in err
    code, _, err = hera("review", "decide", "--org", a, "--event", "nope", "--approve")
    assert code == 1 and "no review item" in err
    code, out, _ = hera("export", "ledger", "--org", a)
    assert code == 0 and "account Assets:" in out


def test_cli_unmigrated_database_says_migrate(database_url: str) -> None:
    res = CliRunner().invoke(main, ["org", "list"], env={"HERA_DATABASE_URL": database_url})
    assert res.exit_code == 3, res.output
    assert res.stderr.count("\n") == 1 and "run `hera db migrate`" in res.stderr


def test_review_decide_sends_then_prints_the_outcome(database_url: str, kafka_bootstrap: str,
                                                     topic_prefix: str) -> None:
    """The worker's part (resolving the item) is played by a thread once the decision is on the topic."""
    import threading

    from aiokafka import AIOKafkaConsumer

    a, _ = asyncio.run(_seed(database_url))

    async def queue() -> None:
        store = await LedgerStore.connect(database_url, pool_size=1, timeout_seconds=10)
        try:
            await store.add_review(a, "rev-1", {"event": {"description": "AMZN MKTP"}},
                                   suggested_smart_code=MEALS, confidence=0.6, reason="LOW_CONFIDENCE")
        finally:
            await store.close()

    async def worker() -> dict:
        consumer = AIOKafkaConsumer(f"{topic_prefix}hera.review.decisions", bootstrap_servers=kafka_bootstrap,
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            msg = await asyncio.wait_for(consumer.getone(), timeout=30)
        finally:
            await consumer.stop()
        decision = json.loads(msg.value)
        store = await LedgerStore.connect(database_url, pool_size=1, timeout_seconds=10)
        try:
            await store.resolve_review(a, decision["event_id"], status="corrected", smart_code=decision["smart_code"])
        finally:
            await store.close()
        return {"decision": decision, "headers": dict(msg.headers)}

    async def topic() -> None:
        from pipeline.brokers import ensure_topics
        await ensure_topics(kafka_bootstrap, [f"{topic_prefix}hera.review.decisions"], partitions=1)

    asyncio.run(queue())
    asyncio.run(topic())
    seen: dict = {}
    thread = threading.Thread(target=lambda: seen.update(asyncio.run(worker())))
    thread.start()
    res = CliRunner().invoke(main, ["review", "decide", "--org", a, "--event", "rev-1", "--correct",
                                    "HERA.FIN.EXP.OFFICE.SUPPLIES.v1", "--reviewer", "ana", "--timeout", "30"],
                             env={"HERA_DATABASE_URL": database_url, "HERA_KAFKA_BOOTSTRAP": kafka_bootstrap,
                                  "HERA_TOPIC_PREFIX": topic_prefix})
    thread.join(60)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["outcome"] == "corrected" and out["smart_code"] == "HERA.FIN.EXP.OFFICE.SUPPLIES.v1"
    assert seen["decision"]["reviewer"] == "ana" and seen["headers"]["hera-schema"] == b"decision/v1"
    again = CliRunner().invoke(main, ["review", "decide", "--org", a, "--event", "rev-1", "--approve"],
                               env={"HERA_DATABASE_URL": database_url})
    assert again.exit_code == 1 and "already corrected" in again.stderr


def test_cli_verify_exit_codes(database_url: str) -> None:
    asyncio.run(_seed(database_url))
    env = {"HERA_DATABASE_URL": database_url}
    ok = CliRunner().invoke(main, ["verify", "--no-topics"], env=env)
    assert ok.exit_code == 0 and json.loads(ok.stdout)["ok"] is True and ok.stderr == ""

    async def tamper() -> None:
        conn = await asyncpg.connect(database_url, timeout=10)
        try:
            await conn.execute("ALTER TABLE universal_transaction_lines DISABLE TRIGGER USER")
            await conn.execute("UPDATE universal_transaction_lines SET amount = amount + 1 WHERE line_number = 1"
                               " AND transaction_id = (SELECT id FROM universal_transactions WHERE event_id = 'meal-1')")
        finally:
            await conn.close()

    asyncio.run(tamper())
    bad = CliRunner().invoke(main, ["verify", "--no-topics"], env=env)
    assert bad.exit_code == 1 and json.loads(bad.stdout)["unbalanced_entries"] == 1
    assert bad.stderr.count("\n") == 1 and "docs/invariants.md" in bad.stderr
