"""Pure half of posting: check each journal entry against what the ledger knows, and turn the
accepted ones into the rows the store inserts. No I/O here.

The checks run in ``Reason`` precedence order and the first failure wins; an entry that fails
is rejected alone, never its batch. A second entry with the same (organization_id, event_id)
inside one batch is a duplicate of the first.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache

from pipeline.domain.entries import LINES_PER_ENTRY_MAX, JournalEntry, imbalances
from pipeline.domain.errors import InvariantViolation, ensure
from pipeline.domain.outcomes import Outcome, Reason
from pipeline.ledger.tenancy import org_uuid

SMART_CODE_RE = re.compile(r"^HERA\.[A-Z0-9]{3,15}(\.[A-Z0-9_]{2,30}){3,8}\.v[0-9]+$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
EVENT_ID_LENGTH_MAX = 128
LINES_PER_ENTRY_MIN = 2
CODES_CACHED_MAX = 4096
ORG_PREFIXES_CACHED_MAX = 65_536
ENTRY_ID_NAMESPACE = uuid.UUID("5b0e6a52-8a44-4d55-9a8e-48455241c0de")


@dataclass(frozen=True, slots=True)
class PostResult:
    event_id: str
    organization_id: str
    outcome: Outcome                  # POSTED | DUPLICATE | REJECTED
    entry_id: str | None
    reason: Reason | None = None


def entry_id_for(org_id: uuid.UUID, event_id: str) -> uuid.UUID:
    """Deterministic entry id: the same event always maps to the same id (UUIDv5).

    Equal to ``uuid.uuid5(ENTRY_ID_NAMESPACE, f"{org_id}/{event_id}")``, with the per-organisation
    prefix of the hashed name kept instead of re-encoded for every entry.
    """
    digest = hashlib.sha1(_id_prefix(org_id) + event_id.encode("utf-8")).digest()
    return uuid.UUID(bytes=digest[:16], version=5)


@lru_cache(maxsize=ORG_PREFIXES_CACHED_MAX)
def _id_prefix(org_id: uuid.UUID) -> bytes:
    return ENTRY_ID_NAMESPACE.bytes + f"{org_id}/".encode()


def business_date(occurred_at: datetime) -> date:
    """The entry's date: the calendar day in the event's own offset (UTC when naive)."""
    return (occurred_at if occurred_at.tzinfo else occurred_at.replace(tzinfo=UTC)).date()


def period_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def check_entry(entry: JournalEntry, accounts: Mapping[str, uuid.UUID] | None,
                closed_periods: frozenset[str]) -> Reason | None:
    """The first reason (by precedence) the ledger refuses ``entry``, or None when it may post.

    ``accounts`` is the organisation's chart (code -> entity id), None when the org is unknown.
    One pass over the lines gathers every fault; the precedence is applied afterwards.
    """
    if not entry.event_id or len(entry.event_id) > EVENT_ID_LENGTH_MAX:
        return Reason.SCHEMA_INVALID
    amount_bad = code_bad = account_bad = False
    currency_bad = not _currency_valid(entry.currency)
    for line in entry.lines:
        if line.side != "DR" and line.side != "CR":
            return Reason.SCHEMA_INVALID
        amount = line.amount
        if not isinstance(amount, Decimal) or not amount.is_finite() or amount < 0:
            amount_bad = True
        if not _currency_valid(line.currency):
            currency_bad = True
        if not _smart_code_valid(line.smart_code):
            code_bad = True
        if accounts is not None and line.account not in accounts:
            account_bad = True
    if amount_bad:
        return Reason.AMOUNT_INVALID
    if currency_bad:
        return Reason.CURRENCY_UNKNOWN
    if accounts is None:
        return Reason.ORG_UNKNOWN
    if code_bad or not _smart_code_valid(entry.smart_code):
        return Reason.SMART_CODE_INVALID
    if account_bad:
        return Reason.ACCOUNT_UNKNOWN
    if closed_periods and period_of(business_date(entry.occurred_at)) in closed_periods:
        return Reason.PERIOD_CLOSED
    if not LINES_PER_ENTRY_MIN <= len(entry.lines) <= LINES_PER_ENTRY_MAX or imbalances(entry.lines):
        return Reason.UNBALANCED
    return None


# A batch repeats a handful of smart codes and currencies thousands of times: remember the verdicts.
@lru_cache(maxsize=CODES_CACHED_MAX)
def _smart_code_valid(code: object) -> bool:
    return isinstance(code, str) and SMART_CODE_RE.fullmatch(code) is not None


@lru_cache(maxsize=CODES_CACHED_MAX)
def _currency_valid(code: object) -> bool:
    return isinstance(code, str) and CURRENCY_RE.fullmatch(code) is not None


def _as_is(value: object) -> object:
    return value


def numeric_text(value: object) -> str:
    """A numeric value as exact decimal text (what asyncpg's binary encoder would send: a Decimal, or
    ``Decimal(value)`` for anything else). Staged as text, it costs the client a fraction of the binary
    encoding of a Decimal; PostgreSQL's numeric input reads it back to the same value and scale."""
    return str(value) if type(value) is Decimal else str(Decimal(value))  # type: ignore[arg-type]


