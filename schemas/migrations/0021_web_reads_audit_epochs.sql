-- The review workspace shows audit-chain status (pipeline/web/books.py, ``verify_audit``): its role
-- reads where each organisation's keyed chain starts (audit_chain_epochs, migration 0010), under the
-- table's row-level security like every other tenant read.
GRANT SELECT ON audit_chain_epochs TO hera_web;
