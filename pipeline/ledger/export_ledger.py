"""Books in the plain-text journal format of ledger and hledger (``hledger check`` accepts them).

Same account names as the beancount export (``Assets:Bank-1010``; one component per
organisation when several are exported together), each declared with an ``account`` directive
and its hledger type (A, L, E, R, X), and every commodity declared, so ``hledger check --strict``
(accounts and commodities declared) passes too. Each journal entry becomes a cleared
transaction whose description is ``payee | narration``; its event id, smart code and entry id
are tags. DR lines are positive amounts, CR lines negative.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import asyncpg

from pipeline.ledger.export_beancount import _read, account_name
from pipeline.ledger.tenancy import tenant_transaction

HLEDGER_TYPES = {"asset": "A", "liability": "L", "equity": "E", "revenue": "R", "cost": "X", "expense": "X"}
_UNSAFE_RE = re.compile(r"[;\r\n\t|]+")


async def export_ledger(conn: asyncpg.Connection, org_id: str | None = None) -> str:
    """The books of ``org_id`` (or of every organisation: needs the admin connection) as a journal."""
    if org_id is None:
        orgs = [r["id"] for r in await conn.fetch("SELECT id FROM core_organizations ORDER BY id")]
        return render(*await _read(conn, orgs), multi=True)
    async with tenant_transaction(conn, [org_id], readonly=True):
        return render(*await _read(conn, [org_id]), multi=False)


def _text(value: str | None) -> str:
    """One safe line of text: no comment marker, no payee separator, no line break."""
    return " ".join(_UNSAFE_RE.sub(" ", value or "").split())


def _tag(value: str) -> str:
    return _text(value).replace(",", " ")


def render(accounts: list[Any], entries: list[Any], lines: list[Any], *, multi: bool) -> str:
    names: dict[Any, str] = {}
    out = ["; HERA Stream ledger export (hledger / ledger journal)", ""]
    for a in accounts:
        component = f"O{a['organization_id'].hex[:12]}" if multi else None
        names[a["id"]] = account_name(a["type"], a["entity_name"], a["entity_code"], component)
        out.append(f"account {names[a['id']]}  ; type: {HLEDGER_TYPES[a['type']]}")
    out.append("")
    out += [f"commodity {c}" for c in sorted({ln["currency"] for ln in lines})]
    out.append("")
    lines_of: dict[Any, list[Any]] = defaultdict(list)
    for ln in lines:
        lines_of[ln["transaction_id"]].append(ln)
    for e in entries:
        payee, narration = _text(e["counterparty"]), _text(e["description"] or e["smart_code"])
        description = f"{payee} | {narration}" if payee else narration
        out.append(f"{e['transaction_date'].isoformat()} * {description}")
        tags = [f"event_id: {_tag(e['event_id'])}", f"smart_code: {e['smart_code']}", f"entry_id: {e['id']}"]
        if e["reference"]:
            tags.append(f"reference: {_tag(e['reference'])}")
        out.append("    ; " + ", ".join(tags))
        for ln in lines_of[e["id"]]:
            amount = ln["amount"] if ln["side"] == "DR" else -ln["amount"]
            out.append(f"    {names[ln['account_id']]}  {amount:f} {ln['currency']}")
        out.append("")
    return "\n".join(out) + "\n"
