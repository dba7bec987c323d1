"""Read models of one organisation's books: trial balance, profit and loss, balance sheet, and an
account's ledger.

Every query runs in a read-only transaction acting for the organisation (row-level security
applies), so a caller only ever sees the books it asked for. Amounts are strings (exact
decimals). Balances are shown on each account's **normal side**: a credit-normal account (output
VAT, revenue) with more credits than debits has a positive balance; a negative balance means the
account is on its unusual side. ``net_debit`` keeps the signed debit − credit.

An organisation that is not registered is an error (``UnknownOrganization``), never an empty,
"balanced" report.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import asyncpg

from pipeline.domain.errors import HeraError
from pipeline.ledger.privacy import reveal_rows
from pipeline.ledger.tenancy import tenant_transaction

PERIOD_RE = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
LEDGER_ROWS_MAX = 100_000
ZERO = Decimal(0)
PNL_SECTIONS = (("revenue", "revenue"), ("cost", "cost"), ("expenses", "expense"))
BS_SECTIONS = (("assets", "asset"), ("liabilities", "liability"), ("equity", "equity"))
INCOME_TYPES = frozenset({"revenue", "cost", "expense"})


class UnknownOrganization(LookupError, HeraError):
    """The organisation id is well-formed but not registered."""


# Per account and currency: cumulative through ``$2`` (all time when NULL), and the activity
# from ``$3`` through ``$2`` (the whole range when ``$3`` is NULL).
_BALANCES = """
SELECT a.entity_code AS account, a.entity_name AS name, a.metadata->>'account_type' AS type,
       a.metadata->>'normal_side' AS normal_side, l.currency,
       sum(l.amount) FILTER (WHERE l.side = 'DR') AS debit,
       sum(l.amount) FILTER (WHERE l.side = 'CR') AS credit,
       sum(l.amount) FILTER (WHERE l.side = 'DR' AND ($3::text IS NULL OR h.posting_period >= $3)) AS period_debit,
       sum(l.amount) FILTER (WHERE l.side = 'CR' AND ($3::text IS NULL OR h.posting_period >= $3)) AS period_credit
  FROM universal_transaction_lines l
  JOIN universal_transactions h ON h.id = l.transaction_id
  JOIN core_entities a ON a.id = l.account_id
 WHERE h.organization_id = $1 AND ($2::text IS NULL OR h.posting_period <= $2)
 GROUP BY a.entity_code, a.entity_name, a.metadata, l.currency
 ORDER BY l.currency, a.entity_code
"""

_ACCOUNT_LEDGER = """
SELECT h.id::text AS entry_id, h.event_id, h.transaction_date, h.posting_period, h.smart_code,
       coalesce(l.description, h.description) AS description, h.counterparty, l.line_number, l.side,
       l.amount, l.currency, a.metadata->>'normal_side' AS normal_side
  FROM core_entities a
  JOIN universal_transaction_lines l ON l.account_id = a.id AND l.organization_id = a.organization_id
  JOIN universal_transactions h ON h.id = l.transaction_id
 WHERE a.organization_id = $1 AND a.entity_type = 'gl_account' AND a.entity_code = $2
 ORDER BY h.transaction_date, h.occurred_at, h.entry_number, l.line_number
 LIMIT $3
"""
_ORG_EXISTS = "SELECT EXISTS (SELECT 1 FROM core_organizations WHERE id = $1::uuid)"
_ACCOUNT_EXISTS = ("SELECT EXISTS (SELECT 1 FROM core_entities WHERE organization_id = $1::uuid"
                   " AND entity_type = 'gl_account' AND entity_code = $2)")


def normal_balance(debit: Decimal, credit: Decimal, normal_side: str | None) -> Decimal:
    """The balance on the account's normal side (positive when the account is on it)."""
    return credit - debit if normal_side == "CR" else debit - credit


