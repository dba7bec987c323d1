"""The posting store: journal entries into PostgreSQL, a batch per database transaction.

    store = await LedgerStore.connect(dsn, pool_size=8, timeout_seconds=10)
    results = await store.post_batch(entries)     # one PostResult per entry, in input order

A batch is checked in Python first (``posting.plan_batch``: unknown org or account, closed
period, bad smart code, unbalanced → that entry alone is REJECTED with its reason), then sent as
one array per column (amounts as exact decimal text, cheaper to encode than binary numeric) and
inserted by one ``INSERT … SELECT … FROM unnest(…) ON CONFLICT DO NOTHING RETURNING id`` (one round
trip, where a small batch's time goes: see BENCHMARKS.md): an entry whose key already exists is a DUPLICATE and adds nothing, without failing
the rest. The batch's audit rows (one per organisation, listing its entries) are chained in the
same database transaction. The database re-checks balance (its deferred check fired just before
the audit rows of a large batch, else at commit), the key by unique constraint, the period and
the organisation by trigger, and tenancy by RLS.

Personal text (an entry's counterparty, description and line descriptions; a review item's) is
sealed with its subject's key in the same database transaction before it is sent
(``ledger.privacy``): one statement per batch reads the batch's keys and creates the missing ones.
Reads of review items reveal it again (``[erased]`` once the subject is erased).

Work runs as ``hera_app`` acting for the batch's organisations (see ``tenancy``). Transient
failures (serialization, deadlock, lost connection) are retried with bounded, jittered backoff;
posting is idempotent, so a retry after an unacknowledged commit reports DUPLICATE, never twice.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

import asyncpg
import orjson

from pipeline.domain.entries import JournalEntry
from pipeline.domain.errors import ensure
from pipeline.domain.outcomes import Outcome
from pipeline.ledger import audit as audit_chain
from pipeline.ledger import privacy
from pipeline.ledger.cache import OrgCaches
from pipeline.ledger.chart import ACCOUNT_SMART_CODES, GL_ACCOUNT, standard_chart
from pipeline.ledger.errors import (
    LedgerError,
    OrganizationUnknownError,
    PeriodClosedError,
    TransientError,
    map_db_error,
)
from pipeline.ledger.posting import (
    ENTRY_COLUMNS,
    LINE_COLUMNS,
    Plan,
    PostResult,
    entry_row,
    finish,
    line_rows,
    numeric_text,
    plan_batch,
    posted_result,
)
from pipeline.ledger.tenancy import acting_transaction, org_uuid
from pipeline.observability import metrics
from pipeline.resilience import breaker as breakers

__all__ = ["LedgerStore", "PostResult"]

T = TypeVar("T")
BATCH_SIZE_MAX = 10_000
ATTEMPTS_MAX = 5
BACKOFF_BASE_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 2.0
PERIOD_RE = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
REVIEW_STATUSES = ("approved", "corrected")
SYSTEM_ACTOR = "hera-stream"
EARLY_CHECK_MIN_ENTRIES = 100
# Foreign-key checks are planned once per session and kept: planned while a table is still tiny,
# the default costs pick a sequential scan that then grows with the ledger (seen here: a batch
# of 1,000 going from 0.15 s to 0.5 s until autovacuum re-analysed). SSD-like random I/O cost
# keeps those checks on the index from the first row.
SESSION_SETTINGS = {"random_page_cost": "1.1"}

# A batch's rows travel in the INSERT itself, one round trip per table (a COPY into a staging table
# is two, plus the INSERT that moves the rows). Entries and lines go as one JSON array of rows each
# (``_json_rows``, expanded by ``_staged``); audit rows, a handful per batch, as one array per column
# (``_columns``, the arguments of the append functions). For the thousands of values of a large
# batch, asyncpg's array encoding costs the worker about ten times the CPU of orjson's JSON, and
# PostgreSQL reads the JSON no slower.
_ENTRY_TYPES = ("integer", "uuid", "uuid", "text", "text", "date", "text", "timestamptz", "text", "text", "text",
                "text", "text", "text", "text", "jsonb", "text")
_LINE_TYPES = ("uuid", "smallint", "uuid", "uuid", "text", "text", "text", "text", "text", "text")
_AUDIT_TYPES = ("uuid", "bigint", "text", "timestamptz", "text", "text", "text", "jsonb", "text", "text")
_PAYLOAD_JSON = json.JSONEncoder(ensure_ascii=False)   # json.dumps(payload, ensure_ascii=False), one encoder

_AUDIT_COLUMNS = ("organization_id", "seq", "record_key", "occurred_at", "actor", "action", "subject", "payload",
                  "prev_hash", "hash")
_STAGE_ENTRY_COLUMNS = ("ord", *ENTRY_COLUMNS)


def _staged(alias: str, columns: Sequence[str], types: Sequence[str], param: int) -> str:
    """``(SELECT (r->>0)::t1 AS c1, … FROM jsonb_array_elements($param::jsonb) r) AS alias``: rows from
    one JSON array of rows (``_json_rows``), each value cast from its text to the column's type."""
    values = ", ".join(f"(r->>{i})::{t} AS {c}" for i, (c, t) in enumerate(zip(columns, types, strict=True)))
    return f"(SELECT {values} FROM jsonb_array_elements(${param}::jsonb) AS r) AS {alias}"


def _json_rows(rows: Sequence[tuple[Any, ...]]) -> str:
    """Rows as one JSON array of arrays for ``_staged``: UUIDs, dates and aware datetimes (RFC 3339,
    microseconds kept) as text PostgreSQL reads back exactly, amounts already exact decimal text, None
    as null. Any other type is refused (TypeError), never converted loosely."""
    return orjson.dumps(rows, default=_uuid_text, option=orjson.OPT_NAIVE_UTC).decode()


