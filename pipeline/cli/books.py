"""``hera`` commands on the books: org, report, export. Each is a thin shell over ``pipeline.ledger``.

Reports and lists take ``--format table|csv|json`` (``pipeline.output``); balances are on each
account's normal side (docs/cli.md). An organisation that is not registered is an error (exit 1),
never an empty report; a malformed id is bad usage (exit 2).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

from pipeline.cli.app import ORG_ID, emit, main, with_conn, with_store
from pipeline.cli.errors import BadUsage, CheckFailed
from pipeline.config import Settings
from pipeline.output import Report, format_option, render


def unknown_org(org_id: str) -> CheckFailed:
    return CheckFailed(f"organisation {org_id} is not registered",
                       "see `hera org list`, or register it with `hera org add ID`")


def _run_report(settings: Settings, fn: Any, org_id: str) -> Any:
    from pipeline.ledger.reports import UnknownOrganization
    try:
        return asyncio.run(with_conn(settings, fn))
    except UnknownOrganization:
        raise unknown_org(org_id) from None
    except LookupError as exc:
        raise CheckFailed(str(exc), "see the chart with `hera report trial-balance --org ID`") from None
    except ValueError as exc:
        raise BadUsage(str(exc), "periods are YYYY-MM") from None


# ---------------------------------------------------------------- org

def parse_org_settings(value: str) -> dict[str, Any]:
    """``--settings`` JSON checked against ``OrgSettingsV1`` and the catalog (unknown keys refused)."""
    from pydantic import ValidationError

    from pipeline.domain.catalog import load_catalog
    from pipeline.domain.errors import CatalogError
    from schemas.org_settings import OrgSettingsV1

    try:
        data = json.loads(value)
    except ValueError as exc:
        raise BadUsage(f"--settings is not JSON ({exc})", "pass a JSON object, e.g. '{\"rate_limit_per_minute\": 60}'") \
            from None
    try:
        checked = OrgSettingsV1.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        allowed = ", ".join(OrgSettingsV1.model_fields)
        raise BadUsage(f"--settings: {where}: {first['msg']}", f"known keys: {allowed} (docs/cli.md)") from None
    try:
        load_catalog().with_overrides(thresholds=checked.thresholds, accounts=checked.accounts,
                                      amount_caps=checked.amount_caps)
    except CatalogError as exc:
        raise BadUsage(f"--settings: {exc}", "use smart codes and accounts of docs/catalog.md") from None
    return checked.model_dump(exclude_none=True)


@main.group()
def org() -> None:
    """Register organisations and change their settings."""


@org.command("add")
@click.argument("org_id", type=ORG_ID)
@click.option("--name", default=None)
@click.option("--settings", "settings_json", default="{}",
              help="JSON object: rate_limit_per_minute, rate_limit_burst, thresholds, amount_caps, accounts")
@click.pass_obj
def org_add(settings: Settings, org_id: str, name: str | None, settings_json: str) -> None:
    """Register ORG_ID (a UUID) and seed its chart of accounts."""
    extra = parse_org_settings(settings_json)
    created = asyncio.run(with_store(settings, lambda s: s.ensure_organization(org_id, name, settings=extra)))
    emit({"organization_id": org_id, "created": created})


@org.command("list")
@format_option()
@click.pass_obj
def org_list(settings: Settings, fmt: str) -> None:
    """List registered organisations."""
    orgs = sorted(asyncio.run(with_store(settings, lambda s: s.known_organizations())))
    render(Report("Organisations", ["organization_id"], [[o] for o in orgs], document={"organizations": orgs}), fmt)


@org.command("set")
@click.argument("org_id", type=ORG_ID)
@click.option("--settings", "settings_json", default=None,
              help="JSON object merged into the org's settings (unknown keys are refused)")
@click.option("--close-period", multiple=True, help="YYYY-MM to close")
@click.option("--open-period", multiple=True, help="YYYY-MM to reopen")
@click.pass_obj
def org_set(settings: Settings, org_id: str, settings_json: str | None, close_period: tuple[str, ...],
            open_period: tuple[str, ...]) -> None:
    """Change an organisation's settings (rate limit, thresholds, account overrides) and closed periods."""
    from pipeline.ledger.errors import OrganizationUnknownError
    from pipeline.ledger.reports import check_period

    checked = parse_org_settings(settings_json) if settings_json is not None else None
    for period in (*close_period, *open_period):
        try:
            check_period(period)
        except ValueError as exc:
            raise BadUsage(str(exc), "periods are YYYY-MM") from None

    async def change(store: Any) -> Any:
        if org_id not in await store.known_organizations():
            raise unknown_org(org_id)
        result = await store.set_org_settings(org_id, checked) if checked is not None else None
        for period in close_period:
            await store.set_period_closed(org_id, period, True)
        for period in open_period:
            await store.set_period_closed(org_id, period, False)
        return result
    try:
        result = asyncio.run(with_store(settings, change))
    except OrganizationUnknownError:
        raise unknown_org(org_id) from None
    emit({"organization_id": org_id, "settings": result, "closed": list(close_period), "opened": list(open_period)})


# ---------------------------------------------------------------- reports

@main.group()
def report() -> None:
    """Ledger reports: trial balance, profit and loss, balance sheet, an account's ledger."""


