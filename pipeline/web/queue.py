"""The review queue across the organisations a user may see, and deciding its items.

Filters are values bound as query parameters; sort orders come from a fixed table (``SORTS``), so
nothing a user types is ever part of the SQL text. Deciding claims the item in the database first
(``review_decisions``, one row per item: the first claim wins and the other decider is told who
won; a refused decision may be decided again), then sends the decision, signed, to
``hera.review.decisions`` for the worker to post. The claim is checked by the restrictive policies
and the trigger of migration 0020 (role, organisation, approver above the threshold, item open).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from pipeline.domain.errors import HeraError
from pipeline.ledger.privacy import Revealer, payload_values, revealer
from pipeline.web.access import Forbidden, NotFound, WebDB, require
from pipeline.web.identity import ANY_ROLE, APPROVING_ROLES, DECIDING_ROLES, User

PAGE_SIZE_MAX = 200
PAGE_SIZE_DEFAULT = 50
BULK_ITEMS_MAX = 500
EVENT_ID_CHARS_MAX = 128
TIMEOUT_SECONDS = 10.0
_AMOUNT = "(i.payload->'event'->>'amount')::numeric"
_COUNTERPARTY = "(i.payload->'event'->>'counterparty')"
SORTS = {
    "oldest": "i.created_at, i.event_id",
    "newest": "i.created_at DESC, i.event_id DESC",
    "amount_desc": f"{_AMOUNT} DESC, i.created_at",
    "amount_asc": f"{_AMOUNT}, i.created_at",
    "confidence": "i.confidence NULLS FIRST, i.created_at",
    "counterparty": f"{_COUNTERPARTY} NULLS LAST, i.created_at",
}
_WHERE = f"""
 WHERE i.status = 'open'
   AND ($1::uuid IS NULL OR i.organization_id = $1)
   AND ($2::text IS NULL OR i.suggested_smart_code = $2)
   AND ($3::numeric IS NULL OR {_AMOUNT} >= $3)
   AND ($4::numeric IS NULL OR {_AMOUNT} <= $4)
   AND ($5::int IS NULL OR i.created_at <= now() - make_interval(days => $5))
   AND ($6::text IS NULL OR {_COUNTERPARTY} ILIKE '%' || $6 || '%' ESCAPE '\\')
   AND ($7::text IS NULL OR i.reason = $7)
