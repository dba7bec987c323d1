-- Appending to the audit chain in one round trip (pipeline/ledger/store.py, _append_chained).
--
-- hera_audit_append inserts the chained rows, given as one array per column, into audit_log as the
-- caller (SECURITY INVOKER: row-level security and every audit_log constraint and trigger apply as
-- for a plain INSERT), then moves the heads of their organisations with hera_audit_advance_heads
-- (0010), which still reads the newest rows from audit_log itself. Same rows, same checks, same
-- heads as the INSERT and the SELECT it replaces; one statement instead of two.
CREATE FUNCTION hera_audit_append(orgs uuid[], seqs bigint[], record_keys text[], occurred timestamptz[],
                                  actors text[], actions text[], subjects text[], payloads jsonb[],
                                  prev_hashes text[], hashes text[]) RETURNS void
LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO audit_log (organization_id, seq, record_key, occurred_at, actor, action, subject, payload,
                           prev_hash, hash)
        SELECT * FROM unnest(orgs, seqs, record_keys, occurred, actors, actions, subjects, payloads,
                             prev_hashes, hashes);
    PERFORM hera_audit_advance_heads(ARRAY(SELECT DISTINCT o FROM unnest(orgs) AS o));
END
$$;

REVOKE ALL ON FUNCTION hera_audit_append(uuid[], bigint[], text[], timestamptz[], text[], text[], text[], jsonb[],
                                         text[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hera_audit_append(uuid[], bigint[], text[], timestamptz[], text[], text[], text[], jsonb[],
                                            text[], text[]) TO hera_app;