def _uuid_text(value: object) -> str:
    """orjson writes ``uuid.UUID`` itself; asyncpg's own UUID type (ids read back from the database)
    is a subclass it does not know."""
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"not staged as JSON: {type(value).__name__}")


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows → one list per column (array parameters)."""
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


def _payload_text(payload: Any) -> str:
    """An audit payload as JSON text for its JSONB column (the chain hashes the payload's canonical form,
    not this text): orjson, or the standard library for what orjson refuses (e.g. integers beyond 64
    bits)."""
    try:
        return orjson.dumps(payload).decode()
    except TypeError:
        return _PAYLOAD_JSON.encode(payload)


# Amounts are staged as exact decimal text (posting.numeric_text) and read back as numeric here.
_NUMERIC_STAGED = ("total_amount", "confidence", "amount")
_ENTRY_VALUES = ", ".join(f"{c}::numeric AS {c}" if c in _NUMERIC_STAGED else c for c in ENTRY_COLUMNS)
_LINE_VALUES = ", ".join(f"{c}::numeric" if c in _NUMERIC_STAGED else c for c in LINE_COLUMNS)
# Rows go in in id order (a function of the key): concurrent batches that share keys then wait on
# each other's uncommitted keys in one global order, and queue instead of deadlocking. entry_number
# still follows input order ("ord"): the inner ORDER BY runs before the volatile nextval.
# ON CONFLICT without a target makes both unique indexes arbiters: the id is a function of
# (organization_id, event_id), so a clash on either is the same duplicate. With only the key as arbiter,
# two batches reaching the same new entry at the same moment could both pass the key's pre-check and
# the later one then failed on the primary key (a unique violation, the whole batch lost) instead of
# reporting a duplicate; seen as a rare failure of the concurrent-batches test.
_INSERT_STAGED_ENTRIES = f"""
INSERT INTO universal_transactions (entry_number, {", ".join(ENTRY_COLUMNS)}) OVERRIDING SYSTEM VALUE
SELECT entry_number, {", ".join(ENTRY_COLUMNS)}
  FROM (SELECT nextval('universal_transactions_entry_number_seq') AS entry_number, {_ENTRY_VALUES}
          FROM {_staged("stage_entries", _STAGE_ENTRY_COLUMNS, _ENTRY_TYPES, 1)} ORDER BY ord) s
 ORDER BY id
ON CONFLICT DO NOTHING
RETURNING id
"""
# No join in the common case (no duplicate in the batch): a cached generic plan for a join
# against a CTE can degrade to a nested loop over the staged rows (O(n^2)).


def _insert_staged_lines(param: int) -> str:
    """Lines from the JSON rows of parameter ``$param``."""
    return (f"INSERT INTO universal_transaction_lines ({', '.join(LINE_COLUMNS)})\n"
            f"SELECT {_LINE_VALUES} FROM {_staged('stage_lines', LINE_COLUMNS, _LINE_TYPES, param)}")


_INSERT_STAGED_LINES_OF = _insert_staged_lines(1) + " WHERE transaction_id = ANY($2::uuid[])"
# Entries and, when every one of them went in (the common case), their lines, in one statement: one
# round trip fewer per posting transaction. The lines' condition is one count of the entries inserted
# (a one-time filter, not a join); a batch with entries already in the ledger gets no lines here and
# adds those of its new entries with _INSERT_STAGED_LINES_OF. The lines' foreign keys are checked at
# the end of the statement, when its entries are there.
_INSERT_STAGED_ENTRIES_AND_LINES = f"""
WITH inserted AS ({_INSERT_STAGED_ENTRIES}),
     lines AS ({_insert_staged_lines(2)}
                WHERE (SELECT count(*) FROM inserted) = $3::bigint)
SELECT id FROM inserted
"""
# the rows and the move of their heads in one statement (migration 0030); heads move only through the
# SECURITY DEFINER function of migration 0010 (to the newest row in audit_log)
_APPEND_AUDIT = "SELECT hera_audit_append(" + ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(_AUDIT_TYPES)) + ")"
# Entries, lines and, once every entry went in, the batch's audit rows chained on the heads the
# store remembers (migration 0031: appended when the locked heads are those, else the heads are
# returned for the store to chain on): a short posting transaction in three round trips. The
# function's condition is the same one-time filter as the lines', so the heads are locked after the
# entries' keys, as in the separate statements (_INSERT_STAGED_ENTRIES).
_INSERT_STAGED_ENTRIES_LINES_AND_AUDIT = f"""
WITH inserted AS ({_INSERT_STAGED_ENTRIES}),
     lines AS ({_insert_staged_lines(2)}
                WHERE (SELECT count(*) FROM inserted) = $3::bigint),
     heads AS (SELECT h.appended, h.organization_id, h.seq, h.hash
                 FROM hera_audit_append_expected($4::uuid[], $5::bigint[], $6::text[],
                      {", ".join(f"${7 + i}::{t}[]" for i, t in enumerate(_AUDIT_TYPES))}) h
                WHERE (SELECT count(*) FROM inserted) = $3::bigint)
SELECT id, NULL::boolean AS appended, NULL::uuid AS organization_id, NULL::bigint AS seq, NULL::text AS hash
  FROM inserted
UNION ALL
SELECT NULL, appended, organization_id, seq, hash FROM heads
"""
HEADS_REMEMBERED_MAX = 65_536   # organisations whose audit chain head a store remembers
# Fire the commit-time balance check (0002/0004) at this point of the transaction instead.
_CHECK_BALANCE_NOW = "SET CONSTRAINTS universal_transactions_balanced IMMEDIATE"
_EXISTING = """
SELECT organization_id, event_id, id FROM universal_transactions
 WHERE (organization_id, event_id) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))
"""
_CHARTS = """
SELECT o.id AS org, e.entity_code AS code, e.id AS account_id
  FROM core_organizations o
  LEFT JOIN core_entities e ON e.organization_id = o.id AND e.entity_type = 'gl_account'
 WHERE o.id = ANY($1::uuid[])
"""
_CLOSED = "SELECT organization_id, period FROM posting_periods WHERE organization_id = ANY($1::uuid[]) AND closed"
_LOCK_HEADS = "SELECT organization_id, seq, hash FROM hera_audit_lock_heads($1::uuid[])"   # creates missing heads


class _Ahead(NamedTuple):
    """A posting batch's audit rows, chained before it is sent on the heads the store remembers."""

    orgs: list[uuid.UUID]                        # sorted: the heads' lock order
    heads: dict[uuid.UUID, tuple[int, str]]      # what the rows were chained on
    records: list[audit_chain.AuditRecord]
    links: list[audit_chain.ChainedRow]
    rows: list[tuple[Any, ...]]                  # for the append