"""


class Conflict(HeraError):
    """Someone else decided the item first (or it is no longer open); the message says who."""


@dataclass(frozen=True, slots=True)
class QueueFilter:
    org: str | None = None
    smart_code: str | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    age_days_min: int | None = None
    counterparty: str | None = None
    reason: str | None = None
    sort: str = "oldest"
    page: int = 1
    page_size: int = PAGE_SIZE_DEFAULT

    def check(self) -> None:
        """PostgreSQL text cannot hold NUL: refuse it as bad input rather than fail in the database."""
        for name in ("smart_code", "counterparty"):
            if "\x00" in (getattr(self, name) or ""):
                raise ValueError(f"{name}: contains a NUL character")

    def params(self) -> list[Any]:
        like = None if not self.counterparty else (
            self.counterparty.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"))
        return [None if self.org is None else uuid.UUID(self.org), self.smart_code, self.amount_min,
                self.amount_max, self.age_days_min, like, self.reason]


_SHOWN = (" i.organization_id::text AS org, o.organization_name AS org_name, i.event_id,"
          " (i.payload->'event')::text AS event, (i.payload->'classification')::text AS classification,"
          " (i.payload->'entry')::text AS entry, i.suggested_smart_code, i.confidence::text, i.reason,"
          " i.created_at, d.state, d.decided_by_name, d.reason AS refusal")
_SHOWN_JOINS = (" JOIN core_organizations o ON o.id = i.organization_id LEFT JOIN review_decisions d"
                " ON d.organization_id = i.organization_id AND d.event_id = i.event_id")
# Counterparties are sealed (SECURITY.md §7): a filter or sort on them reads the candidates' sealed
# names, reveals them here and filters / sorts in Python. At most this many candidates per request.
COUNTERPARTY_SCAN_MAX = 50_000


async def list_queue(db: WebDB, user: User, f: QueueFilter) -> dict[str, Any]:
    """One page of open items (newest decision state included) and the total matching."""
    order = SORTS[f.sort]
    f.check()
    if f.org is not None:
        require(user, f.org, ANY_ROLE, "see this organisation's queue")
    async with db.as_user(user, None if f.org is None else [f.org]) as conn:
        if f.counterparty is not None or f.sort == "counterparty":
            total, rows = await _by_counterparty(conn, f)
        else:
            total = await conn.fetchval(f"SELECT count(*) FROM review_items i {_WHERE}", *f.params(),
                                        timeout=TIMEOUT_SECONDS)
            # the page's keys first (no payload, no join: the planner cannot estimate the RLS-filtered
            # rows and would otherwise join 10,000 of them), then what is shown for those 50 only
            rows = await conn.fetch(
                "WITH page AS MATERIALIZED (SELECT i.id, row_number() OVER (ORDER BY " + order + ") AS n"
                f" FROM review_items i {_WHERE} ORDER BY {order} LIMIT $8 OFFSET $9)"
                f" SELECT {_SHOWN} FROM page p JOIN review_items i ON i.id = p.id {_SHOWN_JOINS} ORDER BY p.n",
                *f.params(), f.page_size, (f.page - 1) * f.page_size, timeout=TIMEOUT_SECONDS)
        rev = await revealer(conn, [(r["org"], v) for r in rows for v in _sealed_texts(r)], timeout=TIMEOUT_SECONDS)
    return {"total": total, "page": f.page, "page_size": f.page_size,
            "pages": max(1, -(-total // f.page_size)), "items": [item_view(r, rev) for r in rows]}


async def _by_counterparty(conn: asyncpg.Connection, f: QueueFilter) -> tuple[int, list[asyncpg.Record]]:
    """Total and page of a filter or sort on the (sealed) counterparty: candidates by the other filters,
    names revealed, matched as a case-insensitive substring, sorted by name (then age) if asked."""
    params = f.params()
    params[5] = None   # the counterparty condition is applied here, on revealed names
    order = SORTS["oldest"] if f.sort == "counterparty" else SORTS[f.sort]
    found = await conn.fetch(f"SELECT i.id, i.organization_id AS org, {_COUNTERPARTY} AS cp FROM review_items i"
                             f" {_WHERE} ORDER BY {order} LIMIT $8", *params, COUNTERPARTY_SCAN_MAX + 1,
                             timeout=TIMEOUT_SECONDS)
    if len(found) > COUNTERPARTY_SCAN_MAX:
        raise ValueError(f"counterparty: more than {COUNTERPARTY_SCAN_MAX} open items to search; narrow the "
                         "queue by organisation, amount or age first")
    rev = await revealer(conn, [(r["org"], r["cp"]) for r in found], timeout=TIMEOUT_SECONDS)
    names = [(r["id"], rev.text(r["org"], r["cp"])) for r in found]
    if f.counterparty is not None:
        needle = f.counterparty.casefold()
        names = [(i, n) for i, n in names if n is not None and needle in n.casefold()]
    if f.sort == "counterparty":   # stable: equal names keep the oldest-first order
        names.sort(key=lambda item: (item[1] is None, (item[1] or "").casefold()))
    ids = [i for i, _ in names[(f.page - 1) * f.page_size:f.page * f.page_size]]
    rows = await conn.fetch(f"SELECT {_SHOWN} FROM unnest($1::uuid[]) WITH ORDINALITY AS p(id, n)"
                            f" JOIN review_items i ON i.id = p.id {_SHOWN_JOINS} ORDER BY p.n", ids,
                            timeout=TIMEOUT_SECONDS)
    return len(names), rows


def _sealed_texts(r: asyncpg.Record | dict[str, Any]) -> list[Any]:
    return [v for part in ("event", "entry", "classification")
            for v in payload_values({part: json.loads(r[part] or "null")})]


def item_view(r: asyncpg.Record | dict[str, Any], rev: Revealer | None = None) -> dict[str, Any]:
    """A queue row as shown: the event (personal text revealed, ``[erased]`` once its subject is erased;
    card numbers masked again), suggestion, alternatives, why."""
    from pipeline.domain.validate import mask_pans

    event = json.loads(r["event"] or "{}")
    if rev is not None:
        event = rev.payload(r["org"], {"event": event})["event"]
    cls = json.loads(r["classification"] or "{}")
    if rev is not None:   # its explanation quotes the event's words: sealed like them
        cls = rev.payload(r["org"], {"classification": cls})["classification"]
    entry = json.loads(r["entry"] or "null")
    for key in ("description", "counterparty", "reference"):
        if isinstance(event.get(key), str):
            event[key] = mask_pans(event[key])
    return {
        "organization_id": r["org"], "organization_name": r["org_name"], "event_id": r["event_id"],
        "occurred_at": event.get("occurred_at"), "amount": event.get("amount"), "currency": event.get("currency"),
        "direction": event.get("direction"), "description": event.get("description"),
        "counterparty": event.get("counterparty"), "source": event.get("source"), "kind": event.get("kind"),
        "suggested_smart_code": r["suggested_smart_code"], "confidence": r["confidence"],
        "method": cls.get("method"), "explanation": cls.get("explanation"),
        "why": why_summary(cls.get("explanation")),
        "alternatives": [{"smart_code": a[0], "confidence": a[1]} for a in cls.get("alternatives") or []
                         if isinstance(a, list | tuple) and len(a) == 2],
        "suggested_lines": [{k: ln.get(k) for k in ("account", "side", "amount", "currency")}
                            for ln in (entry or {}).get("lines", [])],
        "reason": r["reason"], "queued_at": r["created_at"].isoformat(),
        "decision": None if r["state"] is None else {"state": r["state"], "decided_by": r["decided_by_name"],
                                                     "reason": r["refusal"]},
    }


async def decide(db: WebDB, send: Any, user: User, org: str, event_id: str, decision: str,
                 smart_code: str | None, *, catalog: Any) -> dict[str, Any]:
    """Claim and send one decision; returns the claim. Raises Forbidden, NotFound, Conflict or ValueError."""
    require(user, org, DECIDING_ROLES, "decide review items")
    if decision not in ("approve", "correct"):
        raise ValueError("decision is approve or correct")
    if not 1 <= len(event_id) <= EVENT_ID_CHARS_MAX or "\x00" in event_id:
        raise NotFound("no such review item")
    if decision == "correct" and not catalog.is_known(smart_code or ""):
        raise ValueError("choose a smart code of the catalog to correct to")
    code = smart_code if decision == "correct" else None
    decision_id = str(uuid.uuid4())
    try:
        async with db.as_user(user, [org], readonly=False) as conn:
            item = await conn.fetchrow(
                "SELECT i.status, i.resolved_by, (i.payload->'event'->>'amount')::numeric AS amount,"
                " (o.settings->>'approval_threshold')::numeric AS threshold"
                " FROM review_items i JOIN core_organizations o ON o.id = i.organization_id"
                " WHERE i.organization_id = $1 AND i.event_id = $2", uuid.UUID(org), event_id,
                timeout=TIMEOUT_SECONDS)
            if item is None:
                raise NotFound("no such review item")
            if item["status"] != "open":
                raise Conflict(f"already {item['status']} by {item['resolved_by']}")
            if item["threshold"] is not None and item["amount"] > item["threshold"]:
                require(user, org, APPROVING_ROLES, "decide items above the approval threshold (approver only)")
            won = await conn.fetchrow(
                "INSERT INTO review_decisions (organization_id, event_id, decision_id, decision, smart_code,"
                " decided_by, decided_by_name) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                " ON CONFLICT (organization_id, event_id) DO UPDATE SET decision_id = EXCLUDED.decision_id,"
                " decision = EXCLUDED.decision, smart_code = EXCLUDED.smart_code, decided_by = EXCLUDED.decided_by,"
                " decided_by_name = EXCLUDED.decided_by_name, decided_at = now(), state = 'sent', reason = NULL"
                " WHERE review_decisions.state = 'refused' RETURNING decided_at",
                uuid.UUID(org), event_id, uuid.UUID(decision_id), decision, code, uuid.UUID(user.id),
                user.username, timeout=TIMEOUT_SECONDS)
            if won is None:
                other = await conn.fetchval("SELECT decided_by_name FROM review_decisions"
                                            " WHERE organization_id = $1 AND event_id = $2", uuid.UUID(org), event_id)
                raise Conflict(f"already decided by {other}")
    except asyncpg.InsufficientPrivilegeError as exc:   # RLS or the approver trigger: the database said no
        raise Forbidden("the database refused this decision for your role") from exc
    except asyncpg.CheckViolationError as exc:
        raise Conflict("the item is no longer open") from exc
    message = {"organization_id": org, "event_id": event_id, "decision": decision, "smart_code": code,
               "reviewer": user.username, "reviewer_id": user.id, "decision_id": decision_id,
               "signed_at": datetime.now(UTC).isoformat()}
    try:
        await send(message)
    except Exception as exc:
        await mark_refused(db, user, org, event_id, decision_id, "SEND_FAILED")
        raise RuntimeError("the decision could not be sent to the pipeline; try again") from exc
    return {"organization_id": org, "event_id": event_id, "decision_id": decision_id, "decision": decision,
            "smart_code": code, "state": "sent"}


async def mark_refused(db: WebDB, user: User, org: str, event_id: str, decision_id: str, reason: str) -> None:
    async with db.as_user(user, [org], readonly=False) as conn:
        await conn.execute("UPDATE review_decisions SET state = 'refused', reason = $4 WHERE organization_id = $1"
                           " AND event_id = $2 AND decision_id = $3 AND state = 'sent'",
                           uuid.UUID(org), event_id, uuid.UUID(decision_id), reason, timeout=TIMEOUT_SECONDS)


async def counterparty_items(db: WebDB, user: User, counterparty: str, org: str | None) -> list[tuple[str, str]]:
    """(org, event_id) of the open items of exactly ``counterparty`` (at most ``BULK_ITEMS_MAX``): names
    are sealed, so the open items' names are revealed and compared here."""
    if "\x00" in counterparty:
        return []
    async with db.as_user(user, None if org is None else [org]) as conn:
        rows = await conn.fetch(
            f"SELECT i.organization_id AS org, i.event_id, {_COUNTERPARTY} AS cp FROM review_items i"
            f" WHERE i.status = 'open' AND {_COUNTERPARTY} IS NOT NULL ORDER BY i.created_at LIMIT $1",
            COUNTERPARTY_SCAN_MAX, timeout=TIMEOUT_SECONDS)
        rev = await revealer(conn, [(r["org"], r["cp"]) for r in rows], timeout=TIMEOUT_SECONDS)
    return [(str(r["org"]), r["event_id"]) for r in rows if rev.text(r["org"], r["cp"]) == counterparty][:BULK_ITEMS_MAX]


