-- The review workspace (pipeline/web): users, their roles per organisation, sessions, API tokens,
-- and the web app's claim on each review decision it sends.
--
-- The database checks what the handlers check. The web app's tenant work runs as the role
-- hera_web (NOLOGIN, NOBYPASSRLS) with two transaction-local settings: app.user_id (the signed-in
-- user) and app.organization_id (the organisations it acts for, as for hera_app). Besides the
-- tenant policies of 0003/0004 (rows of the acting organisations), a RESTRICTIVE policy for
-- hera_web on every tenant table admits only rows of organisations the user holds a grant on
-- (hera_user_orgs()): a handler that names an organisation the user may not see gets no rows of
-- it, and cannot write any. Writes also need the role: deciding (review_decisions) reviewer,
-- approver or admin; organisation settings and posting periods admin; and a decision on an item
-- whose amount is above the organisation's settings.approval_threshold needs approver or admin
-- (trigger, constraint name review_decisions_approver_required). A disabled user holds nothing.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hera_web') THEN
        CREATE ROLE hera_web NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- created concurrently by a migration of another database on the same cluster
END
$$;

DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT hera_web TO %I', current_user);
    END IF;
END
$$;

CREATE TABLE web_users (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username             text NOT NULL CHECK (username ~ '^[a-z0-9][a-z0-9._@-]*$' AND length(username) <= 64),
    display_name         text NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
    password_hash        text NOT NULL,             -- argon2id, encoded (pipeline/web/identity.py)
    status               text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    platform_admin       boolean NOT NULL DEFAULT false,   -- admin of every organisation
    must_change_password boolean NOT NULL DEFAULT false,   -- a one-time password was issued
    failed_sign_ins      integer NOT NULL DEFAULT 0 CHECK (failed_sign_ins >= 0),
    locked_until         timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    last_sign_in_at      timestamptz,
    CONSTRAINT web_users_username_key UNIQUE (username)
);

CREATE TABLE web_grants (
    user_id         uuid NOT NULL REFERENCES web_users (id),
    organization_id uuid NOT NULL REFERENCES core_organizations (id),
    role            text NOT NULL CHECK (role IN ('reviewer', 'approver', 'auditor', 'admin')),
    granted_at      timestamptz NOT NULL DEFAULT now(),
    granted_by      text NOT NULL,
    PRIMARY KEY (user_id, organization_id, role)
);
CREATE INDEX web_grants_org_idx ON web_grants (organization_id);
-- Grants are identity data, read by the owning role (and hera_user_orgs(), SECURITY DEFINER) only:
-- never by the tenant roles, whatever privileges they are given later.
ALTER TABLE web_grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE web_grants FORCE ROW LEVEL SECURITY;
CREATE POLICY web_grants_owner_only ON web_grants
    USING (current_user NOT IN ('hera_app', 'hera_web')) WITH CHECK (current_user NOT IN ('hera_app', 'hera_web'));

