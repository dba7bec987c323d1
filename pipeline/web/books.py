"""The books of one organisation as the workspace shows them: trial balance, balance sheet, profit
and loss, an account's ledger with running balance, an entry with its lines, the audit chain.

Every function takes a connection already inside ``WebDB.as_user`` (role hera_web, the user's
organisations), so row-level security applies to each query. Balances are shown on each account's
normal side: a positive number is a normal balance (debit for assets and expenses, credit for
liabilities, equity and revenue). Amounts are exact decimals, returned as strings.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any

import asyncpg

from pipeline.ledger.privacy import reveal_rows, revealer

PERIOD_RE = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
ACCOUNT_RE = re.compile(r"^[0-9A-Za-z._-]{1,32}$")
LEDGER_ROWS_MAX = 5_000
TIMEOUT_SECONDS = 10.0
BALANCE_SHEET_TYPES = ("asset", "liability", "equity")
PROFIT_AND_LOSS_TYPES = ("revenue", "cost", "expense")

_BALANCES = """
SELECT a.entity_code AS account, a.entity_name AS name, a.metadata->>'account_type' AS type,
       a.metadata->>'normal_side' AS normal_side, l.currency,
       coalesce(sum(l.amount) FILTER (WHERE l.side = 'DR'), 0) AS debit,
       coalesce(sum(l.amount) FILTER (WHERE l.side = 'CR'), 0) AS credit
  FROM universal_transaction_lines l
  JOIN universal_transactions h ON h.id = l.transaction_id
  JOIN core_entities a ON a.id = l.account_id
 WHERE h.organization_id = $1 AND ($2::text IS NULL OR h.posting_period <= $2)
   AND ($3::text IS NULL OR h.posting_period >= $3)
 GROUP BY a.entity_code, a.entity_name, a.metadata, l.currency
 ORDER BY l.currency, a.entity_code
"""


def check_period(period: str | None) -> str | None:
    if period in (None, ""):
        return None
    if not PERIOD_RE.fullmatch(period):
        raise ValueError("a period is YYYY-MM")
    return period


async def balances(conn: asyncpg.Connection, org: str, *, through: str | None = None,
                   since: str | None = None) -> list[dict[str, Any]]:
    """Per account and currency: debit, credit and the balance on the account's normal side."""
    rows = await conn.fetch(_BALANCES, uuid.UUID(org), check_period(through), check_period(since),
                            timeout=TIMEOUT_SECONDS)
    out = []
    for r in rows:
        debit, credit = r["debit"], r["credit"]
        normal = debit - credit if r["normal_side"] == "DR" else credit - debit
        out.append({"account": r["account"], "name": r["name"], "type": r["type"], "normal_side": r["normal_side"],
                    "currency": r["currency"], "debit": str(debit), "credit": str(credit), "balance": str(normal)})
    return out


async def trial_balance(conn: asyncpg.Connection, org: str, period: str | None = None) -> dict[str, Any]:
    rows = await balances(conn, org, through=period)
    totals: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for r in rows:
        totals[r["currency"]][0] += Decimal(r["debit"])
        totals[r["currency"]][1] += Decimal(r["credit"])
    return {"organization_id": org, "period": period, "rows": rows,
            "totals": [{"currency": c, "debit": str(d), "credit": str(k), "balanced": d == k}
                       for c, (d, k) in sorted(totals.items())]}


async def balance_sheet(conn: asyncpg.Connection, org: str, period: str | None = None) -> dict[str, Any]:
    """Assets = liabilities + equity, with the not-yet-closed result of the revenue and expense
    accounts shown as current earnings inside equity."""
    rows = await balances(conn, org, through=period)
    sections: dict[str, dict[str, Any]] = {}
    for ccy in sorted({r["currency"] for r in rows}):
        mine = [r for r in rows if r["currency"] == ccy]
        total = {t: sum((Decimal(r["balance"]) for r in mine if r["type"] == t), Decimal(0)) for t in BALANCE_SHEET_TYPES}
        earnings = _net_income(mine)
        sections[ccy] = {
            "rows": [r for r in mine if r["type"] in BALANCE_SHEET_TYPES],
            "current_earnings": str(earnings),
            "total_assets": str(total["asset"]), "total_liabilities": str(total["liability"]),
            "total_equity": str(total["equity"] + earnings),
            "balanced": total["asset"] == total["liability"] + total["equity"] + earnings,
        }
    return {"organization_id": org, "period": period, "currencies": sections}