async def item_status(db: WebDB, user: User, org: str, event_id: str) -> dict[str, Any]:
    """Where a decided item stands: ``pending``, ``posted`` (entry id and lines) or ``refused`` (why)."""
    if "\x00" in event_id:
        raise NotFound("no such review item")
    async with db.as_user(user, [org]) as conn:
        row = await conn.fetchrow(
            "SELECT i.status, i.resolved_smart_code, i.resolved_by, d.state, d.reason, d.decided_by_name,"
            " d.decided_at FROM review_items i LEFT JOIN review_decisions d"
            " ON d.organization_id = i.organization_id AND d.event_id = i.event_id"
            " WHERE i.organization_id = $1 AND i.event_id = $2", uuid.UUID(org), event_id, timeout=TIMEOUT_SECONDS)
        if row is None:
            raise NotFound("no such review item")
        out: dict[str, Any] = {"organization_id": org, "event_id": event_id, "item_status": row["status"],
                               "decided_by": row["decided_by_name"] or row["resolved_by"], "entry": None,
                               "reason": row["reason"]}
        if row["status"] != "open":
            from pipeline.web.books import entry_by_event
            out["entry"] = await entry_by_event(conn, org, event_id)
            out["state"] = "posted" if out["entry"] else "pending"
            return out
        if row["state"] == "refused":
            out["state"] = "refused"
            return out
        refused = None if row["state"] is None else await conn.fetchval(
            "SELECT payload->>'reason' FROM audit_log WHERE organization_id = $1 AND subject = $2"
            " AND action = 'event.rejected' AND payload->>'stage' = 'review' AND created_at >= $3"
            " ORDER BY seq DESC LIMIT 1", uuid.UUID(org), event_id, row["decided_at"], timeout=TIMEOUT_SECONDS)
        out["state"] = "refused" if refused else ("pending" if row["state"] else "open")
        out["reason"] = refused or out["reason"]
        return out



