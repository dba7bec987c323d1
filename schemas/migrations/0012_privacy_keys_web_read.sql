-- The review workspace (pipeline/web, role hera_web) reveals sealed personal text for display: it
-- reads the keys of data subjects (privacy_subject_keys, 0011) of the organisations it acts for,
-- and nothing else (no INSERT, no DELETE). The acting organisations of hera_web are computed by the
-- database from the signed-in user's grants (pipeline/web/access.py).
--
-- hera_web is created by 0020; this migration may run before it (a new database) or after it (one
-- migrated before this file existed), so it creates the role the same idempotent way.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hera_web') THEN
        CREATE ROLE hera_web NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- created concurrently by a migration of another database on the same cluster
END
$$;

GRANT SELECT ON privacy_subject_keys TO hera_web;
