-- Ledger invariants enforced by the database itself, whatever the client does.
--
-- 1. Balance per currency, checked at COMMIT by a DEFERRED constraint trigger. Statement-level
--    triggers (with transition tables) record which entries a transaction touched; the first
--    touch of a transaction inserts one marker row whose deferred constraint trigger checks all
--    touched entries in one set-based query at commit. One check per database transaction, not
--    one per line, so batched posting stays fast.
-- 2. Posted entries and lines are append-only (correct with a reversal, never an edit).
-- 3. Posting into a closed period is rejected (constraint name posting_periods_closed).

CREATE TABLE posting_periods (
    organization_id uuid NOT NULL REFERENCES core_organizations (id),
    period          text NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    closed          boolean NOT NULL DEFAULT false,
    changed_at      timestamptz NOT NULL DEFAULT now(),
    changed_by      text NOT NULL,
    PRIMARY KEY (organization_id, period)
);

-- Entries touched by the open database transaction, awaiting the balance check at commit.
CREATE UNLOGGED TABLE ledger_balance_pending (
    xact_id        xid8 NOT NULL,
    transaction_id uuid NOT NULL
);
CREATE INDEX ledger_balance_pending_xact_idx ON ledger_balance_pending (xact_id);

CREATE UNLOGGED TABLE ledger_balance_marker (
    xact_id xid8 PRIMARY KEY
);

CREATE FUNCTION ledger_note_touched_entries() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    closed_entry record;
BEGIN
    IF TG_TABLE_NAME = 'universal_transactions' THEN
        SELECT n.organization_id, n.posting_period INTO closed_entry
          FROM touched n
          JOIN posting_periods p
            ON p.organization_id = n.organization_id AND p.period = n.posting_period AND p.closed
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'posting period % of organization % is closed',
                closed_entry.posting_period, closed_entry.organization_id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'posting_periods_closed',
                      TABLE = 'universal_transactions';
        END IF;
        INSERT INTO ledger_balance_pending (xact_id, transaction_id)
            SELECT pg_current_xact_id(), id FROM touched;
    ELSE
        INSERT INTO ledger_balance_pending (xact_id, transaction_id)
            SELECT DISTINCT pg_current_xact_id(), transaction_id FROM touched;
    END IF;
    INSERT INTO ledger_balance_marker (xact_id) VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER universal_transactions_touched
    AFTER INSERT ON universal_transactions REFERENCING NEW TABLE AS touched
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_note_touched_entries();
CREATE TRIGGER universal_transaction_lines_touched
    AFTER INSERT ON universal_transaction_lines REFERENCING NEW TABLE AS touched
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_note_touched_entries();

-- At commit, for every touched entry: its header exists; it has >= 2 lines; per currency
-- sum(DR) = sum(CR); every line is in the header's organisation and posts to a gl_account entity
-- of that organisation. LATERAL: index probes per touched entry, whatever the planner thinks of
-- the pending table's size.
CREATE FUNCTION ledger_check_balance() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    bad record;
BEGIN
    WITH touched AS (
        SELECT DISTINCT transaction_id FROM ledger_balance_pending WHERE xact_id = NEW.xact_id
    ), per_currency AS (
        SELECT t.transaction_id, s.currency, s.net, coalesce(s.line_count, 0) AS line_count,
               coalesce(s.foreign_lines, 0) AS foreign_lines, h.id IS NULL AS headless
          FROM touched t
          LEFT JOIN universal_transactions h ON h.id = t.transaction_id
          LEFT JOIN LATERAL (
                SELECT l.currency, sum(CASE l.side WHEN 'DR' THEN l.amount ELSE -l.amount END) AS net,
                       count(*) AS line_count,
                       count(*) FILTER (WHERE l.organization_id IS DISTINCT FROM h.organization_id
                                           OR NOT EXISTS (SELECT 1 FROM core_entities e
                                                           WHERE e.id = l.account_id
                                                             AND e.organization_id = l.organization_id
                                                             AND e.entity_type = 'gl_account')) AS foreign_lines
                  FROM universal_transaction_lines l
                 WHERE l.transaction_id = t.transaction_id
                 GROUP BY l.currency) s ON true
    )
    SELECT transaction_id, currency, net, headless, foreign_lines INTO bad
      FROM per_currency
     WHERE coalesce(net, 0) <> 0 OR headless OR foreign_lines > 0
        OR transaction_id IN (SELECT transaction_id FROM per_currency
                               GROUP BY transaction_id HAVING sum(line_count) < 2)
     LIMIT 1;
    DELETE FROM ledger_balance_pending WHERE xact_id = NEW.xact_id;
    DELETE FROM ledger_balance_marker WHERE xact_id = NEW.xact_id;
    IF bad.transaction_id IS NULL THEN
        RETURN NULL;
    ELSIF bad.headless THEN
        RAISE EXCEPTION 'journal lines of % have no journal entry', bad.transaction_id
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'universal_transaction_lines_entry_fkey',
                  TABLE = 'universal_transaction_lines';
    ELSIF bad.foreign_lines > 0 THEN
        RAISE EXCEPTION 'journal entry % has lines outside its organisation or on an unknown account',
            bad.transaction_id
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'universal_transaction_lines_account_fkey',
                  TABLE = 'universal_transaction_lines';
    END IF;
    RAISE EXCEPTION 'journal entry % is unbalanced in % by % (or has fewer than two lines)',
        bad.transaction_id, coalesce(bad.currency, '-'), coalesce(bad.net, 0)
        USING ERRCODE = 'check_violation', CONSTRAINT = 'universal_transactions_balanced',
              TABLE = 'universal_transaction_lines';
END
$$;

CREATE CONSTRAINT TRIGGER universal_transactions_balanced
    AFTER INSERT ON ledger_balance_marker
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_balance();

-- Append-only ledger: no UPDATE, DELETE or TRUNCATE of posted entries or lines.
CREATE FUNCTION ledger_forbid_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % is forbidden: the ledger is append-only (post a reversal)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege', CONSTRAINT = TG_TABLE_NAME || '_append_only';
END
$$;

CREATE TRIGGER universal_transactions_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON universal_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_forbid_change();
CREATE TRIGGER universal_transaction_lines_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON universal_transaction_lines
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_forbid_change();
