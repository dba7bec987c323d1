-- Append-only, hash-chained audit log; review queue; per-organisation classifier memory.
--
-- audit_log: per organisation, seq = 1, 2, 3 … and hash = sha256(prev_hash || canonical payload),
-- computed by pipeline.ledger.audit (the pure part) and checked by verify_audit. The chain's head
-- is kept in audit_heads so a truncated tail is detected too. UPDATE/DELETE/TRUNCATE are forbidden
-- by trigger; a unique (organization_id, prev_hash) forbids forks.

CREATE TABLE audit_log (
    organization_id uuid NOT NULL REFERENCES core_organizations (id),
    seq             bigint NOT NULL CHECK (seq >= 1),
    record_key      text,
    occurred_at     timestamptz NOT NULL,
    actor           text NOT NULL,
    action          text NOT NULL,
    subject         text,
    payload         jsonb NOT NULL DEFAULT '{}',
    -- hex SHA-256; written without {64}: bounded repetition is slow in PostgreSQL's regex engine
    prev_hash       text NOT NULL CHECK (length(prev_hash) = 64 AND prev_hash !~ '[^0-9a-f]'),
    hash            text NOT NULL CHECK (length(hash) = 64 AND hash !~ '[^0-9a-f]'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, seq),
    CONSTRAINT audit_log_prev_hash_key UNIQUE (organization_id, prev_hash),
    CONSTRAINT audit_log_record_key UNIQUE (organization_id, record_key)
);

CREATE TABLE audit_heads (
    organization_id uuid PRIMARY KEY REFERENCES core_organizations (id),
    seq             bigint NOT NULL,
    hash            text NOT NULL
);

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_forbid_change();

CREATE TABLE review_items (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id      uuid NOT NULL REFERENCES core_organizations (id),
    event_id             text NOT NULL,
    payload              jsonb NOT NULL,
    suggested_smart_code text,
    confidence           numeric(6, 5) CHECK (confidence BETWEEN 0 AND 1),
    reason               text,
    status               text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'approved', 'corrected')),
    resolved_smart_code  text,
    resolved_by          text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    resolved_at          timestamptz,
    CONSTRAINT review_items_org_event_key UNIQUE (organization_id, event_id),
    CONSTRAINT review_items_resolution CHECK ((status = 'open') = (resolved_at IS NULL)),
    CONSTRAINT review_items_smart_code_grammar CHECK (
        (suggested_smart_code IS NULL OR hera_smart_code_valid(suggested_smart_code))
        AND (resolved_smart_code IS NULL OR hera_smart_code_valid(resolved_smart_code)))
);
CREATE INDEX review_items_open_idx ON review_items (organization_id, created_at) WHERE status = 'open';

CREATE TABLE classifier_memory (
    organization_id uuid NOT NULL REFERENCES core_organizations (id),
    key             text NOT NULL,
    value           jsonb NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, key)
);

-- Row-level security on every tenant table, forced on the owner too.
DO $$
DECLARE
    tbl text;
BEGIN
    FOREACH tbl IN ARRAY ARRAY['core_entities', 'core_dynamic_data', 'core_relationships',
                               'universal_transactions', 'universal_transaction_lines', 'posting_periods',
                               'audit_log', 'audit_heads', 'review_items', 'classifier_memory'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', tbl);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', tbl);
        EXECUTE format('CREATE POLICY %I ON %I USING (organization_id = ANY (hera_acting_orgs()))'
                       ' WITH CHECK (organization_id = ANY (hera_acting_orgs()))', tbl || '_tenant', tbl);
    END LOOP;
END
$$;
ALTER TABLE core_organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE core_organizations FORCE ROW LEVEL SECURITY;
CREATE POLICY core_organizations_tenant ON core_organizations
    USING (id = ANY (hera_acting_orgs())) WITH CHECK (id = ANY (hera_acting_orgs()));

-- What the application role may do (RLS narrows it to the acting organisations).
GRANT USAGE ON SCHEMA public TO hera_app;
GRANT SELECT, INSERT, UPDATE ON core_organizations, core_entities, core_dynamic_data, core_relationships,
    posting_periods, review_items, classifier_memory, audit_heads TO hera_app;
GRANT SELECT, INSERT ON universal_transactions, universal_transaction_lines, audit_log TO hera_app;
-- The store numbers a batch's entries in input order itself (nextval, then rows in key order).
GRANT USAGE ON SEQUENCE universal_transactions_entry_number_seq TO hera_app;
GRANT SELECT ON core_clients TO hera_app;
GRANT EXECUTE ON FUNCTION hera_acting_orgs() TO hera_app;
REVOKE ALL ON ledger_balance_pending, ledger_balance_marker FROM PUBLIC;