async def profit_and_loss(conn: asyncpg.Connection, org: str, since: str | None = None,
                          through: str | None = None) -> dict[str, Any]:
    rows = await balances(conn, org, through=through, since=since)
    sections: dict[str, dict[str, Any]] = {}
    for ccy in sorted({r["currency"] for r in rows}):
        mine = [r for r in rows if r["currency"] == ccy]
        total = {t: sum((Decimal(r["balance"]) for r in mine if r["type"] == t), Decimal(0)) for t in PROFIT_AND_LOSS_TYPES}
        sections[ccy] = {"rows": [r for r in mine if r["type"] in PROFIT_AND_LOSS_TYPES],
                         "total_revenue": str(total["revenue"]), "total_cost": str(total["cost"]),
                         "total_expense": str(total["expense"]), "net_income": str(_net_income(mine))}
    return {"organization_id": org, "since": since, "through": through, "currencies": sections}


def _net_income(rows: list[dict[str, Any]]) -> Decimal:
    revenue = sum((Decimal(r["balance"]) for r in rows if r["type"] == "revenue"), Decimal(0))
    spent = sum((Decimal(r["balance"]) for r in rows if r["type"] in ("cost", "expense")), Decimal(0))
    return revenue - spent


async def account_ledger(conn: asyncpg.Connection, org: str, account: str) -> dict[str, Any]:
    """Every line on ``account`` in date order with a running balance per currency (normal side)."""
    if not ACCOUNT_RE.fullmatch(account):
        raise ValueError("an account code is 1-32 letters, digits, '.', '_' or '-'")
    head = await conn.fetchrow("SELECT entity_name AS name, metadata->>'normal_side' AS normal_side,"
                               " metadata->>'account_type' AS type FROM core_entities"
                               " WHERE organization_id = $1 AND entity_type = 'gl_account' AND entity_code = $2",
                               uuid.UUID(org), account, timeout=TIMEOUT_SECONDS)
    if head is None:
        return {"organization_id": org, "account": account, "found": False, "rows": []}
    rows = await conn.fetch(
        "SELECT h.id::text AS entry_id, h.entry_number, h.event_id, h.transaction_date, h.smart_code,"
        " coalesce(l.description, h.description) AS description, h.counterparty, l.side, l.amount, l.currency"
        " FROM core_entities a JOIN universal_transaction_lines l ON l.account_id = a.id"
        " AND l.organization_id = a.organization_id JOIN universal_transactions h ON h.id = l.transaction_id"
        " WHERE a.organization_id = $1 AND a.entity_type = 'gl_account' AND a.entity_code = $2"
        " ORDER BY h.transaction_date, h.occurred_at, h.entry_number, l.line_number LIMIT $3",
        uuid.UUID(org), account, LEDGER_ROWS_MAX, timeout=TIMEOUT_SECONDS)
    rows = await reveal_rows(conn, rows, ("description", "counterparty"), org)   # sealed personal text
    running: dict[str, Decimal] = defaultdict(Decimal)
    out = []
    for r in rows:
        running[r["currency"]] += r["amount"] if r["side"] == head["normal_side"] else -r["amount"]
        out.append({"entry_id": r["entry_id"], "entry_number": r["entry_number"], "event_id": r["event_id"],
                    "date": r["transaction_date"].isoformat(), "smart_code": r["smart_code"],
                    "description": r["description"], "counterparty": r["counterparty"], "side": r["side"],
                    "amount": str(r["amount"]), "currency": r["currency"], "balance": str(running[r["currency"]])})
    return {"organization_id": org, "account": account, "found": True, "name": head["name"],
            "normal_side": head["normal_side"], "type": head["type"], "rows": out,
            "truncated": len(out) == LEDGER_ROWS_MAX}


