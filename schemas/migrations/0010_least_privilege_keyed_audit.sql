-- Least privilege and a keyed audit chain (SECURITY.md).
--
-- 1. The worker logs in as hera_worker: LOGIN, NOSUPERUSER, NOBYPASSRLS, not the owner of anything,
--    member of hera_app only. Row-level security binds it whatever role it sets or resets.
--    Its password is set outside migrations (the embedded server generates one; an operator sets
--    it with ALTER ROLE … PASSWORD on a server of their own).
-- 2. The application role no longer writes audit_heads: a chain head moves only through
--    hera_audit_advance_heads (SECURITY DEFINER), which sets it to the newest row actually in
--    audit_log, and is created and locked through hera_audit_lock_heads.
-- 3. core_clients gets row-level security: a client is visible to the organisations it owns.
-- 4. audit_chain_epochs: per organisation, the first seq linked with the HMAC key (pipeline.ledger.
--    audit); rows before it keep their plain SHA-256 links.
-- 5. hera_known_organizations(): the ids of every organisation (ids only), for a worker that no
--    longer sees other organisations' rows.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hera_worker') THEN
        CREATE ROLE hera_worker LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- created concurrently by a migration of another database on the same cluster
END
$$;
GRANT hera_app TO hera_worker;
DO $$
BEGIN
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO hera_worker', current_database());
END
$$;

-- 4. Where each existing chain switches to keyed links.
CREATE TABLE audit_chain_epochs (
    organization_id uuid PRIMARY KEY,
    keyed_from_seq  bigint NOT NULL CHECK (keyed_from_seq >= 1)
);
INSERT INTO audit_chain_epochs (organization_id, keyed_from_seq)
    SELECT organization_id, seq + 1 FROM audit_heads WHERE seq > 0;
ALTER TABLE audit_chain_epochs ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_chain_epochs FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_chain_epochs_tenant ON audit_chain_epochs
    USING (organization_id = ANY ((SELECT hera_acting_orgs())::uuid[]))
    WITH CHECK (organization_id = ANY ((SELECT hera_acting_orgs())::uuid[]));

-- 2. Chain heads through functions only.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_heads FROM hera_app;

-- The heads of orgs (existing organisations only), created at genesis when missing, locked FOR UPDATE.
CREATE FUNCTION hera_audit_lock_heads(orgs uuid[])
RETURNS TABLE (organization_id uuid, seq bigint, hash text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO audit_heads AS h (organization_id, seq, hash)
        SELECT o, 0, repeat('0', 64) FROM unnest(orgs) AS o
         WHERE EXISTS (SELECT 1 FROM core_organizations c WHERE c.id = o)
           AND o = ANY ((SELECT hera_acting_orgs())::uuid[])
    ON CONFLICT DO NOTHING;
    RETURN QUERY SELECT h.organization_id, h.seq, h.hash FROM audit_heads h
                  WHERE h.organization_id = ANY (orgs) AND h.organization_id = ANY ((SELECT hera_acting_orgs())::uuid[])
                  ORDER BY h.organization_id FOR UPDATE;
END
$$;

-- Move the heads of orgs to the newest row of their chain in audit_log (never backwards).
CREATE FUNCTION hera_audit_advance_heads(orgs uuid[]) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE audit_heads h SET seq = a.seq, hash = a.hash
      FROM unnest(orgs) AS o
      CROSS JOIN LATERAL (SELECT l.seq, l.hash FROM audit_log l WHERE l.organization_id = o
                           ORDER BY l.seq DESC LIMIT 1) a
     WHERE h.organization_id = o AND a.seq > h.seq
       AND o = ANY ((SELECT hera_acting_orgs())::uuid[]);
$$;

CREATE FUNCTION hera_known_organizations() RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT id FROM core_organizations;
$$;

REVOKE ALL ON FUNCTION hera_audit_lock_heads(uuid[]), hera_audit_advance_heads(uuid[]),
    hera_known_organizations() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hera_audit_lock_heads(uuid[]), hera_audit_advance_heads(uuid[]),
    hera_known_organizations() TO hera_app;

-- 3. Clients: visible to the organisations that belong to them.
ALTER TABLE core_clients ENABLE ROW LEVEL SECURITY;
ALTER TABLE core_clients FORCE ROW LEVEL SECURITY;
CREATE POLICY core_clients_tenant ON core_clients
    USING (id IN (SELECT o.client_id FROM core_organizations o
                   WHERE o.id = ANY ((SELECT hera_acting_orgs())::uuid[])));