def entry_row(entry_id: uuid.UUID, org_id: uuid.UUID, entry: JournalEntry,
              numeric: Callable[[object], object] = _as_is) -> tuple:
    """An entry row (column order = ``ENTRY_COLUMNS``); ``numeric`` converts the amounts."""
    day = business_date(entry.occurred_at)
    occurred_at = entry.occurred_at if entry.occurred_at.tzinfo else entry.occurred_at.replace(tzinfo=UTC)
    metadata = json.dumps(entry.metadata, default=str, ensure_ascii=False) if entry.metadata else "{}"
    return (entry_id, org_id, entry.event_id, entry.smart_code, day, period_of(day), occurred_at,
            entry.currency, numeric(entry.total), entry.source, numeric(entry.confidence), entry.reference,
            entry.description, entry.counterparty, metadata, entry.created_by)


def line_rows(entry_id: uuid.UUID, org_id: uuid.UUID, entry: JournalEntry,
              accounts: Mapping[str, uuid.UUID], numeric: Callable[[object], object] = _as_is) -> list[tuple]:
    """Line rows (column order = ``LINE_COLUMNS``); ``numeric`` converts the amounts."""
    return [(entry_id, number, org_id, accounts[line.account], line.side, numeric(line.amount), line.currency,
             line.smart_code, line.description, entry.created_by)
            for number, line in enumerate(entry.lines, start=1)]


ENTRY_COLUMNS = ("id", "organization_id", "event_id", "smart_code", "transaction_date", "posting_period",
                 "occurred_at", "currency", "total_amount", "source", "confidence", "reference", "description",
                 "counterparty", "metadata", "created_by")
LINE_COLUMNS = ("transaction_id", "line_number", "organization_id", "account_id", "side", "amount", "currency",
                "smart_code", "description", "created_by")


@dataclass(slots=True)
class Plan:
    """What to do with one batch: results decided without the database, and rows to stage."""

    results: list[PostResult | None]          # None: decided by the insert (POSTED or DUPLICATE)
    pending: list[int]                        # input indexes to insert, in input order
    entry_ids: list[uuid.UUID | None]
    orgs: list[uuid.UUID | None]              # each entry's organisation, parsed once
    rejected_keys: list[tuple[int, uuid.UUID, str]]   # (index, org, event_id): may still be duplicates
    dup_of: dict[int, int]                    # later index -> first index of the same key in the batch


def plan_batch(entries: Sequence[JournalEntry], charts: Mapping[uuid.UUID, Mapping[str, uuid.UUID]],
               closed: Mapping[uuid.UUID, frozenset[str]]) -> Plan:
    """Decide, per entry, reject / in-batch duplicate / insert. Pure."""
    results: list[PostResult | None] = [None] * len(entries)
    entry_ids: list[uuid.UUID | None] = [None] * len(entries)
    orgs: list[uuid.UUID | None] = [None] * len(entries)
    pending: list[int] = []
    rejected: list[tuple[int, uuid.UUID, str]] = []
    seen: dict[tuple[uuid.UUID, str], int] = {}
    dup_of: dict[int, int] = {}
    for i, entry in enumerate(entries):
        org = orgs[i] = org_uuid(entry.organization_id)
        if org is None:
            results[i] = PostResult(entry.event_id, str(entry.organization_id), Outcome.REJECTED, None,
                                    Reason.ORG_UNKNOWN)
            continue
        key = (org, entry.event_id)
        if key in seen:
            dup_of[i] = seen[key]
            continue
        seen[key] = i
        reason = check_entry(entry, charts.get(org), closed.get(org, frozenset()))
        if reason is not None:
            results[i] = PostResult(entry.event_id, str(org), Outcome.REJECTED, None, reason)
            if reason is not Reason.ORG_UNKNOWN:
                rejected.append((i, org, entry.event_id))
            continue
        entry_ids[i] = entry_id_for(org, entry.event_id)
        pending.append(i)
    return Plan(results, pending, entry_ids, orgs, rejected, dup_of)


def posted_result(entry: JournalEntry, entry_id: uuid.UUID | None, org_text: str) -> PostResult:
    """The result of an entry the insert created: ``finish``'s, and the one the store's audit rows
    chained ahead of the insert assume (``LedgerStore._chain_ahead``)."""
    return PostResult(entry.event_id, org_text, Outcome.POSTED, str(entry_id))


def finish(plan: Plan, entries: Sequence[JournalEntry], inserted: set[uuid.UUID],
           existing: Mapping[tuple[uuid.UUID, str], uuid.UUID]) -> list[PostResult]:
    """Results in input order, given the ids the insert created and the entries already stored."""
    out = plan.results
    org_text: dict[uuid.UUID | None, str] = {}
    for i in plan.pending:
        entry, entry_id, org = entries[i], plan.entry_ids[i], plan.orgs[i]
        org_str = org_text.get(org) or org_text.setdefault(org, str(org))
        if entry_id in inserted:
            out[i] = posted_result(entry, entry_id, org_str)
        else:
            prior = existing.get((org, entry.event_id), entry_id) if org is not None else entry_id
            out[i] = PostResult(entry.event_id, org_str, Outcome.DUPLICATE, str(prior))
    for i, org, event_id in plan.rejected_keys:
        prior = existing.get((org, event_id))
        if prior is not None:
            out[i] = PostResult(event_id, str(org), Outcome.DUPLICATE, str(prior))
    for i, first in plan.dup_of.items():
        first_result = out[first]
        if first_result is None:
            raise InvariantViolation("in-batch duplicate of an undecided entry")
        if first_result.outcome in (Outcome.POSTED, Outcome.DUPLICATE):
            out[i] = PostResult(entries[i].event_id, first_result.organization_id, Outcome.DUPLICATE,
                                first_result.entry_id)
        else:
            out[i] = first_result
    done = [r for r in out if r is not None]
    ensure(len(done) == len(entries), "every entry of a batch gets exactly one result")
    return done
