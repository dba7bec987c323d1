"""The ``hera`` command fails in one line with a documented exit code (docs/cli.md), and prints
reports as table, CSV or JSON from one source. No broker or database: the services named here do
not exist (port 1 refuses), which is the point."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner

from pipeline.cli.app import main
from pipeline.cli.errors import EXIT_CHECK_FAILED, EXIT_UNREACHABLE, EXIT_USAGE, describe
from pipeline.ledger.errors import LedgerError
from pipeline.ledger.reports import build_balance_sheet, build_pnl, build_trial_balance
from pipeline.output import Report, render

ORG = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
REFUSING_DSN = "postgresql://hera:s3cret@127.0.0.1:1/hera"


def hera(*args: str, env: dict[str, str] | None = None, home: Path | None = None):
    full = {"HERA_HOME": str(home) if home else "/nonexistent-hera-home", **(env or {})}
    return CliRunner().invoke(main, list(args), env=full)


def one_line(text: str) -> str:
    assert text.count("\n") == 1 and text.startswith("hera: "), text
    return text


def test_non_uuid_org_is_bad_usage() -> None:
    res = hera("report", "trial-balance", "--org", "acme")
    assert res.exit_code == EXIT_USAGE
    assert "'acme' is not an organisation id" in one_line(res.stderr) and res.stdout == ""


def test_unknown_option_is_bad_usage_in_one_line() -> None:
    res = hera("report", "pnl", "--org", ORG, "--colour")
    assert res.exit_code == EXIT_USAGE and "hera report pnl --help" in one_line(res.stderr)


def test_no_services_configured_is_unreachable() -> None:
    res = hera("org", "list")
    assert res.exit_code == EXIT_UNREACHABLE
    assert "run `hera services up`" in one_line(res.stderr)


def test_refused_database_is_unreachable_with_the_password_masked() -> None:
    res = hera("report", "trial-balance", "--org", ORG, env={"HERA_DATABASE_URL": REFUSING_DSN})
    assert res.exit_code == EXIT_UNREACHABLE
    line = one_line(res.stderr)
    assert "cannot connect to PostgreSQL at postgresql://hera:***@127.0.0.1:1/hera" in line
    assert "s3cret" not in res.output


def test_refused_kafka_is_unreachable_in_one_line() -> None:
    res = hera("replay", "--from-offset", "0", env={"HERA_KAFKA_BOOTSTRAP": "127.0.0.1:1"})
    assert res.exit_code == EXIT_UNREACHABLE
    assert "cannot connect to Kafka at 127.0.0.1:1" in one_line(res.stderr)


def test_debug_shows_the_traceback() -> None:
    res = hera("--debug", "org", "list", env={"HERA_DATABASE_URL": REFUSING_DSN})
    assert res.exit_code == EXIT_UNREACHABLE and "Traceback" in res.stderr
    assert res.stderr.rstrip().splitlines()[-1].startswith("hera: cannot connect to PostgreSQL")


def test_review_decide_refuses_an_unknown_code_before_sending() -> None:
    res = hera("review", "decide", "--org", ORG, "--event", "e1", "--correct", "HERA.FIN.NOPE.NOPE.NOPE.v1")
    assert res.exit_code == EXIT_USAGE and "not a smart code of the catalog" in one_line(res.stderr)
    res = hera("review", "decide", "--org", ORG, "--event", "e1")
    assert res.exit_code == EXIT_USAGE and "exactly one of --approve or --correct" in one_line(res.stderr)


@pytest.mark.parametrize("settings_json", ['{"rate_limt": 5}', "[1]", "{nope", '{"rate_limit_per_minute": 0}',
                                           '{"accounts": {"9999": "9999"}}'])
def test_org_settings_are_checked_before_any_connection(settings_json: str) -> None:
    res = hera("org", "add", ORG, "--settings", settings_json, env={"HERA_DATABASE_URL": REFUSING_DSN})
    assert res.exit_code == EXIT_USAGE and "--settings" in one_line(res.stderr)


@pytest.mark.parametrize("command", ["demo", "bench"])
def test_demo_and_bench_refuse_external_services_without_yes(command: str) -> None:
    res = hera(command, env={"HERA_DATABASE_URL": REFUSING_DSN})
    assert res.exit_code == EXIT_USAGE
    line = one_line(res.stderr)
    assert "pass --yes" in line and "hera:***@" in line and "s3cret" not in line


def test_errors_map_by_class_and_sqlstate() -> None:
    assert describe(asyncpg.UndefinedTableError('relation "core_organizations" does not exist')).todo \
        == "run `hera db migrate`"
    wrapped = LedgerError("database error 42P01")
    wrapped.__cause__ = asyncpg.UndefinedTableError("relation does not exist")
    assert describe(wrapped).exit_code == EXIT_UNREACHABLE and "hera db migrate" in describe(wrapped).todo
    assert describe(ConnectionRefusedError(111, "refused")).exit_code == EXIT_UNREACHABLE
    assert describe(asyncpg.InvalidPasswordError("bad password")).exit_code == EXIT_UNREACHABLE
    bug = describe(KeyError("x"))
    assert bug.exit_code == EXIT_CHECK_FAILED and "--debug" in bug.todo


def test_schema_command_prints_each_schema() -> None:
    res = hera("schema")
    assert res.exit_code == 0 and json.loads(res.stdout)["posted"] == "posted/v2"
    res = hera("schema", "raw")
    assert json.loads(res.stdout)["properties"]["amount"]["type"] == "string"
    assert hera("schema", "nope").exit_code == EXIT_USAGE


# ---------------------------------------------------------------- reports, pure

def row(account: str, name: str, type_: str, side: str, debit: str, credit: str, ccy: str = "USD") -> dict:
    return {"account": account, "name": name, "type": type_, "normal_side": side, "currency": ccy,
            "debit": Decimal(debit), "credit": Decimal(credit), "period_debit": Decimal(debit),
            "period_credit": Decimal(credit)}


ROWS = [row("1020", "Card clearing", "asset", "DR", "105.00", "0"),
        row("4100", "Services revenue", "revenue", "CR", "0", "95.24"),
        row("2100", "Output VAT", "liability", "CR", "0", "4.76"),
        row("2500", "Tips payable", "liability", "CR", "0", "5.00")]


def test_balances_are_on_the_normal_side() -> None:
    tb = build_trial_balance(ORG, None, ROWS)
    accounts = {a["account"]: a for a in tb["currencies"]["USD"]["accounts"]}
    assert accounts["2100"]["balance"] == "4.76" and accounts["2100"]["net_debit"] == "-4.76"
    assert accounts["1020"]["balance"] == "105.00" and tb["balanced"]
    pnl = build_pnl(ROWS)["currencies"]["USD"]
    assert pnl["total_revenue"] == "95.24" and pnl["net_income"] == "95.24"
    bs = build_balance_sheet(ROWS)
    usd = bs["currencies"]["USD"]
    assert bs["balanced"] and usd["total_assets"] == "105.00" and usd["total_liabilities"] == "9.76"
    assert usd["equity"] == [{"account": None, "name": "Current earnings", "amount": "95.24", "contra": False}]


def test_one_report_three_formats(capsys: pytest.CaptureFixture[str]) -> None:
    report = Report("Trial balance", ["account", "name", "balance"], [["2100", "Output VAT, UAE", "4.76"]],
                    {"ok": True}, right=frozenset({"balance"}), footer=["USD: balanced"])
    render(report, "json")
    assert json.loads(capsys.readouterr().out) == {"ok": True}
    render(report, "csv")
    assert list(csv.reader(io.StringIO(capsys.readouterr().out))) == [
        ["account", "name", "balance"], ["2100", "Output VAT, UAE", "4.76"]]
    render(report, "table")
    table = capsys.readouterr().out
    assert "Output VAT, UAE" in table and "4.76" in table and "USD: balanced" in table