async def entry(conn: asyncpg.Connection, org: str, entry_id: str) -> dict[str, Any] | None:
    """One journal entry: header, lines with account names, where its event came from, its audit rows."""
    try:
        eid = uuid.UUID(entry_id)
    except ValueError:
        return None
    h = await conn.fetchrow(
        "SELECT id::text AS entry_id, entry_number, event_id, smart_code, transaction_date, posting_period,"
        " currency, total_amount, source, confidence, reference, description, counterparty, metadata::text,"
        " created_by, created_at FROM universal_transactions WHERE organization_id = $1 AND id = $2",
        uuid.UUID(org), eid, timeout=TIMEOUT_SECONDS)
    if h is None:
        return None
    lines = await conn.fetch(
        "SELECT l.line_number, a.entity_code AS account, a.entity_name AS account_name, l.side, l.amount,"
        " l.currency, l.smart_code, l.description FROM universal_transaction_lines l"
        " JOIN core_entities a ON a.id = l.account_id WHERE l.transaction_id = $1 AND l.organization_id = $2"
        " ORDER BY l.line_number", eid, uuid.UUID(org), timeout=TIMEOUT_SECONDS)
    audit = await conn.fetch(
        "SELECT seq, action, actor, occurred_at, hash FROM audit_log WHERE organization_id = $1"
        " AND (subject = $2 OR payload->'entries' @> jsonb_build_array(jsonb_build_array($3::text)))"
        " ORDER BY seq LIMIT 20", uuid.UUID(org), h["event_id"], entry_id, timeout=TIMEOUT_SECONDS)
    rev = await revealer(conn, [(org, h["description"]), (org, h["counterparty"])]
                         + [(org, ln["description"]) for ln in lines], timeout=TIMEOUT_SECONDS)
    origin = await conn.fetchval("SELECT (payload->'source')::text FROM review_items WHERE organization_id = $1"
                                 " AND event_id = $2", uuid.UUID(org), h["event_id"], timeout=TIMEOUT_SECONDS)
    return {**{k: (str(v) if isinstance(v, Decimal) else v) for k, v in dict(h).items() if k != "metadata"},
            "description": rev.text(org, h["description"]), "counterparty": rev.text(org, h["counterparty"]),
            "transaction_date": h["transaction_date"].isoformat(), "created_at": h["created_at"].isoformat(),
            "metadata": json.loads(h["metadata"] or "{}"),
            # the raw record's coordinates are kept with review items (posted messages carry them too)
            "origin": json.loads(origin) if origin else None,
            "lines": [{**dict(ln), "amount": str(ln["amount"]), "description": rev.text(org, ln["description"])}
                      for ln in lines],
            "audit": [{**dict(a), "occurred_at": a["occurred_at"].isoformat()} for a in audit]}


async def entry_by_event(conn: asyncpg.Connection, org: str, event_id: str) -> dict[str, Any] | None:
    entry_id = await conn.fetchval("SELECT id::text FROM universal_transactions WHERE organization_id = $1"
                                   " AND event_id = $2", uuid.UUID(org), event_id, timeout=TIMEOUT_SECONDS)
    return None if entry_id is None else await entry(conn, org, entry_id)


async def audit_status(conn: asyncpg.Connection, org: str) -> dict[str, Any]:
    """The organisation's audit chain re-walked (``pipeline.ledger.audit.verify_audit``) and its head."""
    from pipeline.ledger.audit import verify_audit

    report = await verify_audit(conn, org)
    head = await conn.fetchrow("SELECT seq, hash FROM audit_heads WHERE organization_id = $1", uuid.UUID(org),
                               timeout=TIMEOUT_SECONDS)
    return {**report, "head_seq": None if head is None else head["seq"],
            "head_hash": None if head is None else head["hash"]}