REASONS = ("LOW_CONFIDENCE", "AMOUNT_OVER_CAP", "SUSPENSE", "INCOMPLETE_EVENT", "LINE_UNCLASSIFIED")
FILTER_TEXT_CHARS_MAX = 200


def filter_from(q: Any) -> QueueFilter:
    """A ``QueueFilter`` from query parameters (a mapping of strings); ValueError names the bad field."""
    def text(name: str) -> str | None:
        value = (q.get(name) or "").strip()
        if len(value) > FILTER_TEXT_CHARS_MAX:
            raise ValueError(f"{name}: at most {FILTER_TEXT_CHARS_MAX} characters")
        if "\x00" in value:
            raise ValueError(f"{name}: contains a NUL character")
        return value or None

    def number(name: str, kind: Any, low: Any = None, high: Any = None) -> Any:
        value = text(name)
        if value is None:
            return None
        try:
            parsed = kind(value)
        except (ArithmeticError, ValueError) as exc:
            raise ValueError(f"{name}: not a number") from exc
        if isinstance(parsed, Decimal) and not parsed.is_finite():
            raise ValueError(f"{name}: not a number")
        if (low is not None and parsed < low) or (high is not None and parsed > high):
            raise ValueError(f"{name}: out of range")
        return parsed

    org = text("org")
    if org is not None:
        try:
            org = str(uuid.UUID(org))
        except ValueError as exc:
            raise ValueError("org: not an organisation id") from exc
    sort = text("sort") or "oldest"
    if sort not in SORTS:
        raise ValueError(f"sort: one of {', '.join(SORTS)}")
    reason = text("reason")
    if reason is not None and reason not in REASONS:
        raise ValueError(f"reason: one of {', '.join(REASONS)}")
    return QueueFilter(org=org, smart_code=text("smart_code"),
                       amount_min=number("amount_min", Decimal, Decimal(0), Decimal("1e15")),
                       amount_max=number("amount_max", Decimal, Decimal(0), Decimal("1e15")),
                       age_days_min=number("age_days_min", int, 0, 36_500), counterparty=text("counterparty"),
                       reason=reason, sort=sort, page=number("page", int, 1, 1_000_000) or 1,
                       page_size=number("page_size", int, 1, PAGE_SIZE_MAX) or PAGE_SIZE_DEFAULT)


