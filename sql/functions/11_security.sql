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

-- Whether the caller's organisation has a worker of kind p_need serving
-- p_region: a supervisor's view of unassigned assignments. A function, not a
-- sub-query in the policy: PostgreSQL initialises every sub-plan of a query
-- at its start, run or not, and this one (a bitmap scan of the workers'
-- GIN index) sat in every query on assignments, twice in a worker's read of
-- its assignment with the referral, for every role (issue 12: about 0.1 M
-- of that read's 1.6 M instructions). PL/pgSQL keeps its plan for the
-- session; it runs only for a supervisor's unassigned rows.
CREATE OR REPLACE FUNCTION app_org_serves(p_need text, p_region text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN EXISTS (SELECT 1 FROM workers w
	               WHERE w.organisation_id::text = app_org() AND w.kind = p_need
	                 AND w.regions @> ARRAY[p_region]);
END $$;

-- One branch per role, app_role() read once: every function in a policy is
-- set up (and its EXECUTE right checked) for each query that reads the
-- table, whichever branch runs. NULL (an unmatched comparison) admits no
-- row, as false does.
DROP POLICY IF EXISTS assignments_scope ON assignments;
CREATE POLICY assignments_scope ON assignments USING (
	CASE app_role()
	WHEN 'system' THEN true
	WHEN 'office' THEN office_id::text = app_subject()
	WHEN 'worker' THEN worker_id::text = app_subject()
	WHEN 'supervisor' THEN app_programme() OR organisation_id::text = app_org()
	                       OR (worker_id IS NULL AND app_org_serves(need, region))
	ELSE false END
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
