-- 11_security.sql - the row-level security policies and the daemon's right to
-- call every function.
--
-- Owns: the policies on referrals, assignments and assignment_events, the
-- app_*() readers of the request context they use, and EXECUTE for
-- referrald_app (run last, so it covers every function the files define).
-- Must never: let a connection that set no context see a row of those
-- tables (app_role() is '' then, which no policy admits).

CREATE OR REPLACE FUNCTION app_role() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT coalesce(current_setting('app.role', true), '') $$;
CREATE OR REPLACE FUNCTION app_subject() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT coalesce(current_setting('app.subject', true), '') $$;
CREATE OR REPLACE FUNCTION app_org() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT coalesce(current_setting('app.org', true), '') $$;
CREATE OR REPLACE FUNCTION app_programme() RETURNS boolean
LANGUAGE sql STABLE AS $$ SELECT coalesce(nullif(current_setting('app.programme', true), ''), 'false')::boolean $$;
DROP POLICY IF EXISTS assignments_scope ON assignments;
CREATE POLICY assignments_scope ON assignments USING (
	app_role() = 'system'
	OR (app_role() = 'office' AND office_id::text = app_subject())
	OR (app_role() = 'worker' AND worker_id::text = app_subject())
	OR (app_role() = 'supervisor' AND (app_programme() OR organisation_id::text = app_org()
	    OR (worker_id IS NULL AND EXISTS (
	        SELECT 1 FROM workers w WHERE w.organisation_id::text = app_org()
	          AND w.kind = assignments.need AND w.regions @> ARRAY[assignments.region]))))
);
DROP POLICY IF EXISTS referrals_scope ON referrals;
CREATE POLICY referrals_scope ON referrals USING (
	app_role() = 'system'
	OR (app_role() = 'office' AND office_id::text = app_subject())
	OR (app_role() IN ('worker', 'supervisor')
	    AND (app_programme() OR EXISTS (SELECT 1 FROM assignments a WHERE a.referral_id = referrals.id)))
);
DROP POLICY IF EXISTS assignment_events_scope ON assignment_events;
CREATE POLICY assignment_events_scope ON assignment_events USING (
	app_role() = 'system'
	OR EXISTS (SELECT 1 FROM assignments a WHERE a.id = assignment_events.assignment_id)
);

DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'referrald_app') THEN
		EXECUTE 'GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO referrald_app';
		-- ... except the bootstrap: only the schema owner (the CLI) mints an
		-- admin token.
		EXECUTE 'REVOKE EXECUTE ON FUNCTION mint_admin_token(text, text, text, bigint), '
		        'admin_ensure(text) FROM referrald_app';
	END IF;
	EXECUTE 'REVOKE EXECUTE ON FUNCTION mint_admin_token(text, text, text, bigint), '
	        'admin_ensure(text) FROM PUBLIC';
END $$;
