"""``hera verify``, database half: docs/invariants.md invariants 1, 2, 4 (and 5 through ``verify_audit``)
checked directly in PostgreSQL, reported as JSON-able counts with ``ok``.

Needs the admin (migrating, superuser or BYPASSRLS) connection: it must see every tenant's rows.
Besides the data, it checks that the guards are still in place (the unique key, every guard
trigger present and enabled, RLS enabled and forced on every tenant table and on core_clients,
the app and worker roles unable to bypass it, chain heads writable only through their function),
since a disabled guard is a violation waiting to happen. Each entry's header total must equal its
lines' debits, and each entry's header and lines must still hash to the digest its keyed audit
row recorded (``audit.entry_digest``): an edit made with the triggers off is found.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from pipeline.ledger.audit import entry_digest, verify_audit
from pipeline.ledger.migrate import APP_ROLE

_COUNTS = """
SELECT (SELECT count(*) FROM universal_transactions) AS entries,
       (SELECT count(*) FROM universal_transaction_lines) AS lines,
       (SELECT count(*) FROM core_organizations) AS organizations
"""
_UNBALANCED = """
SELECT count(*) FROM (
    SELECT h.id
      FROM universal_transactions h
      LEFT JOIN universal_transaction_lines l ON l.transaction_id = h.id
     GROUP BY h.id
    HAVING count(l.line_number) < 2
        OR bool_or(l.amount < 0)
        OR EXISTS (SELECT 1 FROM universal_transaction_lines x WHERE x.transaction_id = h.id
                    GROUP BY x.currency
                   HAVING sum(CASE x.side WHEN 'DR' THEN x.amount ELSE -x.amount END) <> 0)
) bad
"""
_DUPLICATE_KEYS = """
SELECT count(*) FROM (SELECT 1 FROM universal_transactions GROUP BY organization_id, event_id HAVING count(*) > 1) d
"""
_ORPHAN_LINES = """
SELECT count(*) FROM universal_transaction_lines l
 WHERE NOT EXISTS (SELECT 1 FROM universal_transactions h
                    WHERE h.id = l.transaction_id AND h.organization_id = l.organization_id)
    OR NOT EXISTS (SELECT 1 FROM core_entities e WHERE e.id = l.account_id
                      AND e.organization_id = l.organization_id AND e.entity_type = 'gl_account')
"""
# Journal entries and audit rows of an organisation that does not exist (0004 checks this per
# statement instead of by per-row foreign keys, and forbids deleting organisations).
_ORPHAN_ROWS = """
SELECT (SELECT count(*) FROM universal_transactions h
         WHERE NOT EXISTS (SELECT 1 FROM core_organizations o WHERE o.id = h.organization_id))
     + (SELECT count(*) FROM audit_log a
         WHERE NOT EXISTS (SELECT 1 FROM core_organizations o WHERE o.id = a.organization_id))
"""
# Every entry must be recorded, as posted, in its organisation's audit chain with the same content:
# id, event, smart code, currency, total and number of lines (rows of ``entries.posted``, or of the
# per-entry ``entry.posted`` written before migration 0004's release).
_UNAUDITED = """
WITH audited AS (
    SELECT a.organization_id, (e->>0)::uuid AS id, e->>1 AS event_id, e->>2 AS smart_code, e->>3 AS currency,
           (e->>4)::numeric AS total, (e->>5)::int AS lines
      FROM audit_log a, jsonb_array_elements(a.payload->'entries') AS e
     WHERE a.action = 'entries.posted'
    UNION ALL
    SELECT a.organization_id, (a.payload->>'entry_id')::uuid, a.subject, a.payload->>'smart_code',
           a.payload->>'currency', (a.payload->>'total')::numeric, (a.payload->>'lines')::int
      FROM audit_log a
     WHERE a.action = 'entry.posted'
), ledger AS (
    SELECT t.organization_id, t.id, t.event_id, t.smart_code, t.currency, t.total_amount AS total,
           (SELECT count(*) FROM universal_transaction_lines l WHERE l.transaction_id = t.id)::int AS lines
      FROM universal_transactions t
)
SELECT (SELECT count(*) FROM ledger l WHERE NOT EXISTS (
            SELECT 1 FROM audited a WHERE a.id = l.id AND a.organization_id = l.organization_id
               AND a.event_id = l.event_id AND a.smart_code = l.smart_code AND a.currency = l.currency
               AND a.total = l.total AND a.lines = l.lines)) AS unaudited,
       (SELECT count(*) FROM audited a WHERE NOT EXISTS (
            SELECT 1 FROM universal_transactions t WHERE t.id = a.id)) AS audited_missing
"""

_TENANT_TABLES = """
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
       EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid) AS has_policy
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind = 'r'
   AND (c.relname = 'core_organizations'
        OR c.relname = 'core_clients'
        OR EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'organization_id'
                     AND NOT a.attisdropped))
 ORDER BY c.relname
