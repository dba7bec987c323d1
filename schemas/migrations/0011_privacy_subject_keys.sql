-- Per-subject keys for pseudonymised personal text (pipeline.domain.privacy): erasing a data
-- subject is deleting its key row (crypto-shredding). The application role may read and create
-- keys of the organisations it acts for, never delete them: erasure is an owner's act
-- (`hera privacy erase`), recorded in the organisation's audit chain.

CREATE TABLE privacy_subject_keys (
    organization_id uuid NOT NULL REFERENCES core_organizations (id),
    subject_id      text NOT NULL CHECK (subject_id ~ '^[0-9a-f]+$' AND length(subject_id) = 32),
    key             bytea NOT NULL CHECK (length(key) = 32),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, subject_id)
);
ALTER TABLE privacy_subject_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE privacy_subject_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY privacy_subject_keys_tenant ON privacy_subject_keys
    USING (organization_id = ANY ((SELECT hera_acting_orgs())::uuid[]))
    WITH CHECK (organization_id = ANY ((SELECT hera_acting_orgs())::uuid[]));
GRANT SELECT, INSERT ON privacy_subject_keys TO hera_app;
