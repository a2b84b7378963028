-- 0020_reports.sql - the supervisors' follow-up report.
--
-- Owns: api_report_follow_up() and the indexes it reads through.
-- Must never: show a supervisor anything outside its organisation (programme
-- supervisors see all), or carry client data: groups are organisations,
-- offices, workers (by handle), regions or needs, and the figures are counts
-- and durations.
--
-- What is counted, for deadlines that started in [from, to):
--   offers                 accept deadlines (one per offer made)
--   accept.met/missed      accept deadlines met / missed (void ones - offers
--                          withdrawn because the referral was withdrawn or
--                          the worker went on leave - are not judged)
--   accept.on_time_rate    met on time / (met + missed), NULL when none judged
--   accept.median/p90      time from offer to acceptance, seconds,
--                          percentile_cont (linear interpolation)
--   first_contact.*        the same over first-contact and (legal support)
--                          consultation deadlines, from acceptance to the
--                          first contact; a contact made after the deadline
--                          was missed still counts in the durations (met_at
--                          is recorded late), and as not on time
--   assignments            assignments created in [from, to) in the group
-- Grouping: organisation and worker are those the deadline was set for (the
-- worker holding the offer or assignment then); office, region and need come
-- from the assignment. A group with no key (offers never accepted by anyone
-- in an organisation-less assignment) has key null; '' stands for it inside.

CREATE INDEX deadlines_starts ON deadlines (starts_at);

CREATE FUNCTION report_group_key(p_group text, d_org uuid, d_worker uuid, a assignments)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE p_group
		WHEN 'organisation' THEN d_org::text
		WHEN 'worker' THEN d_worker::text
		WHEN 'office' THEN a.office_id::text
		WHEN 'region' THEN a.region
		WHEN 'need' THEN a.need
	END
$$;