"""
_GUARDS = """
SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'universal_transactions_org_event_key'
                  AND contype = 'u') AS unique_key,
       EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'universal_transactions_balanced'
                  AND tgdeferrable AND tginitdeferred AND tgenabled <> 'D') AS balance_trigger,
       (SELECT count(*) = 2 FROM pg_trigger WHERE tgname IN ('universal_transactions_touched',
                  'universal_transaction_lines_touched') AND tgenabled <> 'D') AS touch_triggers,
       EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'audit_log_append_only' AND tgenabled <> 'D')
           AS audit_append_only,
       (SELECT count(*) = 3 FROM pg_trigger WHERE tgname IN ('audit_log_organizations',
                  'core_organizations_permanent', 'core_organizations_id_fixed') AND tgenabled <> 'D')
           AS organization_references,
       (SELECT NOT (rolsuper OR rolbypassrls) FROM pg_roles WHERE rolname = $1) AS app_role_subject_to_rls,
       (SELECT count(*) = 2 FROM pg_trigger WHERE tgname IN ('universal_transactions_append_only',
                  'universal_transaction_lines_append_only') AND tgenabled <> 'D') AS ledger_append_only,
       NOT has_table_privilege($1, 'audit_heads', 'UPDATE') AND NOT has_table_privilege($1, 'audit_heads', 'INSERT')
           AS audit_heads_by_function_only,
       coalesce((SELECT NOT (r.rolsuper OR r.rolbypassrls OR r.rolcreaterole OR r.rolcreatedb)
                        AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.relowner = r.oid AND c.relpersistence <> 't')
                        AND (SELECT array_agg(DISTINCT g.rolname::text) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                              WHERE m.member = r.oid) = ARRAY[$1::text]
                   FROM pg_roles r WHERE r.rolname = 'hera_worker'), false) AS worker_role_least_privilege
"""
_TOTALS_MISMATCH = """
SELECT count(*) FROM universal_transactions h
 WHERE h.total_amount <> (SELECT coalesce(sum(l.amount), 0) FROM universal_transaction_lines l
                           WHERE l.transaction_id = h.id AND l.side = 'DR')
"""
_LEDGER_CONTENT = """
SELECT h.id::text AS id, h.event_id, h.smart_code, h.currency, h.total_amount::text AS total,
       h.transaction_date::text AS day,
       array_agg(ARRAY[e.entity_code, l.side, l.amount::text, l.currency] ORDER BY l.line_number) AS lines
  FROM universal_transactions h
  JOIN universal_transaction_lines l ON l.transaction_id = h.id
  LEFT JOIN core_entities e ON e.id = l.account_id
 GROUP BY h.id
"""
_CHAIN_DIGESTS = """
SELECT e->>0 AS id, e->>6 AS digest
  FROM audit_log a, jsonb_array_elements(a.payload->'entries') AS e
 WHERE a.action = 'entries.posted' AND jsonb_array_length(e) >= 7
"""


async def entry_digest_mismatches(conn: asyncpg.Connection) -> int:
    """Entries whose header and lines no longer hash to the digest their audit row recorded."""
    recorded = {r["id"]: r["digest"] for r in await conn.fetch(_CHAIN_DIGESTS)}
    if not recorded:
        return 0
    bad = 0
    async with conn.transaction(readonly=True):
        async for row in conn.cursor(_LEDGER_CONTENT):
            expected = recorded.get(row["id"])
            if expected is None:
                continue
            lines = [tuple(line) for line in row["lines"]]
            actual = entry_digest(row["id"], row["event_id"], row["smart_code"], row["currency"], row["total"],
                                  row["day"], lines)   # type: ignore[arg-type]
            bad += actual != expected
    return bad


async def verify_ledger(conn: asyncpg.Connection, *, key: bytes | None = None, checkpoint: Any = None
                        ) -> dict[str, Any]:
    """Check the ledger's invariants in the database; ``ok`` is False on any violation (``key``,
    ``checkpoint``: see ``audit.verify_audit``)."""
    counts = await conn.fetchrow(_COUNTS)
    unbalanced = await conn.fetchval(_UNBALANCED)
    duplicate_keys = await conn.fetchval(_DUPLICATE_KEYS)
    orphan_lines = await conn.fetchval(_ORPHAN_LINES)
    orphan_rows = await conn.fetchval(_ORPHAN_ROWS)
    tables = await conn.fetch(_TENANT_TABLES)
    unprotected = [t["relname"] for t in tables
                   if not (t["relrowsecurity"] and t["relforcerowsecurity"] and t["has_policy"])]
    guards = dict(await conn.fetchrow(_GUARDS, APP_ROLE))
    audit = await verify_audit(conn, key=key, checkpoint=checkpoint)
    crosscheck = await conn.fetchrow(_UNAUDITED)
    totals_mismatch = await conn.fetchval(_TOTALS_MISMATCH)
    digest_mismatch = await entry_digest_mismatches(conn)
    ok = (unbalanced == 0 and duplicate_keys == 0 and orphan_lines == 0 and orphan_rows == 0 and not unprotected
          and all(bool(v) for v in guards.values()) and audit["ok"]
          and crosscheck["unaudited"] == 0 and crosscheck["audited_missing"] == 0
          and totals_mismatch == 0 and digest_mismatch == 0)
    return {
        "ok": ok,
        "organizations": counts["organizations"], "entries": counts["entries"], "lines": counts["lines"],
        "unbalanced_entries": unbalanced, "duplicate_keys": duplicate_keys, "orphan_lines": orphan_lines,
        "orphan_organization_rows": orphan_rows, "header_total_mismatches": totals_mismatch,
        "rls": {"tenant_tables": len(tables), "enabled_on_all": not unprotected, "unprotected": unprotected},
        "guards": {k: bool(v) for k, v in guards.items()},
        "audit": {"rows": audit["rows"], "chain_breaks": audit["breaks"],
                  "break_details": audit["break_details"],
                  # entries not recorded in the chain (or recorded with other content), and entries
                  # the chain records that the ledger does not hold
                  "entries_not_in_chain": crosscheck["unaudited"],
                  "chain_entries_not_in_ledger": crosscheck["audited_missing"],
                  # entries whose header or lines changed since their keyed audit row recorded them
                  "entries_changed_since_audited": digest_mismatch},
    }
