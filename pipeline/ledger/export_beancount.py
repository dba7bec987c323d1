"""Books in beancount's plain-text format, for ``bean-check`` and the beancount/fava ecosystem.

Accounts map by type (asset → Assets, liability → Liabilities, equity → Equity, revenue → Income,
cost and expense → Expenses) and are named ``<Root>:<Name>-<code>`` (``Assets:Bank-1010``); when
several organisations are exported together each gets its own component (``Assets:O1a2b3c4d5e6:…``).
Every chart account is opened on the date of the organisation's first entry; each journal entry
becomes a transaction with its event id, smart code and entry id as metadata; DR lines are
positive postings, CR lines negative.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date
from typing import Any

import asyncpg

from pipeline.ledger.privacy import reveal_rows
from pipeline.ledger.tenancy import tenant_transaction

ROOTS = {"asset": "Assets", "liability": "Liabilities", "equity": "Equity", "revenue": "Income",
         "cost": "Expenses", "expense": "Expenses"}
_WORD_RE = re.compile(r"[A-Za-z0-9]+")

_ACCOUNTS = """
SELECT organization_id, id, entity_code, entity_name, metadata->>'account_type' AS type
  FROM core_entities WHERE entity_type = 'gl_account' AND organization_id = ANY($1::uuid[])
 ORDER BY organization_id, entity_code
"""
_ENTRIES = """
SELECT h.id, h.organization_id, h.event_id, h.smart_code, h.transaction_date, h.description, h.counterparty,
       h.reference
  FROM universal_transactions h WHERE h.organization_id = ANY($1::uuid[])
 ORDER BY h.organization_id, h.transaction_date, h.occurred_at, h.entry_number
"""
_LINES = """
SELECT l.transaction_id, l.line_number, l.account_id, l.side, l.amount, l.currency
  FROM universal_transaction_lines l WHERE l.organization_id = ANY($1::uuid[])
 ORDER BY l.transaction_id, l.line_number
"""


def account_name(account_type: str, name: str, code: str, org_component: str | None = None) -> str:
    words = "".join(w[:1].upper() + w[1:] for w in _WORD_RE.findall(name)) or "Account"
    if not words[0].isalpha():
        words = "A" + words
    leaf = f"{words}-{re.sub(r'[^A-Za-z0-9]', '', code) or 'X'}"
    parts = [ROOTS[account_type]] + ([org_component] if org_component else []) + [leaf]
    return ":".join(parts)


def _quote(text: str | None) -> str:
    clean = (text or "").replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ").replace("\r", " ")
    return f'"{clean}"'


async def export_beancount(conn: asyncpg.Connection, org_id: str | None = None) -> str:
    """The books of ``org_id`` (or of every organisation: needs the admin connection) as beancount text."""
    if org_id is None:
        orgs = [r["id"] for r in await conn.fetch("SELECT id FROM core_organizations ORDER BY id")]
        return _render(*await _read(conn, orgs), multi=True)
    async with tenant_transaction(conn, [org_id], readonly=True):
        return _render(*await _read(conn, [org_id]), multi=False)


async def _read(conn: asyncpg.Connection, orgs: list[Any]) -> tuple[list, list, list]:
    entries = await reveal_rows(conn, await conn.fetch(_ENTRIES, orgs), ("description", "counterparty"))
    return await conn.fetch(_ACCOUNTS, orgs), entries, await conn.fetch(_LINES, orgs)


def _render(accounts: list, entries: list, lines: list, *, multi: bool) -> str:
    names: dict[Any, str] = {}
    by_org: dict[Any, list] = defaultdict(list)
    for a in accounts:
        component = f"O{a['organization_id'].hex[:12]}" if multi else None
        names[a["id"]] = account_name(a["type"], a["entity_name"], a["entity_code"], component)
        by_org[a["organization_id"]].append(a["id"])
    lines_of: dict[Any, list] = defaultdict(list)
    for ln in lines:
        lines_of[ln["transaction_id"]].append(ln)
    first_day: dict[Any, date] = {}
    for e in entries:
        first_day.setdefault(e["organization_id"], e["transaction_date"])
    currencies = sorted({ln["currency"] for ln in lines})
    out = ["; HERA Stream ledger export", 'option "title" "HERA Stream books"']
    out += [f'option "operating_currency" "{c}"' for c in currencies]
    out.append("")
    for org, ids in by_org.items():
        opened = first_day.get(org, date(1970, 1, 1))
        out += [f"{opened.isoformat()} open {names[i]}" for i in ids]
    out.append("")
    for e in entries:
        payee = e["counterparty"] or ""
        narration = e["description"] or e["smart_code"]
        out.append(f"{e['transaction_date'].isoformat()} * {_quote(payee)} {_quote(narration)}")
        out.append(f"  event_id: {_quote(e['event_id'])}")
        out.append(f"  smart_code: {_quote(e['smart_code'])}")
        out.append(f"  entry_id: {_quote(str(e['id']))}")
        if e["reference"]:
            out.append(f"  reference: {_quote(e['reference'])}")
        for ln in lines_of[e["id"]]:
            amount = ln["amount"] if ln["side"] == "DR" else -ln["amount"]
            out.append(f"  {names[ln['account_id']]}  {amount:f} {ln['currency']}")
        out.append("")
    return "\n".join(out) + "\n"
