"""Read models of one organisation's books: the trial balance and an account's ledger.

Both run in a read-only transaction acting for the organisation (row-level security applies),
so a caller can only ever see the books it asked for. Amounts are strings (exact decimals).
"""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import Decimal
from typing import Any

import asyncpg

from pipeline.ledger.tenancy import tenant_transaction

PERIOD_RE = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
LEDGER_ROWS_MAX = 100_000

_TRIAL_BALANCE = """
SELECT a.entity_code AS account, a.entity_name AS name, a.metadata->>'account_type' AS type,
       a.metadata->>'normal_side' AS normal_side, l.currency,
       sum(l.amount) FILTER (WHERE l.side = 'DR') AS debit,
       sum(l.amount) FILTER (WHERE l.side = 'CR') AS credit,
       sum(l.amount) FILTER (WHERE l.side = 'DR' AND h.posting_period = $2) AS period_debit,
       sum(l.amount) FILTER (WHERE l.side = 'CR' AND h.posting_period = $2) AS period_credit
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


async def trial_balance(conn: asyncpg.Connection, org_id: str, period: str | None = None) -> dict[str, Any]:
    """Balances per account and currency as at the end of ``period`` ('YYYY-MM'; None: all time).

    ``debit``/``credit`` are cumulative through the period, ``period_debit``/``period_credit`` the
    period's own activity, ``balance`` = debit - credit (positive: a debit balance). Per currency,
    total debits equal total credits (``balanced``).
    """
    if period is not None and not PERIOD_RE.fullmatch(period):
        raise ValueError(f"period must be YYYY-MM, got {period!r}")
    async with tenant_transaction(conn, [org_id], readonly=True):
        rows = await conn.fetch(_TRIAL_BALANCE, org_id, period)
    zero = Decimal(0)
    by_currency: dict[str, dict[str, Any]] = defaultdict(lambda: {"accounts": [], "total_debit": zero,
                                                                 "total_credit": zero})
    for r in rows:
        debit, credit = r["debit"] or zero, r["credit"] or zero
        book = by_currency[r["currency"]]
        book["accounts"].append({
            "account": r["account"], "name": r["name"], "type": r["type"], "normal_side": r["normal_side"],
            "debit": str(debit), "credit": str(credit), "balance": str(debit - credit),
            "period_debit": str(r["period_debit"] or zero) if period else None,
            "period_credit": str(r["period_credit"] or zero) if period else None,
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


async def account_ledger(conn: asyncpg.Connection, org_id: str, account: str, *,
                         rows_max: int = LEDGER_ROWS_MAX) -> list[dict[str, Any]]:
    """Every line posted to ``account`` in date order, with a running balance per currency
    (signed by the account's normal side: a positive balance is a normal one)."""
    async with tenant_transaction(conn, [org_id], readonly=True):
        rows = await conn.fetch(_ACCOUNT_LEDGER, org_id, account, rows_max)
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