# What each confidence cap means, in a reviewer's words (pipeline/classify/familiarity.py and memory.py;
# tests/unit/test_classify_review_explanation.py keeps the two lists together).
CAP_WORDS = {
    "nothing_known": "no known word, keyword or MCC",
    "unknown_words": "unknown words and no keyword",
    "lexicon_disagrees": "its keywords name another category",
    "below_real_threshold": "below the confidence measured on real merchant names",
    "one_decision": "only one reviewer decision so far",
}


def why_summary(explanation: dict | None) -> str:
    """One line for a reviewer from a classification's ``explanation`` (pipeline/classify/explain.py):
    what decided, what was unknown, what held the confidence down. Plain text; the template escapes it."""
    if not explanation:
        return ""
    e = explanation
    parts = []
    if e.get("memory_key"):
        parts.append(f"memory {e['memory_key']} ({e.get('agreeing')} of {e.get('decisions')} decisions agree)")
    if e.get("memory_hint"):
        parts.append(f"memory {e['memory_hint']} agrees")
    if e.get("model_code"):
        parts.append(f"model says {e['model_code']} at {e.get('model_confidence')}")
    if e.get("method") == "rule":
        parts.append(f"rule for {e.get('kind')}" + (f" ({e['reason']})" if e.get("reason") else ""))
    if e.get("top_features"):
        parts.append("evidence " + ", ".join(e["top_features"]))
    if e.get("lexicon"):
        parts.append("keywords " + ", ".join(e["lexicon"]))
    if e.get("mcc_category"):
        parts.append(f"MCC category {e['mcc_category']}" + (f" ({e['mcc_description']})" if e.get("mcc_description") else ""))
    if e.get("unknown_tokens"):
        parts.append("unknown words " + ", ".join(e["unknown_tokens"]))
    if e.get("capped_by"):
        parts.append("held down: " + CAP_WORDS.get(e["capped_by"], e["capped_by"]))
    return "; ".join(parts)