-- Server-side sessions: the cookie holds a random token; only its SHA-256 is stored.
CREATE TABLE web_sessions (
    token_hash   text PRIMARY KEY CHECK (length(token_hash) = 64),
    user_id      uuid NOT NULL REFERENCES web_users (id),
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX web_sessions_user_idx ON web_sessions (user_id);

CREATE TABLE web_api_tokens (
    token_hash text PRIMARY KEY CHECK (length(token_hash) = 64),
    user_id    uuid NOT NULL REFERENCES web_users (id),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);

-- One decision per review item: the first to insert wins; a refused one may be decided again.
CREATE TABLE review_decisions (
    organization_id uuid NOT NULL REFERENCES core_organizations (id),
    event_id        text NOT NULL,
    decision_id     uuid NOT NULL,
    decision        text NOT NULL CHECK (decision IN ('approve', 'correct')),
    smart_code      text CHECK (smart_code IS NULL OR hera_smart_code_valid(smart_code)),
    decided_by      uuid NOT NULL REFERENCES web_users (id),
    decided_by_name text NOT NULL,
    decided_at      timestamptz NOT NULL DEFAULT now(),
    state           text NOT NULL DEFAULT 'sent' CHECK (state IN ('sent', 'refused')),
    reason          text,
    PRIMARY KEY (organization_id, event_id),
    CONSTRAINT review_decisions_decision_id_key UNIQUE (decision_id)
);

-- The signed-in user of the open transaction (NULL when unset).
CREATE FUNCTION hera_web_user() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT nullif(current_setting('app.user_id', true), '')::uuid
$$;

-- Organisations on which the signed-in user holds one of ``roles`` (NULL: any role); admin holds
-- every role, and a platform admin is admin everywhere. Empty for a disabled or unknown user.
CREATE FUNCTION hera_user_orgs(roles text[] DEFAULT NULL) RETURNS uuid[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT coalesce(array_agg(DISTINCT s.org), '{}'::uuid[]) FROM (
        SELECT g.organization_id AS org
          FROM web_users u JOIN web_grants g ON g.user_id = u.id
         WHERE u.id = hera_web_user() AND u.status = 'active'
           AND (roles IS NULL OR g.role = ANY (roles) OR g.role = 'admin')
        UNION ALL
        SELECT o.id FROM web_users u, core_organizations o
         WHERE u.id = hera_web_user() AND u.status = 'active' AND u.platform_admin
    ) s
$$;

ALTER TABLE review_decisions ENABLE ROW LEVEL SECURITY;
ALTER TABLE review_decisions FORCE ROW LEVEL SECURITY;
CREATE POLICY review_decisions_tenant ON review_decisions
    USING (organization_id = ANY ((SELECT hera_acting_orgs())::uuid[]))
    WITH CHECK (organization_id = ANY ((SELECT hera_acting_orgs())::uuid[]));

-- The web role sees and writes only organisations the signed-in user holds a grant on.
DO $$
DECLARE
    tbl text;
BEGIN
    FOREACH tbl IN ARRAY ARRAY['core_entities', 'core_dynamic_data', 'core_relationships',
                               'universal_transactions', 'universal_transaction_lines', 'posting_periods',
                               'audit_log', 'audit_heads', 'review_items', 'classifier_memory',
                               'review_decisions'] LOOP
        EXECUTE format('CREATE POLICY %I ON %I AS RESTRICTIVE TO hera_web'
                       ' USING (organization_id = ANY ((SELECT hera_user_orgs())::uuid[]))', tbl || '_web_user', tbl);
    END LOOP;
END
$$;
CREATE POLICY core_organizations_web_user ON core_organizations AS RESTRICTIVE TO hera_web
    USING (id = ANY ((SELECT hera_user_orgs())::uuid[]));

-- Writes by role: deciding needs reviewer or approver (or admin), in the user's own name.
CREATE POLICY review_decisions_web_decide ON review_decisions AS RESTRICTIVE FOR INSERT TO hera_web
    WITH CHECK (organization_id = ANY ((SELECT hera_user_orgs('{reviewer,approver}'))::uuid[])
                AND decided_by = hera_web_user());
CREATE POLICY review_decisions_web_redecide ON review_decisions AS RESTRICTIVE FOR UPDATE TO hera_web
    USING (organization_id = ANY ((SELECT hera_user_orgs('{reviewer,approver}'))::uuid[]))
    WITH CHECK (decided_by = hera_web_user());
-- Organisation settings and posting periods: admin.
CREATE POLICY core_organizations_web_admin ON core_organizations AS RESTRICTIVE FOR UPDATE TO hera_web
    USING (id = ANY ((SELECT hera_user_orgs('{admin}'))::uuid[]));
CREATE POLICY posting_periods_web_admin_insert ON posting_periods AS RESTRICTIVE FOR INSERT TO hera_web
    WITH CHECK (organization_id = ANY ((SELECT hera_user_orgs('{admin}'))::uuid[]));
CREATE POLICY posting_periods_web_admin_update ON posting_periods AS RESTRICTIVE FOR UPDATE TO hera_web
    USING (organization_id = ANY ((SELECT hera_user_orgs('{admin}'))::uuid[]));

-- A decision needs an open item; above the organisation's approval threshold, an approver.
CREATE FUNCTION review_decisions_check() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    item_amount numeric;
    threshold   numeric;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.state = 'refused' AND OLD.decision_id = NEW.decision_id THEN
        RETURN NEW;  -- the pipeline's refusal of a decision already sent
    END IF;
    SELECT (i.payload->'event'->>'amount')::numeric INTO item_amount
      FROM review_items i
     WHERE i.organization_id = NEW.organization_id AND i.event_id = NEW.event_id AND i.status = 'open';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no open review item % of organization %', NEW.event_id, NEW.organization_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'review_decisions_item_open',
                  TABLE = 'review_decisions';
    END IF;
    SELECT (o.settings->>'approval_threshold')::numeric INTO threshold
      FROM core_organizations o WHERE o.id = NEW.organization_id;
    IF threshold IS NOT NULL AND item_amount > threshold AND NOT EXISTS (
        SELECT 1 FROM web_users u
         WHERE u.id = NEW.decided_by AND u.status = 'active'
           AND (u.platform_admin OR EXISTS (SELECT 1 FROM web_grants g
                                             WHERE g.user_id = u.id AND g.organization_id = NEW.organization_id
                                               AND g.role IN ('approver', 'admin')))) THEN
        RAISE EXCEPTION 'an approver must decide item % (amount % above the threshold %)',
            NEW.event_id, item_amount, threshold
            USING ERRCODE = 'insufficient_privilege', CONSTRAINT = 'review_decisions_approver_required',
                  TABLE = 'review_decisions';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER review_decisions_checked
    BEFORE INSERT OR UPDATE ON review_decisions
    FOR EACH ROW EXECUTE FUNCTION review_decisions_check();

GRANT USAGE ON SCHEMA public TO hera_web;
GRANT SELECT ON core_organizations, core_entities, core_dynamic_data, core_relationships, core_clients,
    universal_transactions, universal_transaction_lines, posting_periods, audit_log, audit_heads,
    review_items, classifier_memory TO hera_web;
GRANT SELECT, INSERT, UPDATE ON review_decisions TO hera_web;
GRANT UPDATE (settings, updated_at) ON core_organizations TO hera_web;
GRANT INSERT, UPDATE ON posting_periods TO hera_web;
GRANT SELECT, UPDATE ON review_decisions TO hera_app;
GRANT EXECUTE ON FUNCTION hera_acting_orgs(), hera_web_user(), hera_user_orgs(text[]) TO hera_web, hera_app;
REVOKE ALL ON web_users, web_grants, web_sessions, web_api_tokens FROM PUBLIC;
