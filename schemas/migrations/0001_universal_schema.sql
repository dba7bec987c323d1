-- HERA universal schema: tenants, entities, dynamic data, relationships, journal entries and lines.
--
-- Every business row carries organization_id; row-level security (FORCE) scopes it to the
-- organisations named in the transaction-local setting app.organization_id (one UUID, or a
-- comma-separated list for a service posting a multi-tenant batch). The application role
-- hera_app (NOLOGIN, NOBYPASSRLS) is what tenant-scoped sessions SET ROLE to.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hera_app') THEN
        CREATE ROLE hera_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- created concurrently by a migration of another database on the same cluster
END
$$;

DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT hera_app TO %I', current_user);
    END IF;
END
$$;

-- The organisations the current transaction acts for (empty when unset: nothing is visible).
CREATE FUNCTION hera_acting_orgs() RETURNS uuid[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(string_to_array(nullif(current_setting('app.organization_id', true), ''), ',')::uuid[],
                    '{}'::uuid[])
$$;

-- The SPEC smart-code grammar ^HERA\.[A-Z0-9]{3,15}(\.[A-Z0-9_]{2,30}){3,8}\.v[0-9]+$, written so that
-- PostgreSQL's regex engine does not expand the nested bounded repetitions (that literal pattern
-- costs ~40 µs a row here; this form ~1.5 µs for a code of up to 40 characters, ~3.3 µs longer).
-- Equivalent: an unbounded structural match whose parts are non-empty and whose segments have at
-- least 2 characters, then the module length (3..15), the part count (6..11 parts: 3..8 segments)
-- with split_part, and no segment over 30 characters; a code that has one is at least 41 long
-- ('HERA.' + module + '.' + 31 + '.v1'), so shorter codes skip that regex.
-- tests/integration/test_ledger_schema.py checks the equivalence against the literal pattern.
CREATE FUNCTION hera_smart_code_valid(code text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT code ~ '^HERA\.[A-Z0-9]+(\.[A-Z0-9_][A-Z0-9_]+)+\.v[0-9]+$'
       AND length(split_part(code, '.', 2)) BETWEEN 3 AND 15
       AND split_part(code, '.', 6) <> '' AND split_part(code, '.', 12) = ''
       AND (length(code) <= 40 OR code !~ '\.[A-Z0-9_]{31}')
$$;

CREATE TABLE core_clients (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    client_name text NOT NULL,
    smart_code  text NOT NULL DEFAULT 'HERA.PLATFORM.CLIENT.ENTITY.STANDARD.v1',
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL,
    CONSTRAINT core_clients_smart_code_grammar
        CHECK (hera_smart_code_valid(smart_code))
);

CREATE TABLE core_organizations (
    id                uuid PRIMARY KEY,
    client_id         uuid REFERENCES core_clients (id),
    organization_name text NOT NULL,
    smart_code        text NOT NULL DEFAULT 'HERA.PLATFORM.ORG.ENTITY.STANDARD.v1',
    settings          jsonb NOT NULL DEFAULT '{}',
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    created_by        text NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT core_organizations_settings_object CHECK (jsonb_typeof(settings) = 'object'),
    CONSTRAINT core_organizations_smart_code_grammar
        CHECK (hera_smart_code_valid(smart_code))
);

CREATE TABLE core_entities (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES core_organizations (id),
    entity_type     text NOT NULL,
    entity_code     text NOT NULL,
    entity_name     text NOT NULL,
    smart_code      text NOT NULL,
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    metadata        jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text NOT NULL,
    CONSTRAINT core_entities_org_type_code_key UNIQUE (organization_id, entity_type, entity_code),
    CONSTRAINT core_entities_smart_code_grammar
        CHECK (hera_smart_code_valid(smart_code))
);

CREATE TABLE core_dynamic_data (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid NOT NULL REFERENCES core_organizations (id),
    entity_id        uuid NOT NULL REFERENCES core_entities (id),
    field_name       text NOT NULL,
    field_value_text text,
    field_value_number numeric,
    field_value_json jsonb,
    smart_code       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       text NOT NULL,
    CONSTRAINT core_dynamic_data_entity_field_key UNIQUE (organization_id, entity_id, field_name),
    CONSTRAINT core_dynamic_data_smart_code_grammar
        CHECK (hera_smart_code_valid(smart_code))
);

CREATE TABLE core_relationships (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id   uuid NOT NULL REFERENCES core_organizations (id),
    from_entity_id    uuid NOT NULL REFERENCES core_entities (id),
    to_entity_id      uuid NOT NULL REFERENCES core_entities (id),
    relationship_type text NOT NULL,
    smart_code        text NOT NULL,
    metadata          jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    created_by        text NOT NULL,
    CONSTRAINT core_relationships_key UNIQUE (organization_id, from_entity_id, to_entity_id, relationship_type),
    CONSTRAINT core_relationships_smart_code_grammar
        CHECK (hera_smart_code_valid(smart_code))
);

-- Journal entries (header). One per (organization_id, event_id): the idempotency key.
CREATE TABLE universal_transactions (
    id               uuid PRIMARY KEY,
    entry_number     bigint GENERATED ALWAYS AS IDENTITY,   -- posting order, for stable reports
    organization_id  uuid NOT NULL REFERENCES core_organizations (id),
    event_id         text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 128),
    transaction_type text NOT NULL DEFAULT 'journal_entry',
    smart_code       text NOT NULL,
    transaction_date date NOT NULL,
    posting_period   text NOT NULL CHECK (posting_period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    occurred_at      timestamptz NOT NULL,
    currency         text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    total_amount     numeric NOT NULL CHECK (total_amount >= 0),
    source           text NOT NULL,
    confidence       numeric(6, 5) NOT NULL DEFAULT 1 CHECK (confidence BETWEEN 0 AND 1),
    reference        text,
    description      text,
    counterparty     text,
    metadata         jsonb NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       text NOT NULL,
    CONSTRAINT universal_transactions_org_event_key UNIQUE (organization_id, event_id),
    CONSTRAINT universal_transactions_period_matches_date
        CHECK (posting_period = to_char(transaction_date, 'YYYY-MM')),
    CONSTRAINT universal_transactions_smart_code_grammar
        CHECK (hera_smart_code_valid(smart_code))
);
CREATE INDEX universal_transactions_org_period_idx ON universal_transactions (organization_id, posting_period);

-- Journal lines: explicit side, non-negative amount, currency. The line's entry must exist in the same
-- organisation and its account must be a gl_account entity of that organisation: checked set-based
-- by the deferred commit check of 0002 (ledger_check_balance), not by per-row foreign keys, whose
-- per-row trigger, row lock and once-per-session cached plan (a sequential scan when planned on a
-- young table) cost more than the rest of the insert. Lines and entries are append-only, so what
-- is checked at commit stays true; verify_ledger re-counts orphans.
CREATE TABLE universal_transaction_lines (
    transaction_id      uuid NOT NULL,
    line_number         smallint NOT NULL CHECK (line_number >= 1),
    organization_id     uuid NOT NULL,
    account_id          uuid NOT NULL,
    side                text NOT NULL CHECK (side IN ('DR', 'CR')),
    amount              numeric NOT NULL,
    currency            text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    smart_code          text NOT NULL,
    description         text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    created_by          text NOT NULL,
    PRIMARY KEY (transaction_id, line_number),
    CONSTRAINT universal_transaction_lines_amount_non_negative CHECK (amount >= 0),
    CONSTRAINT universal_transaction_lines_smart_code_grammar
        CHECK (hera_smart_code_valid(smart_code))
);
CREATE INDEX universal_transaction_lines_org_account_idx
    ON universal_transaction_lines (organization_id, account_id);
