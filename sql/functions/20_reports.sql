-- 20_reports.sql - the supervisors' follow-up report.
--
-- Owns: api_report_follow_up() and its grouping helpers.
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
-- Rows the retention purge deleted count through their anonymous facts
-- (deadline_facts, assignment_facts), so a report over an older period
-- gives the same figures after the purge (by worker: in the keyless group).

CREATE OR REPLACE FUNCTION report_group_key(p_group text, d_org uuid, d_worker uuid, a assignments)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE p_group
		WHEN 'organisation' THEN d_org::text
		WHEN 'worker' THEN d_worker::text
		WHEN 'office' THEN a.office_id::text
		WHEN 'region' THEN a.region
		WHEN 'need' THEN a.need
	END
$$;

-- The same key for the anonymous facts the retention purge keeps of deleted
-- rows (sql/functions/60_retention.sql): they name no worker, so by worker
-- they fall into the group without a key.
CREATE OR REPLACE FUNCTION report_fact_key(p_group text, p_org uuid, p_office uuid, p_region text,
                                           p_need text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE p_group
		WHEN 'organisation' THEN p_org::text
		WHEN 'office' THEN p_office::text
		WHEN 'region' THEN p_region
		WHEN 'need' THEN p_need
	END
$$;

CREATE OR REPLACE FUNCTION report_group_label(p_group text, p_key text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE p_group
		WHEN 'organisation' THEN (SELECT name FROM organisations WHERE id = try_uuid(p_key))
		WHEN 'worker' THEN (SELECT handle FROM workers WHERE id = try_uuid(p_key))
		WHEN 'office' THEN (SELECT name FROM offices WHERE id = try_uuid(p_key))
		ELSE p_key
	END
$$;

-- The figures of one kind of deadline in one group (all NULL: none).
CREATE OR REPLACE FUNCTION report_kind_json(p_met bigint, p_on_time bigint, p_missed bigint,
                                            p_judged bigint, p_p50 double precision,
                                            p_p90 double precision)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object(
		'met', coalesce(p_met, 0), 'on_time', coalesce(p_on_time, 0),
		'missed', coalesce(p_missed, 0),
		'on_time_rate', CASE WHEN p_judged > 0 THEN round(p_on_time::numeric / p_judged, 4) END,
		'median_seconds', round(p_p50::numeric, 3),
		'p90_seconds', round(p_p90::numeric, 3))
$$;

CREATE OR REPLACE FUNCTION report_histogram_bounds() RETURNS double precision[]
LANGUAGE sql IMMUTABLE AS $$ SELECT ARRAY[3600, 14400, 86400, 259200]::double precision[] $$;

-- Bucket numbers (width_bucket over the bounds, 0..4) -> five counts.
CREATE OR REPLACE FUNCTION report_histogram(p_b integer[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_agg((SELECT count(*) FROM unnest(coalesce(p_b, '{}')) x WHERE x = i) ORDER BY i)
	FROM generate_series(0, 4) i
$$;

-- {"judged", "on_time", "on_time_rate"} of one week's deadlines of a kind.
CREATE OR REPLACE FUNCTION report_rate(p_judged bigint, p_on_time bigint) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object('judged', p_judged, 'on_time', p_on_time, 'on_time_rate',
		CASE WHEN p_judged > 0 THEN round(p_on_time::numeric / p_judged, 4) END)
$$;

-- On-time rates per UTC week (Monday 00:00) of deadlines started in
-- [p_from, p_to), over the caller's scope, oldest week first.
CREATE OR REPLACE FUNCTION report_weeks(p_prog boolean, p_org uuid, p_from timestamptz, p_to timestamptz)
RETURNS jsonb LANGUAGE sql STABLE AS $$
	SELECT coalesce(jsonb_agg(jsonb_build_object('week', ts(w.wk),
		'accept', report_rate(w.acc_judged, w.acc_on_time),
		'first_contact', report_rate(w.fc_judged, w.fc_on_time)) ORDER BY w.wk), '[]'::jsonb)
	FROM (
		SELECT date_trunc('week', dl.starts_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS wk,
		       count(*) FILTER (WHERE dl.kind = 'accept' AND dl.state IN ('met', 'missed')) AS acc_judged,
		       count(*) FILTER (WHERE dl.kind = 'accept' AND dl.met_at IS NOT NULL AND dl.met_at <= dl.due_at) AS acc_on_time,
		       count(*) FILTER (WHERE dl.kind <> 'accept' AND dl.state IN ('met', 'missed')) AS fc_judged,
		       count(*) FILTER (WHERE dl.kind <> 'accept' AND dl.met_at IS NOT NULL AND dl.met_at <= dl.due_at) AS fc_on_time
		FROM (SELECT kind, starts_at, state, met_at, due_at, organisation_id FROM deadlines
		      UNION ALL
		      SELECT kind, starts_at, state, met_at, due_at, organisation_id FROM deadline_facts) dl
		WHERE dl.starts_at >= p_from AND dl.starts_at < p_to
		  AND (p_prog OR dl.organisation_id = p_org)
		GROUP BY 1) w
$$;

-- Every group's figures over [p_from, p_to) in the caller's scope (p_prog:
-- all organisations; otherwise p_org's only). s: one row per group and kind
-- (accept, or first contact/consultation); ag: assignments created.
CREATE OR REPLACE FUNCTION report_groups(p_group text, p_prog boolean, p_org uuid,
                                         p_from timestamptz, p_to timestamptz)
RETURNS jsonb LANGUAGE sql STABLE AS $$
	WITH d AS (
		SELECT coalesce(report_group_key(p_group, dl.organisation_id, dl.worker_id, a), '') AS key,
		       dl.kind = 'accept' AS acc, dl.state, dl.due_at, dl.met_at,
		       extract(epoch FROM dl.elapsed)::double precision AS secs
		FROM deadlines dl
		JOIN assignments a ON a.id = dl.assignment_id
		WHERE dl.starts_at >= p_from AND dl.starts_at < p_to
		  AND (p_prog OR dl.organisation_id = p_org)
		UNION ALL
		SELECT coalesce(report_fact_key(p_group, f.organisation_id, f.office_id, f.region, f.need), ''),
		       f.kind = 'accept', f.state, f.due_at, f.met_at,
		       extract(epoch FROM f.elapsed)::double precision
		FROM deadline_facts f
		WHERE f.starts_at >= p_from AND f.starts_at < p_to
		  AND (p_prog OR f.organisation_id = p_org)
	), s AS (
		SELECT key, acc, count(*) AS n,
		       count(*) FILTER (WHERE met_at IS NOT NULL) AS met,
		       count(*) FILTER (WHERE met_at IS NOT NULL AND met_at <= due_at) AS on_time,
		       count(*) FILTER (WHERE state = 'missed') AS missed,
		       count(*) FILTER (WHERE state IN ('met', 'missed')) AS judged,
		       percentile_cont(0.5) WITHIN GROUP (ORDER BY secs) FILTER (WHERE met_at IS NOT NULL) AS p50,
		       percentile_cont(0.9) WITHIN GROUP (ORDER BY secs) FILTER (WHERE met_at IS NOT NULL) AS p90,
		       array_agg(width_bucket(secs, report_histogram_bounds())) FILTER (WHERE met_at IS NOT NULL) AS b
		FROM d GROUP BY key, acc
	), ag0 AS (
		SELECT coalesce(report_group_key(p_group, a.organisation_id, a.worker_id, a), '') AS key,
		       count(*) AS n
		FROM assignments a
		WHERE a.created_at >= p_from AND a.created_at < p_to
		  AND (p_prog OR a.organisation_id = p_org)
		GROUP BY 1
		UNION ALL
		SELECT coalesce(report_fact_key(p_group, f.organisation_id, f.office_id, f.region, f.need), ''),
		       count(*)
		FROM assignment_facts f
		WHERE f.created_at >= p_from AND f.created_at < p_to
		  AND (p_prog OR f.organisation_id = p_org)
		GROUP BY 1
	), ag AS (
		SELECT key, sum(n)::bigint AS n FROM ag0 GROUP BY key
	), k AS (
		SELECT key FROM s UNION SELECT key FROM ag
	)
	SELECT coalesce(jsonb_agg(jsonb_build_object(
		'key', nullif(k.key, ''),
		'label', report_group_label(p_group, k.key),
		'offers', coalesce(sa.n, 0),
		'assignments', coalesce(ag.n, 0),
		'accept', report_kind_json(sa.met, sa.on_time, sa.missed, sa.judged, sa.p50, sa.p90)
		          || jsonb_build_object('histogram', report_histogram(sa.b)),
		'first_contact', report_kind_json(sf.met, sf.on_time, sf.missed, sf.judged, sf.p50, sf.p90)
		          || jsonb_build_object('histogram', report_histogram(sf.b)))
		ORDER BY k.key), '[]'::jsonb)
	FROM k
	LEFT JOIN s sa ON sa.key = k.key AND sa.acc
	LEFT JOIN s sf ON sf.key = k.key AND NOT sf.acc
	LEFT JOIN ag ON ag.key = k.key
$$;

CREATE OR REPLACE FUNCTION api_report_follow_up(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	grp text := coalesce(p_args->>'group_by', 'organisation');
	t_from timestamptz;
	t_to timestamptz;
	groups jsonb;
	prog boolean := coalesce((p_who->>'programme')::boolean, false);
	err jsonb := api_check(p_who, p_request_id, 'report.follow_up', ARRAY['supervisor']);
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	IF NOT is_value_of(grp, 'report_group_by') THEN
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
	groups := report_groups(grp, prog, try_uuid(p_who->>'org_id'), t_from, t_to);
	RETURN api_done(p_who, p_request_id, 'report.follow_up', 'report', NULL, 200,
		jsonb_build_object('from', ts(t_from), 'to', ts(t_to), 'group_by', grp, 'groups', groups,
		                   'histogram_bounds_seconds', to_jsonb(report_histogram_bounds()),
		                   'weeks', report_weeks(prog, try_uuid(p_who->>'org_id'), t_from, t_to)));
END $$;
