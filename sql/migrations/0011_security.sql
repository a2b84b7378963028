-- 0011_security.sql - least privilege for the daemon and row-level security.
--
-- Owns: the referrald_app role and its grants, and the RLS policies on
-- referrals, assignments and assignment_events.
-- Must never: give the daemon UPDATE, DELETE or TRUNCATE on audit_log, or any
-- right on audit_chain_head (only the SECURITY DEFINER chain trigger moves it).
--
-- RLS is the second line behind the explicit scope checks of the api_
-- functions: each function sets app.role/app.subject/app.org/app.programme
-- with set_config(..., true) (ctx_set), and switches to app.role = 'system'
-- only for the steps that must see across scopes (matching, duplicate
-- detection, the sweeper). FORCE makes the policies apply to the table owner
-- too, so a daemon connected as the owner (tests, the demo) is held by them
-- as well. Superusers bypass RLS whatever we do: never run the daemon as one.
-- A connection that set no context sees no row of these tables.

DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'referrald_app') THEN
		CREATE ROLE referrald_app NOLOGIN;
	END IF;
EXCEPTION WHEN insufficient_privilege THEN
	RAISE NOTICE 'cannot create role referrald_app; grants below are skipped';
END $$;

DO $$
DECLARE
	t text;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'referrald_app') THEN
		RETURN;
	END IF;
	EXECUTE 'GRANT USAGE ON SCHEMA public TO referrald_app';
	FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	         WHERE n.nspname = 'public' AND c.relkind = 'r'
	           AND c.relname NOT IN ('audit_log', 'audit_chain_head', 'schema_migrations',
	                                 'assignment_transitions', 'assignment_history') LOOP
		EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO referrald_app', t);
	END LOOP;
	-- The retention purge may drop old idempotency records; nothing else is deleted.
	EXECUTE 'GRANT DELETE ON idempotency_keys TO referrald_app';
	EXECUTE 'GRANT SELECT, INSERT ON audit_log, assignment_history TO referrald_app';
	EXECUTE 'GRANT SELECT ON assignment_transitions TO referrald_app';
	EXECUTE 'GRANT SELECT ON audit_chain_head TO referrald_app';
	IF to_regclass('schema_migrations') IS NOT NULL THEN
		EXECUTE 'GRANT SELECT ON schema_migrations TO referrald_app';
	END IF;
	EXECUTE 'REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM referrald_app';
	EXECUTE 'GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO referrald_app';
END $$;

-- Policies ---------------------------------------------------------------------

CREATE FUNCTION app_role() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT coalesce(current_setting('app.role', true), '') $$;
CREATE FUNCTION app_subject() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT coalesce(current_setting('app.subject', true), '') $$;
CREATE FUNCTION app_org() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT coalesce(current_setting('app.org', true), '') $$;
CREATE FUNCTION app_programme() RETURNS boolean
LANGUAGE sql STABLE AS $$ SELECT coalesce(nullif(current_setting('app.programme', true), ''), 'false')::boolean $$;

ALTER TABLE assignments ENABLE ROW LEVEL SECURITY;
ALTER TABLE assignments FORCE ROW LEVEL SECURITY;
CREATE POLICY assignments_scope ON assignments USING (
	app_role() = 'system'
	OR (app_role() = 'office' AND office_id::text = app_subject())
	OR (app_role() = 'worker' AND worker_id::text = app_subject())
	OR (app_role() = 'supervisor' AND (app_programme() OR organisation_id::text = app_org()
	    OR (worker_id IS NULL AND EXISTS (
	        SELECT 1 FROM workers w WHERE w.organisation_id::text = app_org()
	          AND w.kind = assignments.need AND w.regions @> ARRAY[assignments.region]))))
);

ALTER TABLE referrals ENABLE ROW LEVEL SECURITY;
ALTER TABLE referrals FORCE ROW LEVEL SECURITY;
CREATE POLICY referrals_scope ON referrals USING (
	app_role() = 'system'
	OR (app_role() = 'office' AND office_id::text = app_subject())
	OR (app_role() IN ('worker', 'supervisor')
	    AND (app_programme() OR EXISTS (SELECT 1 FROM assignments a WHERE a.referral_id = referrals.id)))
);

ALTER TABLE assignment_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE assignment_events FORCE ROW LEVEL SECURITY;
CREATE POLICY assignment_events_scope ON assignment_events USING (
	app_role() = 'system'
	OR EXISTS (SELECT 1 FROM assignments a WHERE a.id = assignment_events.assignment_id)
);
