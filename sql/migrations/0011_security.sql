-- 0011_security.sql - least privilege for the daemon and row-level security.
--
-- Owns: the referrald_app role and its grants on tables, and row-level
-- security switched on for referrals, assignments and assignment_events (the
-- policies, being code, are in sql/functions/11_security.sql).
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
END $$;

ALTER TABLE assignments ENABLE ROW LEVEL SECURITY;
ALTER TABLE assignments FORCE ROW LEVEL SECURITY;

ALTER TABLE referrals ENABLE ROW LEVEL SECURITY;
ALTER TABLE referrals FORCE ROW LEVEL SECURITY;

ALTER TABLE assignment_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE assignment_events FORCE ROW LEVEL SECURITY;
