-- Appending a posting batch's audit rows in the statement that inserts its entries
-- (pipeline/ledger/store.py, _INSERT_STAGED_ENTRIES_LINES_AND_AUDIT).
--
-- The worker remembers the chain heads it last moved, and chains a batch's rows on them before it
-- sends the batch. hera_audit_append_expected locks the heads of exp_orgs (sorted) through
-- hera_audit_lock_heads (0010), exactly as the separate locking statement does, and compares them
-- with what the caller expected:
-- * all equal: the rows are appended with hera_audit_append (0030); one row (true) is returned;
-- * any different (another writer moved a head, or an organisation has none yet): nothing is
--   appended; one row (false) is returned, then the heads as locked (still locked to the end of the
--   transaction) for the caller to chain its rows on them and append them itself.
-- Either way the rows, their checks and the heads' moves are those of the two statements it
-- replaces (SECURITY INVOKER: row-level security, constraints and triggers apply as the caller).
CREATE FUNCTION hera_audit_append_expected(exp_orgs uuid[], exp_seqs bigint[], exp_hashes text[],
                                           orgs uuid[], seqs bigint[], record_keys text[], occurred timestamptz[],
                                           actors text[], actions text[], subjects text[], payloads jsonb[],
                                           prev_hashes text[], hashes text[])
RETURNS TABLE (appended boolean, organization_id uuid, seq bigint, hash text)
LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_temp AS $$
DECLARE
    locked_orgs uuid[];
    locked_seqs bigint[];
    locked_hashes text[];
BEGIN
    SELECT array_agg(h.organization_id ORDER BY h.organization_id), array_agg(h.seq ORDER BY h.organization_id),
           array_agg(h.hash ORDER BY h.organization_id)
      INTO locked_orgs, locked_seqs, locked_hashes
      FROM hera_audit_lock_heads(exp_orgs) AS h;
    IF locked_orgs = exp_orgs AND locked_seqs = exp_seqs AND locked_hashes = exp_hashes THEN
        PERFORM hera_audit_append(orgs, seqs, record_keys, occurred, actors, actions, subjects, payloads,
                                  prev_hashes, hashes);
        RETURN QUERY SELECT true, NULL::uuid, NULL::bigint, NULL::text;
        RETURN;
    END IF;
    RETURN QUERY SELECT false, NULL::uuid, NULL::bigint, NULL::text;
    RETURN QUERY SELECT false, u.o, u.s, u.h FROM unnest(locked_orgs, locked_seqs, locked_hashes) AS u(o, s, h);
END
$$;

REVOKE ALL ON FUNCTION hera_audit_append_expected(uuid[], bigint[], text[], uuid[], bigint[], text[], timestamptz[],
                                                  text[], text[], text[], jsonb[], text[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hera_audit_append_expected(uuid[], bigint[], text[], uuid[], bigint[], text[], timestamptz[],
                                                     text[], text[], text[], jsonb[], text[], text[]) TO hera_app;