class LedgerStore:
    """Writes and tenant-scoped reads of the ledger through an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool, *, timeout_seconds: float, attempts_max: int = ATTEMPTS_MAX,
                 clock: Callable[[], datetime] | None = None, caches: OrgCaches | None = None,
                 audit_key: bytes | None = None) -> None:
        from pipeline.ledger.audit_keys import load_key
        self._audit_key = audit_key if audit_key is not None else load_key()   # the chain's HMAC key
        self.pepper = privacy.pepper_from(self._audit_key)   # names -> subject ids (personal data)
        self._pool = pool
        self._timeout = timeout_seconds
        self._attempts_max = attempts_max
        self._clock = clock or (lambda: datetime.now(UTC))
        # org settings, charts and learned memory (sizes and TTLs: pipeline/ledger/cache.py)
        self.caches = caches or OrgCaches.from_url(None)
        self.breaker = breakers.database()  # every database call goes through it (see _retrying)
        # the audit chain heads this store last moved, per organisation: a short posting batch chains
        # its rows on them before it is sent (see _INSERT_STAGED_ENTRIES_LINES_AND_AUDIT)
        self._heads: dict[uuid.UUID, tuple[int, str]] = {}

    @classmethod
    async def connect(cls, dsn: str, *, pool_size: int = 8, timeout_seconds: float = 10,
                      attempts_max: int = ATTEMPTS_MAX, clock: Callable[[], datetime] | None = None,
                      caches: OrgCaches | None = None, audit_key: bytes | None = None) -> LedgerStore:
        ensure(pool_size >= 1, "pool_size must be at least 1")
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=pool_size, timeout=timeout_seconds,
                                         command_timeout=timeout_seconds, reset=_keep_session, server_settings=SESSION_SETTINGS)
        return cls(pool, timeout_seconds=timeout_seconds, attempts_max=attempts_max, clock=clock, caches=caches,
                   audit_key=audit_key)

    async def close(self) -> None:
        await asyncio.wait_for(self._pool.close(), timeout=self._timeout)
        await self.caches.close()

    # ---------------------------------------------------------------- posting

    async def post_batch(self, entries: Sequence[JournalEntry], *, audit: bool = True) -> list[PostResult]:
        """Post ``entries`` in one database transaction; one result per entry, in input order."""
        ensure(len(entries) <= BATCH_SIZE_MAX, f"batch of {len(entries)} exceeds {BATCH_SIZE_MAX}")
        if not entries:
            return []
        orgs = sorted({o for o in (org_uuid(e.organization_id) for e in entries) if o is not None})

        async def attempt() -> list[PostResult]:
            try:
                return await self._post_once(entries, orgs, audit)
            except Exception:
                # what was cached may be why (a period closed meanwhile): the next attempt re-reads it
                for org in orgs:
                    await self.caches.invalidate(str(org), ["periods"])
                raise

        results = await self._retrying(attempt, retry_period_closed=True)
        metrics.ENTRIES_POSTED.inc(sum(1 for r in results if r.outcome is Outcome.POSTED))
        return results

    async def _post_once(self, entries: Sequence[JournalEntry], orgs: list[uuid.UUID], audit: bool
                         ) -> list[PostResult]:
        async with self._pool.acquire(timeout=self._timeout) as conn, acting_transaction(conn, orgs):
            charts = await self._load_charts(conn, orgs, entries)
            plan = plan_batch(entries, charts, await self._closed_periods(conn, sorted(charts)))
            ahead = self._chain_ahead(entries, plan) if audit and 0 < len(plan.pending) < EARLY_CHECK_MIN_ENTRIES else None
            inserted, locked = (await self._insert_pending(conn, entries, plan, charts, ahead) if plan.pending
                                else (set(), None))
            lookups = [(plan.orgs[i], entries[i].event_id) for i in plan.pending if plan.entry_ids[i] not in inserted]
            lookups += [(org, event_id) for _, org, event_id in plan.rejected_keys]
            existing: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
            if lookups:
                rows = await conn.fetch(_EXISTING, [k[0] for k in lookups], [k[1] for k in lookups],
                                        timeout=self._timeout)
                existing = {(r["organization_id"], r["event_id"]): r["id"] for r in rows}
            results = finish(plan, entries, inserted, existing)
            posted = [i for i, r in enumerate(results) if r.outcome is Outcome.POSTED]
            if audit and len(posted) >= EARLY_CHECK_MIN_ENTRIES:
                # The deferred balance check runs now, not at COMMIT: same check, but outside the
                # window in which this batch holds its organisations' audit chain heads (for a few
                # entries the check is cheaper than the extra round trip).
                await conn.execute(_CHECK_BALANCE_NOW, timeout=self._timeout)
            if audit and posted and ahead is not None and locked is not None:
                # every entry went in, so the batch posted what was chained ahead: appended already,
                # or to chain on the heads as they were locked
                if locked:
                    await self._append_chained(conn, ahead.records, locked)
                else:
                    self._remember_heads(ahead.links)
            elif audit and posted:
                # The chain heads are locked last, only for organisations that posted, and held to
                # COMMIT: concurrent batches overlap everything up to here (see _INSERT_STAGED_ENTRIES
                # for why key waits and head locks cannot form a cycle).
                heads = await self._lock_heads(conn, sorted({o for i in posted if (o := plan.orgs[i]) is not None}))
                now = self._clock()   # one posting time for the batch: its entries commit together
                await self._append_chained(conn, _posted_records([(entries[i], results[i]) for i in posted], now),
                                           heads)
        return results

    def _chain_ahead(self, entries: Sequence[JournalEntry], plan: Plan) -> _Ahead | None:
        """The audit rows the batch will append if every accepted entry goes in, chained on the heads
        this store remembers; None when it remembers none for one of the organisations."""
        orgs = sorted({o for i in plan.pending if (o := plan.orgs[i]) is not None})
        heads = {org: self._heads[org] for org in orgs if org in self._heads}
        if not orgs or len(heads) < len(orgs):
            return None
        now = self._clock()   # one posting time for the batch: its entries commit together
        records = _posted_records([(entries[i], posted_result(entries[i], plan.entry_ids[i], str(plan.orgs[i])))
                                   for i in plan.pending], now)
        links, rows = self._chain(records, heads)
        return _Ahead(orgs, heads, records, links, rows)

    async def _insert_pending(self, conn: asyncpg.Connection, entries: Sequence[JournalEntry], plan: Plan,
                              charts: Mapping[uuid.UUID, Mapping[str, uuid.UUID]], ahead: _Ahead | None = None
                              ) -> tuple[set[uuid.UUID], dict[uuid.UUID, tuple[int, str]] | None]:
        """Stage the plan's accepted entries and move them into the ledger: the ids inserted now and, with
        ``ahead`` and when every entry went in, the heads as locked if its rows were not appended
        (empty when they were); None when they were not tried."""
        entry_records, line_records = [], []
        sealed = await privacy.seal_batch(conn, [entries[i] for i in plan.pending], self.pepper, timeout=self._timeout)
        for i, entry in zip(plan.pending, sealed, strict=True):
            entry_id, org = plan.entry_ids[i], plan.orgs[i]
            entry_records.append((i, *entry_row(entry_id, org, entry, numeric_text)))  # type: ignore[arg-type]
            line_records.extend(line_rows(entry_id, org, entry, charts[org], numeric_text))  # type: ignore[arg-type,index]
        staged_entries, lines = _json_rows(entry_records), _json_rows(line_records)
        if ahead is None:
            rows = await conn.fetch(_INSERT_STAGED_ENTRIES_AND_LINES, staged_entries, lines, len(entry_records),
                                    timeout=self._timeout)
        else:
            rows = await conn.fetch(_INSERT_STAGED_ENTRIES_LINES_AND_AUDIT, staged_entries, lines, len(entry_records),
                                    ahead.orgs, [ahead.heads[o][0] for o in ahead.orgs],
                                    [ahead.heads[o][1] for o in ahead.orgs],
                                    *_columns(ahead.rows, len(_AUDIT_COLUMNS)), timeout=self._timeout)
        inserted = {r[0] for r in rows if r[0] is not None}
        if inserted and len(inserted) < len(entry_records):
            await conn.execute(_INSERT_STAGED_LINES_OF, lines, list(inserted), timeout=self._timeout)
        tried = [r for r in rows if r[1] is not None] if ahead is not None else []
        if not tried:
            return inserted, None
        appended = any(r[1] for r in tried)
        return inserted, {} if appended else {r[2]: (r[3], r[4]) for r in tried if r[2] is not None}

    # ---------------------------------------------------------------- audit

    async def append_audit(self, records: Sequence[audit_chain.AuditRecord]) -> list[audit_chain.ChainedRow]:
        """Append ``records`` to their organisations' hash chains (a known ``record_key`` is skipped)."""
        if not records:
            return []

        async def once() -> list[audit_chain.ChainedRow]:
            orgs = sorted({_require_uuid(r.organization_id) for r in records})
            async with self._pool.acquire(timeout=self._timeout) as conn, acting_transaction(conn, orgs):
                heads = await self._lock_heads(conn, orgs)
                missing = set(orgs) - set(heads)
                if missing:
                    raise OrganizationUnknownError(f"unknown organisations: {sorted(map(str, missing))}")
                keys = [(uuid.UUID(str(r.organization_id)), r.record_key) for r in records if r.record_key]
                seen: set[tuple[uuid.UUID, str]] = set()
                if keys:
                    rows = await conn.fetch(
                        "SELECT organization_id, record_key FROM audit_log WHERE (organization_id, record_key)"
                        " IN (SELECT * FROM unnest($1::uuid[], $2::text[]))",
                        [k[0] for k in keys], [k[1] for k in keys], timeout=self._timeout)
                    seen = {(r["organization_id"], r["record_key"]) for r in rows}
                fresh = []
                for rec in records:
                    key = (uuid.UUID(str(rec.organization_id)), rec.record_key)
                    if rec.record_key and key in seen:
                        continue
                    if rec.record_key:
                        seen.add(key)  # type: ignore[arg-type]
                    fresh.append(rec)
                return await self._append_chained(conn, fresh, heads)

        return await self._retrying(once)

    async def _lock_heads(self, conn: asyncpg.Connection, orgs: Sequence[uuid.UUID]) -> dict[uuid.UUID, tuple[int, str]]:
        """Lock the chain heads of ``orgs`` (sorted order: no deadlock between batches)."""
        rows = await conn.fetch(_LOCK_HEADS, list(orgs), timeout=self._timeout)
        return {r["organization_id"]: (r["seq"], r["hash"]) for r in rows}

    async def _append_chained(self, conn: asyncpg.Connection, records: Sequence[audit_chain.AuditRecord],
                              heads: dict[uuid.UUID, tuple[int, str]]) -> list[audit_chain.ChainedRow]:
        chained, rows = self._chain(records, heads)
        if not chained:
            return []
        await conn.execute(_APPEND_AUDIT, *_columns(rows, len(_AUDIT_COLUMNS)), timeout=self._timeout)
        self._remember_heads(chained)
        return chained

    def _remember_heads(self, chained: Sequence[audit_chain.ChainedRow]) -> None:
        """Where ``chained`` (just appended) leaves each organisation's head, for the next batch to
        chain on (if the transaction does not commit, that batch finds other heads and chains on those)."""
        if len(self._heads) >= HEADS_REMEMBERED_MAX:
            self._heads.clear()
        for row in chained:
            self._heads[uuid.UUID(row.organization_id)] = (row.seq, row.hash)

    def _chain(self, records: Sequence[audit_chain.AuditRecord], heads: Mapping[uuid.UUID, tuple[int, str]]
               ) -> tuple[list[audit_chain.ChainedRow], list[tuple[Any, ...]]]:
        """``records`` chained on ``heads`` (per organisation), and their rows for ``_APPEND_AUDIT``."""
        by_org: dict[uuid.UUID, list[audit_chain.AuditRecord]] = defaultdict(list)
        for rec in records:
            by_org[_require_uuid(rec.organization_id)].append(rec)
        chained: list[audit_chain.ChainedRow] = []
        rows: list[tuple] = []
        for org, recs in by_org.items():
            ensure(org in heads, f"audit head of {org} not locked")
            links = audit_chain.chain(recs, *heads[org], self._audit_key)
            chained.extend(links)
            rows.extend((org, r.seq, r.record_key, r.occurred_at, r.actor, r.action, r.subject, _payload_text(r.payload),
                         r.prev_hash, r.hash) for r in links)
        return chained, rows

    # ---------------------------------------------------------------- organisations

    async def ensure_organization(self, org_id: str, name: str | None = None, *,
                                  settings: Mapping[str, Any] | None = None, actor: str = SYSTEM_ACTOR) -> bool:
        """Register ``org_id`` and seed the standard chart of accounts; True if it was created now."""
        return bool(await self.ensure_organizations([org_id], names={org_id: name} if name else None,
                                                    settings=settings, actor=actor))

    async def ensure_organizations(self, org_ids: Sequence[str], *, names: Mapping[str, str] | None = None,
                                   settings: Mapping[str, Any] | None = None,
                                   actor: str = SYSTEM_ACTOR) -> set[str]:
        """Register every organisation of ``org_ids`` not yet known, each with the standard chart of
        accounts and an audit chain head, in one transaction; returns the ids created now."""
        orgs = sorted({_require_uuid(o) for o in org_ids})
        if not orgs:
            return set()
        named: dict[uuid.UUID, str] = {_require_uuid(k): v for k, v in (names or {}).items()}
        chart = standard_chart()

        async def once() -> set[uuid.UUID]:
            async with _TenantTx(self._pool, orgs, self._timeout) as conn:
                rows = await conn.fetch(
                    "INSERT INTO core_organizations (id, organization_name, settings, created_by)"
                    " SELECT o, n, $3::jsonb, $4 FROM unnest($1::uuid[], $2::text[]) AS x(o, n)"
                    " ON CONFLICT (id) DO NOTHING RETURNING id",
                    orgs, [named.get(o) or str(o) for o in orgs], json.dumps(dict(settings or {}), default=str),
                    actor, timeout=self._timeout)
                created = [r["id"] for r in rows]
                if not created:
                    return set()
                await conn.execute(
                    "INSERT INTO core_entities (organization_id, entity_type, entity_code, entity_name, smart_code,"
                    " metadata, created_by)"
                    " SELECT o, $2, c, n, s, jsonb_build_object('account_type', t, 'normal_side', d), $8"
                    " FROM unnest($1::uuid[]) AS orgs(o),"
                    " unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) AS x(c, n, t, d, s)"
                    " ON CONFLICT DO NOTHING",
                    created, GL_ACCOUNT, [a.code for a in chart], [a.name for a in chart], [a.type for a in chart],
                    [a.normal_side for a in chart], [ACCOUNT_SMART_CODES[a.type] for a in chart], actor,
                    timeout=self._timeout)
                await conn.execute("SELECT count(*) FROM hera_audit_lock_heads($1::uuid[])", created,
                                   timeout=self._timeout)   # the chain heads, at genesis
                return set(created)

        created = await self._retrying(once)
        for org in orgs:
            await self.caches.invalidate(str(org))
        return {str(o) for o in created}

    async def add_account(self, org_id: str, code: str, name: str, account_type: str, normal_side: str, *,
                          actor: str = SYSTEM_ACTOR) -> bool:
        """Add a GL account to one organisation's chart (e.g. the target of an account override)."""
        org = _require_uuid(org_id)
        ensure(account_type in ACCOUNT_SMART_CODES and normal_side in ("DR", "CR"), "bad account type or side")

        async def once() -> bool:
            async with self._tenant(org) as conn:
                return bool(await conn.fetchval(
                    "INSERT INTO core_entities (organization_id, entity_type, entity_code, entity_name, smart_code,"
                    " metadata, created_by) VALUES ($1, $2, $3, $4, $5,"
                    " jsonb_build_object('account_type', $6::text, 'normal_side', $7::text), $8)"
                    " ON CONFLICT DO NOTHING RETURNING true",
                    org, GL_ACCOUNT, code, name, ACCOUNT_SMART_CODES[account_type], account_type, normal_side,
                    actor, timeout=self._timeout))

        added = await self._retrying(once)
        await self.caches.invalidate(str(org), ["chart"])
        return added

    async def organization_exists(self, org_id: str) -> bool:
        org = org_uuid(org_id)
        if org is None:
            return False

        async def once() -> bool:
            async with self._tenant(org) as conn:
                return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM core_organizations WHERE id = $1)",
                                                org, timeout=self._timeout))

        return await self._retrying(once)

    async def known_organizations(self) -> set[str]:
        """Every registered organisation (an admin read: needs the superuser/BYPASSRLS owner DSN)."""
        async def once() -> set[str]:
            async with self._pool.acquire(timeout=self._timeout) as conn:
                rows = await conn.fetch("SELECT hera_known_organizations() AS id", timeout=self._timeout)
            return {str(r["id"]) for r in rows}

        return await self._retrying(once)

    async def org_settings(self, org_id: str) -> dict[str, Any]:
        """The organisation's settings (rate limit, thresholds, account overrides …); {} if unknown."""
        return (await self.org_settings_many([org_id])).get(org_id, {})

    async def org_settings_many(self, org_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Settings of several organisations (cached; the rest in one round trip); unknown ones are
        left out."""
        async def read(conn: asyncpg.Connection, orgs: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
            rows = await conn.fetch("SELECT id, settings::text AS s FROM core_organizations WHERE id = ANY($1)",
                                    orgs, timeout=self._timeout)
            return {r["id"]: json.loads(r["s"]) if r["s"] else {} for r in rows}

        return await self._cached_per_org("settings", org_ids, read, missing=None)

    async def set_org_settings(self, org_id: str, settings: Mapping[str, Any], *, replace: bool = False) -> dict[str, Any]:
        """Merge ``settings`` into the organisation's (top-level keys), or replace them; returns the result."""
        org = _require_uuid(org_id)
        expr = "$2::jsonb" if replace else "settings || $2::jsonb"

        async def once() -> dict[str, Any]:
            async with self._tenant(org) as conn:
                raw = await conn.fetchval(
                    f"UPDATE core_organizations SET settings = {expr}, updated_at = now() WHERE id = $1"
                    " RETURNING settings::text", org, json.dumps(dict(settings), default=str), timeout=self._timeout)
            if raw is None:
                raise OrganizationUnknownError(f"unknown organisation {org}")
            return json.loads(raw)

        changed = await self._retrying(once)
        await self.caches.invalidate(str(org), ["settings", "catalog"])
        return changed

    async def set_period_closed(self, org_id: str, period: str, closed: bool = True, *,
                                actor: str = SYSTEM_ACTOR) -> None:
        """Close (or reopen) a posting period 'YYYY-MM' of one organisation."""
        org = _require_uuid(org_id)
        if not PERIOD_RE.fullmatch(period):
            raise ValueError(f"period must be YYYY-MM, got {period!r}")

        async def once() -> None:
            async with self._tenant(org) as conn:
                if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM core_organizations WHERE id = $1)", org):
                    raise OrganizationUnknownError(f"unknown organisation {org}")
                await conn.execute(
                    "INSERT INTO posting_periods (organization_id, period, closed, changed_by) VALUES ($1, $2, $3, $4)"
                    " ON CONFLICT (organization_id, period) DO UPDATE"
                    " SET closed = EXCLUDED.closed, changed_at = now(), changed_by = EXCLUDED.changed_by",
                    org, period, closed, actor, timeout=self._timeout)

        await self._retrying(once)
        await self.caches.invalidate(str(org), ["periods"])

    # ---------------------------------------------------------------- review queue and classifier memory

    async def add_review(self, org_id: str, event_id: str, payload: Mapping[str, Any], *,
                         suggested_smart_code: str | None, confidence: float | None, reason: str | None = None
                         ) -> str | None:
        """Queue an event for review; the item's id, or None if the event is already queued."""
        org = _require_uuid(org_id)

        async def once() -> str | None:
            async with self._tenant(org) as conn:
                sealed = (await privacy.seal_payloads(conn, [(org, payload)], self.pepper, timeout=self._timeout))[0]
                item = await conn.fetchval(
                    "INSERT INTO review_items (organization_id, event_id, payload, suggested_smart_code, confidence,"
                    " reason) VALUES ($1, $2, $3::jsonb, $4, $5, $6)"
                    " ON CONFLICT (organization_id, event_id) DO NOTHING RETURNING id",
                    org, event_id, json.dumps(sealed, default=str), suggested_smart_code,
                    None if confidence is None else round(float(confidence), 5), reason, timeout=self._timeout)
            return None if item is None else str(item)

        return await self._retrying(once)

    async def add_reviews(self, items: Sequence[Mapping[str, Any]]) -> int:
        """Queue many events for review in one transaction (keys as ``add_review``'s arguments:
        org_id, event_id, payload, suggested_smart_code, confidence, reason); already queued
        events are left as they are. Returns how many were new."""
        if not items:
            return 0
        orgs = sorted({_require_uuid(i["org_id"]) for i in items})

        async def once() -> int:
            async with _TenantTx(self._pool, orgs, self._timeout) as conn:
                payloads = await privacy.seal_payloads(conn, [(i["org_id"], i["payload"]) for i in items], self.pepper,
                                                       timeout=self._timeout)
                rows = [(_require_uuid(i["org_id"]), i["event_id"], json.dumps(p, default=str),
                         i.get("suggested_smart_code"),
                         None if i.get("confidence") is None else round(float(i["confidence"]), 5), i.get("reason"))
                        for i, p in zip(items, payloads, strict=True)]
                inserted = await conn.fetchval(
                    "WITH new AS (INSERT INTO review_items (organization_id, event_id, payload, suggested_smart_code,"
                    " confidence, reason) SELECT * FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::text[],"
                    " $5::numeric[], $6::text[]) ON CONFLICT (organization_id, event_id) DO NOTHING RETURNING 1)"
                    " SELECT count(*) FROM new",
                    [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
                    [r[4] for r in rows], [r[5] for r in rows], timeout=self._timeout)
            return int(inserted)

        return await self._retrying(once)

    async def resolve_review(self, org_id: str, event_id: str, *, status: str, smart_code: str | None = None,
                             actor: str = SYSTEM_ACTOR) -> bool:
        """Mark an open review item approved or corrected; False if there is no open item."""
        org = _require_uuid(org_id)
        if status not in REVIEW_STATUSES:
            raise ValueError(f"status must be one of {REVIEW_STATUSES}, got {status!r}")

        async def once() -> bool:
            async with self._tenant(org) as conn:
                return bool(await conn.fetchval(
                    "UPDATE review_items SET status = $3, resolved_smart_code = coalesce($4, suggested_smart_code),"
                    " resolved_by = $5, resolved_at = now()"
                    " WHERE organization_id = $1 AND event_id = $2 AND status = 'open' RETURNING true",
                    org, event_id, status, smart_code, actor, timeout=self._timeout))

        return await self._retrying(once)

    async def get_review(self, org_id: str, event_id: str) -> dict[str, Any] | None:
        """One review item (any status), or None; its personal text revealed, ``erased`` true when its
        subject was erased (the text then reads ``[erased]``)."""
        org = _require_uuid(org_id)

        async def once() -> dict[str, Any] | None:
            async with self._tenant(org) as conn:
                row = await conn.fetchrow(
                    "SELECT id::text, event_id, payload::text, suggested_smart_code, confidence::text, reason, status,"
                    " resolved_smart_code FROM review_items WHERE organization_id = $1 AND event_id = $2",
                    org, event_id, timeout=self._timeout)
                return None if row is None else (await _revealed(conn, org, [dict(row)]))[0]

        return await self._retrying(once)

    async def open_reviews(self, org_id: str, *, limit: int = 100) -> list[dict[str, Any]]:
        org = _require_uuid(org_id)

        async def once() -> list[dict[str, Any]]:
            async with self._tenant(org) as conn:
                rows = await conn.fetch(
                    "SELECT id::text, event_id, payload::text, suggested_smart_code, confidence::text, reason,"
                    " created_at FROM review_items WHERE organization_id = $1 AND status = 'open'"
                    " ORDER BY created_at LIMIT $2", org, limit, timeout=self._timeout)
                return await _revealed(conn, org, [{**dict(r), "created_at": r["created_at"].isoformat()}
                                                   for r in rows])

        return await self._retrying(once)

    async def load_memory(self, org_id: str) -> dict[str, Any]:
        return (await self.load_memory_many([org_id])).get(org_id, {})

    async def load_memory_many(self, org_ids: Sequence[str], *, fresh: bool = False) -> dict[str, dict[str, Any]]:
        """Learned memory of several organisations in one round trip: {org: {key: value}} (``fresh``:
        from the database, not the cache)."""
        async def read(conn: asyncpg.Connection, orgs: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
            rows = await conn.fetch("SELECT organization_id, key, value::text FROM classifier_memory"
                                    " WHERE organization_id = ANY($1)", orgs, timeout=self._timeout)
            out: dict[uuid.UUID, dict[str, Any]] = {}
            for r in rows:
                out.setdefault(r["organization_id"], {})[r["key"]] = json.loads(r["value"])
            return out

        if fresh:
            return await self._read_per_org(org_ids, read)
        return await self._cached_per_org("memory", org_ids, read, missing={})

    async def _cached_per_org(self, kind: str, org_ids: Sequence[str],
                              read: Callable[[asyncpg.Connection, list[uuid.UUID]], Awaitable[dict[uuid.UUID, Any]]],
                              *, missing: Any) -> dict[str, Any]:
        """``_read_per_org`` through the ``kind`` cache. Organisations ``read`` finds nothing for are
        left out, as there; they are cached as ``missing`` (a value ``read`` never returns) unless it is
        None."""
        keys = {o: str(_require_uuid(o)) for o in org_ids}
        cached = await self.caches.get_many(kind, set(keys.values()))
        todo = [o for o, k in keys.items() if k not in cached]
        if todo:
            found = await self._read_per_org(todo, read)
            fresh = {keys[o]: found.get(o, missing) for o in todo}
            fresh = {k: v for k, v in fresh.items() if v is not None}
            await self.caches.set_many(kind, fresh)
            cached.update(fresh)
        return {o: cached[k] for o, k in keys.items() if k in cached and cached[k] != missing}

    async def amount_histories(self, org_ids: Sequence[str]) -> dict[str, Any]:
        """Per organisation, smart code -> ``outliers.AmountHistory`` (the outlier rule's input)."""
        from pipeline.ledger.history import read_histories
        return await self._read_per_org(org_ids, read_histories)

    async def _read_per_org(self, org_ids: Sequence[str], read: Callable[[asyncpg.Connection, list[uuid.UUID]],
                                                                         Awaitable[dict[uuid.UUID, Any]]]
                            ) -> dict[str, Any]:
        """``read`` for several organisations in one transaction acting for all of them, keyed back
        by the ids as given; organisations ``read`` found nothing for are left out."""
        ids = {o: _require_uuid(o) for o in org_ids}
        orgs = sorted(set(ids.values()))
        if not orgs:
            return {}

        async def once() -> dict[uuid.UUID, Any]:
            async with _TenantTx(self._pool, orgs, self._timeout) as conn:
                return await read(conn, orgs)

        found = await self._retrying(once)
        return {o: found[i] for o, i in ids.items() if i in found}

    async def save_memory(self, org_id: str, memory: Mapping[str, Any]) -> None:
        """Upsert every key of ``memory`` (keys not named are kept)."""
        org = _require_uuid(org_id)
        if not memory:
            return

        async def once() -> None:
            async with self._tenant(org) as conn:
                await conn.execute(
                    "INSERT INTO classifier_memory (organization_id, key, value)"
                    " SELECT $1, k, v::jsonb FROM unnest($2::text[], $3::text[]) AS x(k, v)"
                    " ON CONFLICT (organization_id, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
                    org, list(memory), [json.dumps(v, default=str) for v in memory.values()], timeout=self._timeout)

        await self._retrying(once)
        await self.caches.invalidate(str(org), ["memory"])

    # ---------------------------------------------------------------- plumbing

    def _tenant(self, org: uuid.UUID) -> _TenantTx:
        return _TenantTx(self._pool, [org], self._timeout)

    async def _load_charts(self, conn: asyncpg.Connection, orgs: Sequence[uuid.UUID],
                           entries: Sequence[JournalEntry]) -> dict[uuid.UUID, dict[str, uuid.UUID]]:
        """Charts of the batch's organisations, from cache; reloaded when a code is missing."""
        cached = await self.caches.get_many("chart", [str(o) for o in orgs])
        charts = {o: _chart_ids(cached[str(o)]) for o in orgs if str(o) in cached}
        stale = {o for o in orgs if o not in charts}
        for entry in entries:
            org = org_uuid(entry.organization_id)
            chart = charts.get(org) if org is not None else None
            if chart is not None and any(line.account not in chart for line in entry.lines):
                stale.add(org)  # type: ignore[arg-type]
        if stale:
            loaded: dict[uuid.UUID, dict[str, uuid.UUID]] = {}
            for row in await conn.fetch(_CHARTS, sorted(stale), timeout=self._timeout):
                chart = loaded.setdefault(row["org"], {})
                if row["code"] is not None:
                    chart[row["code"]] = row["account_id"]
            for org in stale:
                charts.pop(org, None)
            charts.update(loaded)
            await self.caches.set_many("chart", {str(o): ({k: str(v) for k, v in c.items()} if self.caches.shared else c)
                                                 for o, c in loaded.items()})
        return {o: charts[o] for o in orgs if o in charts}

    async def _closed_periods(self, conn: asyncpg.Connection, orgs: Sequence[uuid.UUID]
                              ) -> dict[uuid.UUID, frozenset[str]]:
        """Closed periods of ``orgs``, from cache; the missing ones read in this transaction."""
        cached = await self.caches.get_many("periods", [str(o) for o in orgs])
        closed = {o: frozenset(cached[str(o)]) for o in orgs if str(o) in cached}
        missing = [o for o in orgs if o not in closed]
        if missing:
            found: dict[uuid.UUID, set[str]] = {o: set() for o in missing}
            for row in await conn.fetch(_CLOSED, missing, timeout=self._timeout):
                found[row["organization_id"]].add(row["period"])
            await self.caches.set_many("periods", {str(o): sorted(p) for o, p in found.items()})
            closed.update((o, frozenset(p)) for o, p in found.items())
        return closed

    async def _retrying(self, op: Callable[[], Awaitable[T]], *, retry_period_closed: bool = False) -> T:
        """``op`` under the product's one retry policy (``pipeline/resilience/retry.py``): database
        errors mapped to the ledger's (by SQLSTATE); transient ones retried with jittered backoff, and,
        for posting, a period closed between our check and the insert (the re-plan then rejects it)."""
        from pipeline.resilience.retry import retry_policy

        async def once() -> T:
            try:
                return await self.breaker.call(op)
            except breakers.CircuitOpenError:
                raise  # the database is treated as down: the caller backs off (and pauses), not us
            except LedgerError as err:
                failure: LedgerError = err
            except (TimeoutError, asyncpg.PostgresError, OSError) as exc:
                failure = map_db_error(exc)
            except Exception as exc:
                if not (isinstance(exc, asyncpg.InterfaceError) or breakers.lost_connection(exc)):
                    raise
                # the connection died under a query (asyncpg raises client-side errors for it): an outage
                failure = TransientError(f"connection problem: {type(exc).__name__}")
                failure.__cause__ = exc
            if breakers.is_infrastructure_fault(failure.__cause__ or failure):
                # the server went away: its pooled connections are dead too; without this each later
                # call (the breaker's trial calls included) would find one more dead connection
                await self._pool.expire_connections()
            raise failure

        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, breakers.CircuitOpenError):
                return False
            # a period closed between our check and the insert: re-plan (the check now rejects it)
            return isinstance(exc, TransientError) or (retry_period_closed and isinstance(exc, PeriodClosedError))

        policy = retry_policy("ledger", attempts_max=self._attempts_max, is_retryable=retryable,
                              backoff_base_seconds=BACKOFF_BASE_SECONDS, backoff_cap_seconds=BACKOFF_CAP_SECONDS)
        return await policy.call(once)


class _TenantTx:
    """``async with``: a pooled connection in a transaction acting for the given organisations."""

    def __init__(self, pool: asyncpg.Pool, orgs: list[uuid.UUID], timeout: float) -> None:
        self._pool, self._orgs, self._timeout = pool, orgs, timeout

    async def __aenter__(self) -> asyncpg.Connection:
        self._acquire = self._pool.acquire(timeout=self._timeout)
        conn = await self._acquire.__aenter__()
        self._tx = acting_transaction(conn, self._orgs)
        try:
            await self._tx.__aenter__()
        except BaseException as exc:  # not begun (the pool rolls back whatever BEGIN left open)
            await self._acquire.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return conn

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            await self._tx.__aexit__(*exc_info)
        finally:
            await self._acquire.__aexit__(*exc_info)


async def _revealed(conn: asyncpg.Connection, org: uuid.UUID, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Review rows with their payload parsed and its personal text revealed (one query for the keys)."""
    for r in rows:
        r["payload"] = json.loads(r["payload"])
    rev = await privacy.revealer(conn, [(org, v) for r in rows for v in privacy.payload_values(r["payload"])])
    for r in rows:
        r["erased"] = any(rev.erased(org, v) for v in privacy.payload_values(r["payload"]))
        r["payload"] = rev.payload(org, r["payload"])
    return rows


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset on release (asyncpg has already rolled back an open transaction): nothing
    more. The store changes nothing beyond its transactions (every setting is LOCAL), so the default reset query (``RESET ALL``, ``CLOSE ALL``, ``UNLISTEN *``,
    advisory unlock) would be one more round trip per transaction for nothing."""


def _posted_records(posted: Sequence[tuple[JournalEntry, PostResult]], now: datetime
                    ) -> list[audit_chain.AuditRecord]:
    """One chained audit row per organisation (and actor) per batch, listing every entry it posted with what
    identifies its content (see ``audit.ENTRIES_POSTED``): the chain makes the list tamper-evident and
    ``hera verify`` checks the ledger against it, entry by entry. (A row per entry cost more than
    the entries' own inserts.) The record key names the batch by its first entry, so a batch is
    recorded once."""
    groups: dict[tuple[str, str], list[tuple[JournalEntry, PostResult]]] = defaultdict(list)
    for entry, result in posted:
        groups[(result.organization_id, entry.created_by)].append((entry, result))
    return [audit_chain.AuditRecord(
        organization_id=org, action=audit_chain.ENTRIES_POSTED, actor=actor, occurred_at=now, subject=None,
        record_key=f"{audit_chain.ENTRIES_POSTED}:{group[0][1].entry_id}",
        payload=audit_chain.entries_posted_payload((entry, str(result.entry_id)) for entry, result in group))
        for (org, actor), group in groups.items()]


def _chart_ids(chart: Mapping[str, Any]) -> dict[str, uuid.UUID]:
    """A cached chart with UUID account ids (Redis holds them as text)."""
    if all(isinstance(v, uuid.UUID) for v in chart.values()):
        return dict(chart)
    return {code: v if isinstance(v, uuid.UUID) else uuid.UUID(v) for code, v in chart.items()}


def _require_uuid(value: object) -> uuid.UUID:
    org = org_uuid(value)
    if org is None:
        raise ValueError(f"not an organisation id (UUID): {value!r}")
    return org