@report.command("trial-balance")
@click.option("--org", "org_id", required=True, type=ORG_ID)
@click.option("--period", default=None, help="YYYY-MM (default: all time)")
@format_option()
@click.pass_obj
def report_trial_balance(settings: Settings, org_id: str, period: str | None, fmt: str) -> None:
    """Trial balance of one organisation as at the end of a period; balances on each account's normal side."""
    from pipeline.ledger.reports import trial_balance
    tb = _run_report(settings, lambda c: trial_balance(c, org_id, period), org_id)
    rows = [[ccy, a["account"], a["name"], a["normal_side"], a["debit"], a["credit"], a["balance"]]
            for ccy, book in tb["currencies"].items() for a in book["accounts"]]
    footer = [f"{ccy}: total debit {b['total_debit']}, total credit {b['total_credit']}, "
              f"{'balanced' if b['balanced'] else 'NOT BALANCED'}" for ccy, b in tb["currencies"].items()]
    render(Report(f"Trial balance {org_id} as at {period or 'today'}",
                  ["currency", "account", "name", "normal side", "debit", "credit", "balance"], rows, tb,
                  right=frozenset({"debit", "credit", "balance"}), footer=footer), fmt)


@report.command("pnl")
@click.option("--org", "org_id", required=True, type=ORG_ID)
@click.option("--from", "from_period", default=None, help="first period YYYY-MM (default: the beginning)")
@click.option("--to", "to_period", default=None, help="last period YYYY-MM (default: now)")
@format_option()
@click.pass_obj
def report_pnl(settings: Settings, org_id: str, from_period: str | None, to_period: str | None, fmt: str) -> None:
    """Profit and loss: revenue, cost of sales, expenses, gross profit and net income per currency."""
    from pipeline.ledger.reports import PNL_SECTIONS, profit_and_loss
    pnl = _run_report(settings, lambda c: profit_and_loss(c, org_id, from_period, to_period), org_id)
    rows: list[list[Any]] = []
    for ccy, book in pnl["currencies"].items():
        for section, _ in PNL_SECTIONS:
            rows += [[ccy, section, a["account"], a["name"], a["amount"]] for a in book[section]]
            rows.append([ccy, section, "", f"total {section}", book[f"total_{section}"]])
        rows.append([ccy, "", "", "gross profit", book["gross_profit"]])
        rows.append([ccy, "", "", "net income", book["net_income"]])
    render(Report(f"Profit and loss {org_id}, {from_period or 'beginning'} to {to_period or 'now'}",
                  ["currency", "section", "account", "name", "amount"], rows, pnl, right=frozenset({"amount"})), fmt)


@report.command("balance-sheet")
@click.option("--org", "org_id", required=True, type=ORG_ID)
@click.option("--period", default=None, help="as at the end of YYYY-MM (default: now)")
@format_option()
@click.pass_obj
def report_balance_sheet(settings: Settings, org_id: str, period: str | None, fmt: str) -> None:
    """Balance sheet: assets = liabilities + equity (with current earnings) per currency."""
    from pipeline.ledger.reports import BS_SECTIONS, balance_sheet
    bs = _run_report(settings, lambda c: balance_sheet(c, org_id, period), org_id)
    rows: list[list[Any]] = []
    for ccy, book in bs["currencies"].items():
        for section, _ in BS_SECTIONS:
            rows += [[ccy, section, a["account"] or "", a["name"] + (" (contra)" if a["contra"] else ""),
                      a["amount"]] for a in book[section]]
            rows.append([ccy, section, "", f"total {section}", book[f"total_{section}"]])
    footer = [f"{ccy}: assets {b['total_assets']} = liabilities {b['total_liabilities']} + equity "
              f"{b['total_equity']}: {'balanced' if b['balanced'] else 'NOT BALANCED'}"
              for ccy, b in bs["currencies"].items()]
    render(Report(f"Balance sheet {org_id} as at {period or 'now'}", ["currency", "section", "account", "name",
                                                                        "amount"], rows, bs,
                  right=frozenset({"amount"}), footer=footer), fmt)


@report.command("ledger")
@click.option("--org", "org_id", required=True, type=ORG_ID)
@click.option("--account", required=True)
@format_option()
@click.pass_obj
def report_ledger(settings: Settings, org_id: str, account: str, fmt: str) -> None:
    """Every line posted to one account, with a running balance on its normal side."""
    from pipeline.ledger.reports import account_ledger
    lines = _run_report(settings, lambda c: account_ledger(c, org_id, account), org_id)
    cols = ["date", "event_id", "smart_code", "description", "side", "amount", "currency", "balance"]
    render(Report(f"Ledger of account {account}, organisation {org_id}", cols,
                  [[ln[c] for c in cols] for ln in lines],
                  {"organization_id": org_id, "account": account, "lines": lines},
                  right=frozenset({"amount", "balance"})), fmt)


# ---------------------------------------------------------------- exports

@main.group()
def export() -> None:
    """Export the books."""


@export.command("beancount")
@click.option("--org", "org_id", default=None, type=ORG_ID, help="one organisation (default: all)")
@click.pass_obj
def export_beancount_cmd(settings: Settings, org_id: str | None) -> None:
    """Books in beancount format (bean-check accepts them)."""
    from pipeline.ledger.export_beancount import export_beancount
    click.echo(_export(settings, org_id, export_beancount), nl=False)


@export.command("ledger")
@click.option("--org", "org_id", default=None, type=ORG_ID, help="one organisation (default: all)")
@click.pass_obj
def export_ledger_cmd(settings: Settings, org_id: str | None) -> None:
    """Books in the ledger/hledger journal format (`hledger check` accepts them)."""
    from pipeline.ledger.export_ledger import export_ledger
    click.echo(_export(settings, org_id, export_ledger), nl=False)


def _export(settings: Settings, org_id: str | None, fn: Any) -> str:
    async def run(conn: Any) -> str:
        if org_id is not None and not await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM core_organizations WHERE id = $1::uuid)", org_id):
            raise unknown_org(org_id)
        return await fn(conn, org_id)
    return asyncio.run(with_conn(settings, run))