CREATE FUNCTION report_group_label(p_group text, p_key text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE p_group
		WHEN 'organisation' THEN (SELECT name FROM organisations WHERE id = try_uuid(p_key))
		WHEN 'worker' THEN (SELECT handle FROM workers WHERE id = try_uuid(p_key))
		WHEN 'office' THEN (SELECT name FROM offices WHERE id = try_uuid(p_key))
		ELSE p_key
	END
$$;

CREATE FUNCTION api_report_follow_up(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	grp text := coalesce(p_args->>'group_by', 'organisation');
	prog boolean := coalesce((p_who->>'programme')::boolean, false);
	org uuid := try_uuid(p_who->>'org_id');
	t_from timestamptz;
	t_to timestamptz;
	groups jsonb;
BEGIN
	PERFORM ctx_set(p_who, p_request_id);
	IF p_who->>'role' IS DISTINCT FROM 'supervisor' THEN
		RETURN api_forbidden(p_who, p_request_id, 'report.follow_up');
	END IF;
	IF grp NOT IN ('organisation', 'office', 'worker', 'region', 'need') THEN
		RETURN api_error(400, 'invalid_value', 'group_by must be organisation, office, worker, region or need',
		                 '/group_by');
	END IF;
	BEGIN
		t_from := coalesce((p_args->>'from')::timestamptz, now() - interval '30 days');
		t_to := coalesce((p_args->>'to')::timestamptz, now());
	EXCEPTION WHEN OTHERS THEN
		RETURN api_error(400, 'invalid_value', 'from and to must be RFC 3339 times', '/from');
	END;
	IF t_to <= t_from THEN
		RETURN api_error(400, 'invalid_value', 'to must be after from', '/to');
	END IF;

	WITH d AS (
		SELECT coalesce(report_group_key(grp, dl.organisation_id, dl.worker_id, a), '') AS key,
		       dl.kind, dl.state, dl.due_at, dl.met_at,
		       extract(epoch FROM dl.elapsed)::double precision AS secs
		FROM deadlines dl
		JOIN assignments a ON a.id = dl.assignment_id
		WHERE dl.starts_at >= t_from AND dl.starts_at < t_to
		  AND (prog OR dl.organisation_id = org)
	), dg AS (
		SELECT key,
		       count(*) FILTER (WHERE kind = 'accept') AS offers,
		       count(*) FILTER (WHERE kind = 'accept' AND met_at IS NOT NULL) AS acc_met,
		       count(*) FILTER (WHERE kind = 'accept' AND met_at IS NOT NULL AND met_at <= due_at) AS acc_on_time,
		       count(*) FILTER (WHERE kind = 'accept' AND state = 'missed') AS acc_missed,
		       count(*) FILTER (WHERE kind = 'accept' AND state IN ('met', 'missed')) AS acc_judged,
		       percentile_cont(0.5) WITHIN GROUP (ORDER BY secs) FILTER (WHERE kind = 'accept' AND met_at IS NOT NULL) AS acc_p50,
		       percentile_cont(0.9) WITHIN GROUP (ORDER BY secs) FILTER (WHERE kind = 'accept' AND met_at IS NOT NULL) AS acc_p90,
		       count(*) FILTER (WHERE kind <> 'accept' AND met_at IS NOT NULL) AS fc_met,
		       count(*) FILTER (WHERE kind <> 'accept' AND met_at IS NOT NULL AND met_at <= due_at) AS fc_on_time,
		       count(*) FILTER (WHERE kind <> 'accept' AND state = 'missed') AS fc_missed,
		       count(*) FILTER (WHERE kind <> 'accept' AND state IN ('met', 'missed')) AS fc_judged,
		       percentile_cont(0.5) WITHIN GROUP (ORDER BY secs) FILTER (WHERE kind <> 'accept' AND met_at IS NOT NULL) AS fc_p50,
		       percentile_cont(0.9) WITHIN GROUP (ORDER BY secs) FILTER (WHERE kind <> 'accept' AND met_at IS NOT NULL) AS fc_p90
		FROM d GROUP BY key
	), ag AS (
		SELECT coalesce(report_group_key(grp, a.organisation_id, a.worker_id, a), '') AS key,
		       count(*) AS n
		FROM assignments a
		WHERE a.created_at >= t_from AND a.created_at < t_to
		  AND (prog OR a.organisation_id = org)
		GROUP BY 1
	), g AS (
		SELECT coalesce(dg.key, ag.key) AS gkey, dg.*, coalesce(ag.n, 0) AS assignments
		FROM dg FULL JOIN ag ON ag.key = dg.key
	)
	SELECT coalesce(jsonb_agg(jsonb_build_object(
		'key', nullif(g.gkey, ''),
		'label', report_group_label(grp, g.gkey),
		'offers', coalesce(g.offers, 0),
		'assignments', g.assignments,
		'accept', jsonb_build_object(
			'met', coalesce(g.acc_met, 0), 'on_time', coalesce(g.acc_on_time, 0),
			'missed', coalesce(g.acc_missed, 0),
			'on_time_rate', CASE WHEN g.acc_judged > 0 THEN round(g.acc_on_time::numeric / g.acc_judged, 4) END,
			'median_seconds', round(g.acc_p50::numeric, 3),
			'p90_seconds', round(g.acc_p90::numeric, 3)),
		'first_contact', jsonb_build_object(
			'met', coalesce(g.fc_met, 0), 'on_time', coalesce(g.fc_on_time, 0),
			'missed', coalesce(g.fc_missed, 0),
			'on_time_rate', CASE WHEN g.fc_judged > 0 THEN round(g.fc_on_time::numeric / g.fc_judged, 4) END,
			'median_seconds', round(g.fc_p50::numeric, 3),
			'p90_seconds', round(g.fc_p90::numeric, 3)))
		ORDER BY g.gkey NULLS LAST), '[]'::jsonb)
	INTO groups
	FROM g;

	PERFORM audit_write(p_who, p_request_id, 'report.follow_up', 'report', NULL, 'ok');
	RETURN api_result(200, jsonb_build_object('from', ts(t_from), 'to', ts(t_to),
	                                          'group_by', grp, 'groups', groups));
END $$;