def check_period(period: str | None, what: str = "period") -> None:
    if period is not None and not PERIOD_RE.fullmatch(period):
        raise ValueError(f"{what} must be YYYY-MM, got {period!r}")


async def _balances(conn: asyncpg.Connection, org_id: str, to_period: str | None,
                    from_period: str | None) -> list[asyncpg.Record]:
    async with tenant_transaction(conn, [org_id], readonly=True):
        if not await conn.fetchval(_ORG_EXISTS, org_id):
            raise UnknownOrganization(org_id)
        return await conn.fetch(_BALANCES, org_id, to_period, from_period)


async def trial_balance(conn: asyncpg.Connection, org_id: str, period: str | None = None) -> dict[str, Any]:
    """Balances per account and currency as at the end of ``period`` ('YYYY-MM'; None: all time).

    ``debit``/``credit`` are cumulative through the period, ``period_debit``/``period_credit`` the
    period's own activity, ``balance`` is on the account's normal side, ``net_debit`` = debit −
    credit. Per currency, total debits equal total credits (``balanced``).
    """
    check_period(period)
    return build_trial_balance(org_id, period, await _balances(conn, org_id, period, period))


def build_trial_balance(org_id: str, period: str | None, rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    by_currency: dict[str, dict[str, Any]] = defaultdict(lambda: {"accounts": [], "total_debit": ZERO,
                                                                 "total_credit": ZERO})
    for r in rows:
        debit, credit = r["debit"] or ZERO, r["credit"] or ZERO
        book = by_currency[r["currency"]]
        book["accounts"].append({
            "account": r["account"], "name": r["name"], "type": r["type"], "normal_side": r["normal_side"],
            "debit": str(debit), "credit": str(credit),
            "balance": str(normal_balance(debit, credit, r["normal_side"])), "net_debit": str(debit - credit),
            "period_debit": str(r["period_debit"] or ZERO) if period else None,
            "period_credit": str(r["period_credit"] or ZERO) if period else None,
        })
        book["total_debit"] += debit
        book["total_credit"] += credit
    currencies = {
        ccy: {"accounts": b["accounts"], "total_debit": str(b["total_debit"]),
              "total_credit": str(b["total_credit"]), "balanced": b["total_debit"] == b["total_credit"]}
        for ccy, b in sorted(by_currency.items())
    }
    return {"organization_id": str(org_id), "period": period, "currencies": currencies,
            "balanced": all(c["balanced"] for c in currencies.values())}


async def profit_and_loss(conn: asyncpg.Connection, org_id: str, from_period: str | None = None,
                          to_period: str | None = None) -> dict[str, Any]:
    """Revenue, cost of sales and expenses from ``from_period`` through ``to_period`` (inclusive)."""
    check_period(from_period, "--from")
    check_period(to_period, "--to")
    rows = await _balances(conn, org_id, to_period, from_period)
    return {"organization_id": str(org_id), "from": from_period, "to": to_period, **build_pnl(rows)}


def build_pnl(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per currency: sections of (account, name, amount on the normal side) and the totals;
    ``gross_profit`` = revenue − cost, ``net_income`` = gross profit − expenses."""
    books: dict[str, dict[str, list[dict[str, str]]]] = defaultdict(lambda: {k: [] for k, _ in PNL_SECTIONS})
    for r in rows:
        section = next((k for k, t in PNL_SECTIONS if t == r["type"]), None)
        debit, credit = r["period_debit"] or ZERO, r["period_credit"] or ZERO
        if section is None or debit == credit == ZERO:
            continue
        books[r["currency"]][section].append({"account": r["account"], "name": r["name"],
                                              "amount": str(normal_balance(debit, credit, r["normal_side"]))})
    out: dict[str, dict[str, Any]] = {}
    for ccy, book in sorted(books.items()):
        totals = {k: sum((Decimal(a["amount"]) for a in book[k]), ZERO) for k, _ in PNL_SECTIONS}
        gross = totals["revenue"] - totals["cost"]
        out[ccy] = {**book, **{f"total_{k}": str(v) for k, v in totals.items()},
                    "gross_profit": str(gross), "net_income": str(gross - totals["expenses"])}
    return {"currencies": out}


async def balance_sheet(conn: asyncpg.Connection, org_id: str, period: str | None = None) -> dict[str, Any]:
    """Assets, liabilities and equity as at the end of ``period`` (None: now)."""
    check_period(period)
    rows = await _balances(conn, org_id, period, None)
    return {"organization_id": str(org_id), "as_at": period, **build_balance_sheet(rows)}


def build_balance_sheet(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per currency: sections on their normal side; revenue less cost and expenses to date shows in
    equity as ``current earnings`` (not yet closed to retained earnings), so that
    assets = liabilities + equity (``balanced``)."""
    books: dict[str, dict[str, Any]] = defaultdict(lambda: {**{k: [] for k, _ in BS_SECTIONS}, "earnings": ZERO})
    for r in rows:
        debit, credit = r["debit"] or ZERO, r["credit"] or ZERO
        book = books[r["currency"]]
        if r["type"] in INCOME_TYPES:
            book["earnings"] += credit - debit
            continue
        section = next((k for k, t in BS_SECTIONS if t == r["type"]), None)
        if section is not None and debit != credit:
            # contra accounts (drawings: equity, debit-normal) count against their section
            sign = -1 if (section == "assets") != (r["normal_side"] == "DR") else 1
            book[section].append({"account": r["account"], "name": r["name"],
                                  "amount": str(normal_balance(debit, credit, r["normal_side"])), "sign": sign})
    out = {}
    for ccy, book in sorted(books.items()):
        if book["earnings"] != ZERO:
            book["equity"].append({"account": None, "name": "Current earnings", "amount": str(book["earnings"]),
                                   "sign": 1})
        totals = {k: sum((a["sign"] * Decimal(a["amount"]) for a in book[k]), ZERO) for k, _ in BS_SECTIONS}
        sections = {k: [{kk: vv for kk, vv in a.items() if kk != "sign"} | {"contra": a["sign"] < 0}
                        for a in book[k]] for k, _ in BS_SECTIONS}
        out[ccy] = {**sections, **{f"total_{k}": str(v) for k, v in totals.items()},
                    "balanced": totals["assets"] == totals["liabilities"] + totals["equity"]}
    return {"currencies": out, "balanced": all(c["balanced"] for c in out.values())}


async def account_ledger(conn: asyncpg.Connection, org_id: str, account: str, *,
                         rows_max: int = LEDGER_ROWS_MAX) -> list[dict[str, Any]]:
    """Every line posted to ``account`` in date order, with a running balance per currency
    (signed by the account's normal side: a positive balance is a normal one)."""
    async with tenant_transaction(conn, [org_id], readonly=True):
        if not await conn.fetchval(_ORG_EXISTS, org_id):
            raise UnknownOrganization(org_id)
        if not await conn.fetchval(_ACCOUNT_EXISTS, org_id, account):
            raise LookupError(f"account {account} is not in the chart of organisation {org_id}")
        rows = await conn.fetch(_ACCOUNT_LEDGER, org_id, account, rows_max)
        rows = await reveal_rows(conn, rows, ("description", "counterparty"), org_id)   # sealed personal text
    running: dict[str, Decimal] = defaultdict(Decimal)
    out = []
    for r in rows:
        sign = 1 if r["side"] == r["normal_side"] else -1
        running[r["currency"]] += sign * r["amount"]
        out.append({"entry_id": r["entry_id"], "event_id": r["event_id"], "date": r["transaction_date"].isoformat(),
                    "period": r["posting_period"], "smart_code": r["smart_code"], "description": r["description"],
                    "counterparty": r["counterparty"], "line": r["line_number"], "side": r["side"],
                    "amount": str(r["amount"]), "currency": r["currency"],
                    "balance": str(running[r["currency"]])})
    return out
