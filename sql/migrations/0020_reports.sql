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
--   accept.histogram       time-to-accept of the met ones in five buckets:
--   first_contact.histogram  [0, 1 h), [1 h, 4 h), [4 h, 24 h), [24 h, 72 h),
--                          72 h or more (histogram_bounds_seconds names the
--                          bounds; the web pages draw the distributions)
--   weeks                  over all groups: per UTC week (Monday 00:00) that
--                          deadlines started in, judged / on time / on-time
--                          rate of accept and of first-contact deadlines
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

CREATE FUNCTION report_histogram_bounds() RETURNS double precision[]
LANGUAGE sql IMMUTABLE AS $$ SELECT ARRAY[3600, 14400, 86400, 259200]::double precision[] $$;

-- Bucket numbers (width_bucket over the bounds, 0..4) -> five counts.
CREATE FUNCTION report_histogram(p_b integer[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_agg((SELECT count(*) FROM unnest(coalesce(p_b, '{}')) x WHERE x = i) ORDER BY i)
	FROM generate_series(0, 4) i
$$;

-- {"judged", "on_time", "on_time_rate"} of one week's deadlines of a kind.
CREATE FUNCTION report_rate(p_judged bigint, p_on_time bigint) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object('judged', p_judged, 'on_time', p_on_time, 'on_time_rate',
		CASE WHEN p_judged > 0 THEN round(p_on_time::numeric / p_judged, 4) END)
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
	weeks jsonb;
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
		       extract(epoch FROM dl.elapsed)::double precision AS secs,
		       CASE WHEN dl.met_at IS NOT NULL THEN width_bucket(
		           extract(epoch FROM dl.elapsed)::double precision, report_histogram_bounds())
		       END AS b
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
		       array_agg(b) FILTER (WHERE kind = 'accept' AND b IS NOT NULL) AS acc_b,
		       array_agg(b) FILTER (WHERE kind <> 'accept' AND b IS NOT NULL) AS fc_b,
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
			'p90_seconds', round(g.acc_p90::numeric, 3),
			'histogram', report_histogram(g.acc_b)),
		'first_contact', jsonb_build_object(
			'met', coalesce(g.fc_met, 0), 'on_time', coalesce(g.fc_on_time, 0),
			'missed', coalesce(g.fc_missed, 0),
			'on_time_rate', CASE WHEN g.fc_judged > 0 THEN round(g.fc_on_time::numeric / g.fc_judged, 4) END,
			'median_seconds', round(g.fc_p50::numeric, 3),
			'p90_seconds', round(g.fc_p90::numeric, 3),
			'histogram', report_histogram(g.fc_b)))
		ORDER BY g.gkey NULLS LAST), '[]'::jsonb)
	INTO groups
	FROM g;

	SELECT coalesce(jsonb_agg(jsonb_build_object('week', ts(w.wk),
		'accept', report_rate(w.acc_judged, w.acc_on_time),
		'first_contact', report_rate(w.fc_judged, w.fc_on_time)) ORDER BY w.wk), '[]'::jsonb)
	INTO weeks
	FROM (
		SELECT date_trunc('week', dl.starts_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS wk,
		       count(*) FILTER (WHERE kind = 'accept' AND state IN ('met', 'missed')) AS acc_judged,
		       count(*) FILTER (WHERE kind = 'accept' AND met_at IS NOT NULL AND met_at <= due_at) AS acc_on_time,
		       count(*) FILTER (WHERE kind <> 'accept' AND state IN ('met', 'missed')) AS fc_judged,
		       count(*) FILTER (WHERE kind <> 'accept' AND met_at IS NOT NULL AND met_at <= due_at) AS fc_on_time
		FROM deadlines dl
		WHERE dl.starts_at >= t_from AND dl.starts_at < t_to
		  AND (prog OR dl.organisation_id = org)
		GROUP BY 1) w;

	PERFORM audit_write(p_who, p_request_id, 'report.follow_up', 'report', NULL, 'ok');
	RETURN api_result(200, jsonb_build_object('from', ts(t_from), 'to', ts(t_to),
	                                          'group_by', grp, 'groups', groups,
	                                          'histogram_bounds_seconds', to_jsonb(report_histogram_bounds()),
	                                          'weeks', weeks));
END $$;

