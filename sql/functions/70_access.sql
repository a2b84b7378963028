-- 70_access.sql - exceptional access to client data (protocol v1.1):
-- subject access (everything held about one client, for a programme
-- supervisor) and break-the-glass (a supervisor outside an assignment's
-- organisation reads it as its worker would, for a time-boxed window).
--
-- Owns: api_subject_access, api_break_glass, api_break_glass_list, the
-- window check break_glass_active() and its read break_glass_read() that
-- api_assignment_get (08) defers to, and the shapes of a subject-access
-- answer, and the trigger that destroys break-the-glass reasons with the
-- referral's personal data.
-- Must never: write a UIC, its keyed hash or any clear client value to a
-- table, an audit record or an event (ids only); answer client fields to a
-- caller without a break_glass or subject_access audit record committed
-- with the answer; let a supervisor of the assignment's own organisation
-- break the glass (it does not need to: 409 not_needed).

-- Break-the-glass ---------------------------------------------------------------

-- Has this supervisor an open window on this assignment?
-- PL/pgSQL: every assignment read asks this, and a SQL function with a
-- sub-query is never inlined (planned again at each call; issue 12).
CREATE OR REPLACE FUNCTION break_glass_active(p_who jsonb, p_id text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN p_who->>'role' = 'supervisor' AND EXISTS (
		SELECT 1 FROM break_glass b
		WHERE b.assignment_id = try_uuid(p_id)
		  AND b.supervisor_id = try_uuid(p_who->>'id')
		  AND b.expires_at > now());
END $$;

-- The assignment as its worker sees it (client fields while it holds it
-- accepted, in progress or on hold), shaped under the worker's scope and
-- then back under the caller's.
CREATE OR REPLACE FUNCTION assignment_worker_view(a assignments) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	j jsonb;
	role text := current_setting('app.role', true);
	subject text := current_setting('app.subject', true);
BEGIN
	PERFORM set_config('app.role', 'worker', true),
	        set_config('app.subject', coalesce(a.worker_id::text, ''), true);
	j := assignment_json(a);
	PERFORM set_config('app.role', coalesce(role, ''), true),
	        set_config('app.subject', coalesce(subject, ''), true);
	RETURN j;
END $$;

-- The assignment p_id, whoever's it is (system scope), for a use of
-- break-the-glass: err is its 404 (a 'denied' break_glass record) when
-- there is none.
CREATE OR REPLACE FUNCTION break_glass_assignment(p_who jsonb, p_request_id text, p_id text,
                                                  OUT err jsonb, OUT a assignments)
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM ctx_system();
	SELECT * INTO a FROM assignments WHERE id = try_uuid(p_id);
	PERFORM ctx_caller();
	IF a.id IS NULL THEN
		err := api_not_found(p_who, p_request_id, 'break_glass', 'assignment', p_id);
	END IF;
END $$;

-- A read through an open window (GET /v1/assignments/{id}): audited as a
-- use of break-the-glass.
CREATE OR REPLACE FUNCTION break_glass_read(p_who jsonb, p_request_id text, p_id text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	t record := break_glass_assignment(p_who, p_request_id, p_id);
BEGIN
	IF t.err IS NOT NULL THEN
		RETURN t.err;
	END IF;
	RETURN api_done(p_who, p_request_id, 'break_glass', 'assignment', (t.a).id::text, 200,
	                assignment_worker_view(t.a));
END $$;

-- POST /v1/assignments/{id}/break-glass. Args: id, reason_sealed (bound to
-- break_glass.reason of break_glass_id, which the daemon chose), window_ms
-- ([privacy] break_glass_window).
CREATE OR REPLACE FUNCTION api_break_glass(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	a assignments;
	t record;
	b break_glass;
	prog boolean := coalesce((p_who->>'programme')::boolean, false);
	win interval := greatest(coalesce((p_args->>'window_ms')::bigint, 3600000), 1000)
	                * interval '1 millisecond';
	err jsonb := api_check(p_who, p_request_id, 'break_glass', ARRAY['supervisor']);
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	t := break_glass_assignment(p_who, p_request_id, p_args->>'id');
	IF t.err IS NOT NULL THEN
		RETURN t.err;
	END IF;
	a := t.a;
	IF NOT prog AND a.organisation_id IS NOT NULL
	   AND a.organisation_id::text = p_who->>'org_id' THEN
		PERFORM audit_write(p_who, p_request_id, 'break_glass', 'assignment', a.id::text, 'denied');
		RETURN api_error(409, 'not_needed',
		                 'this assignment is of your own organisation: read it directly');
	END IF;
	INSERT INTO break_glass (id, supervisor_id, organisation_id, assignment_id, referral_id,
	                         reason_sealed, expires_at)
	VALUES (try_uuid(p_args->>'break_glass_id'), (p_who->>'id')::uuid,
	        try_uuid(p_who->>'org_id'), a.id, a.referral_id, p_args->>'reason_sealed',
	        now() + win)
	RETURNING * INTO b;
	PERFORM audit_write(p_who, p_request_id, 'break_glass', 'assignment', a.id::text, 'ok');
	INSERT INTO outbox (type, payload, organisation_id, office_id)
	VALUES ('access.break_glass',
	        jsonb_build_object('break_glass_id', b.id, 'assignment_id', a.id,
	                           'referral_id', a.referral_id, 'supervisor_id', b.supervisor_id,
	                           'detail_url', '/v1/break-glass?since=' || ts(b.created_at)),
	        NULL, NULL);
	RETURN api_result(200, assignment_worker_view(a),
	                  jsonb_build_object('Break-Glass-Expires', ts(b.expires_at)));
END $$;

CREATE OR REPLACE FUNCTION break_glass_json(b break_glass) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('id', b.id, 'assignment_id', b.assignment_id,
		'referral_id', b.referral_id, 'supervisor_id', b.supervisor_id,
		'organisation_id', b.organisation_id,
		'reason_sealed', sealed_ref('break_glass', 'reason', b.id, b.reason_sealed),
		'created_at', ts(b.created_at), 'expires_at', ts(b.expires_at))
$$;

-- GET /v1/break-glass?since= (programme supervisors): newest first, paged.
CREATE OR REPLACE FUNCTION api_break_glass_list(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE sql AS $$
	SELECT list_page(p_who, p_request_id, p_args, 'break_glass.list', ARRAY['programme'],
	                 'break_glass', NULL, 'break_glass', 'break_glass_json(x)', $f$
		$2->>'since' IS NULL OR x.created_at >= ($2->>'since')::timestamptz$f$)
$$;

-- Subject access ------------------------------------------------------------------

-- The first version's per-referral and per-assignment shapes: one set-based
-- statement replaced them (about a third of the time for 50 referrals).
DROP FUNCTION IF EXISTS subject_referral_json(referrals);
DROP FUNCTION IF EXISTS subject_assignment_json(assignments);
DROP FUNCTION IF EXISTS subject_object_ids(referrals);
DROP FUNCTION IF EXISTS subject_audit_json(text[]);

-- Everything held about the referrals p_ids, as the answer's "referrals"
-- array (oldest first), in one set-based statement: each table is read once
-- for all referrals rather than once per referral or assignment.
CREATE OR REPLACE FUNCTION subject_access_json(p_ids uuid[]) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
	-- MATERIALIZED: each step once. Inlined into the final join, under the
	-- runtime role's row-level security, a step was planned as a subquery
	-- run again per referral (50 referrals: 1,275 assignment shapes built
	-- instead of 50, five times the time).
	RETURN (
	WITH asg AS MATERIALIZED (
		SELECT * FROM assignments WHERE referral_id = ANY (p_ids)
	), ev AS MATERIALIZED (
		SELECT e.assignment_id, jsonb_agg(jsonb_build_object(
			'id', e.id, 'type', e.type, 'at', ts(e.at), 'actor_role', e.actor_role,
			'actor_id', e.actor_id, 'created_at', ts(e.created_at),
			'outcome_sealed', sealed_ref('assignment_events', 'outcome', e.id, e.outcome_sealed),
			'detail_sealed', sealed_ref('assignment_events', 'detail', e.id, e.detail_sealed))
			ORDER BY e.at, e.id) AS j
		FROM assignment_events e WHERE e.assignment_id IN (SELECT id FROM asg)
		GROUP BY e.assignment_id
	), ofr AS MATERIALIZED (
		SELECT o.assignment_id, jsonb_agg(jsonb_build_object(
			'id', o.id, 'worker_id', o.worker_id, 'offered_at', ts(o.offered_at),
			'expires_at', ts(o.expires_at), 'outcome', o.outcome, 'ended_at', ts(o.ended_at),
			'reason', o.reason, 'match_reason', o.match_reason)
			ORDER BY o.offered_at, o.id) AS j
		FROM offers o WHERE o.assignment_id IN (SELECT id FROM asg)
		GROUP BY o.assignment_id
	), dl AS MATERIALIZED (
		SELECT d.assignment_id, jsonb_agg(deadline_json(d) ORDER BY d.created_at, d.id) AS j,
		       array_agg(d.id::text) AS ids
		FROM deadlines d WHERE d.assignment_id IN (SELECT id FROM asg)
		GROUP BY d.assignment_id
	), hi AS MATERIALIZED (
		SELECT h.assignment_id, jsonb_agg(jsonb_build_object(
			'at', ts(h.at), 'from_status', h.from_status, 'to_status', h.to_status,
			'worker_id', h.worker_id, 'actor_role', h.actor_role, 'reason', h.reason)
			ORDER BY h.id) AS j
		FROM assignment_history h WHERE h.assignment_id IN (SELECT id FROM asg)
		GROUP BY h.assignment_id
	), aj AS MATERIALIZED (
		SELECT a.referral_id, jsonb_agg(assignment_json(a) || jsonb_build_object(
			'detail_sealed', sealed_ref('assignments', 'detail', a.id, a.detail_sealed),
			'events', coalesce(ev.j, '[]'), 'offers', coalesce(ofr.j, '[]'),
			'deadlines', coalesce(dl.j, '[]'), 'history', coalesce(hi.j, '[]'))
			ORDER BY a.created_at, a.need, a.id) AS j
		FROM asg a
		LEFT JOIN ev ON ev.assignment_id = a.id
		LEFT JOIN ofr ON ofr.assignment_id = a.id
		LEFT JOIN dl ON dl.assignment_id = a.id
		LEFT JOIN hi ON hi.assignment_id = a.id
		GROUP BY a.referral_id
	), obj AS MATERIALIZED (       -- the ids of a referral's rows that audit records may name
		SELECT r.id AS referral_id, r.id::text AS oid FROM unnest(p_ids) r(id)
		UNION ALL SELECT a.referral_id, a.id::text FROM asg a
		UNION ALL SELECT a.referral_id, e.id::text
		          FROM asg a JOIN assignment_events e ON e.assignment_id = a.id
		UNION ALL SELECT a.referral_id, d FROM asg a JOIN dl ON dl.assignment_id = a.id,
		          unnest(dl.ids) d
	), au AS MATERIALIZED (
		SELECT o.referral_id, jsonb_agg(audit_json(l) ORDER BY l.id) AS j
		FROM obj o JOIN audit_log l ON l.object_id = o.oid
		GROUP BY o.referral_id
	)
	SELECT coalesce(jsonb_agg(jsonb_build_object(
		'id', r.id, 'office_id', r.office_id, 'external_ref', r.external_ref,
		'external_ref_sealed', sealed_ref('referrals', 'external_ref', r.id, r.external_ref_sealed),
		'forgotten_at', ts(r.forgotten_at),
		'status', r.status, 'duplicate_of', r.duplicate_of,
		'client', jsonb_build_object('birth_year', r.birth_year, 'gender', r.gender,
			'languages', to_jsonb(r.languages), 'region', r.region,
			'contact_sealed', sealed_ref('referrals', 'contact', r.id, r.contact_sealed)),
		'needs', to_jsonb(r.needs), 'urgency', r.urgency,
		'consent', jsonb_build_object('services', r.consent_services,
			'report_back', r.consent_report_back, 'obtained_at', ts(r.consent_obtained_at)),
		'probation', CASE WHEN r.probation_starts_on IS NOT NULL THEN jsonb_build_object(
			'starts_on', r.probation_starts_on, 'ends_on', r.probation_ends_on) END,
		'note_sealed', sealed_ref('referrals', 'note', r.id, r.note_sealed),
		'withdrawn_reason_sealed', sealed_ref('referrals', 'withdrawn_reason', r.id,
		                                      r.withdrawn_reason_sealed),
		'created_at', ts(r.created_at), 'updated_at', ts(r.updated_at),
		'closed_at', ts(r.closed_at), 'withdrawn_at', ts(r.withdrawn_at),
		'assignments', coalesce(aj.j, '[]'), 'audit', coalesce(au.j, '[]'))
		ORDER BY r.created_at, r.id), '[]')
	FROM referrals r
	LEFT JOIN aj ON aj.referral_id = r.id
	LEFT JOIN au ON au.referral_id = r.id
	WHERE r.id = ANY (p_ids));
END $$;

-- POST /v1/subject-access (programme supervisors). Args: uic_hash (the
-- daemon's keyed hash of the UIC in the body), reason_sealed (bound to
-- subject_access_requests.reason of id), id (chosen by the daemon).
-- Everything is read across scopes (ctx_system): the caller is programme-wide.
CREATE OR REPLACE FUNCTION api_subject_access(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	ids uuid[];
	body jsonb;
	rid uuid;
	err jsonb := api_check(p_who, p_request_id, 'subject_access', ARRAY['programme']);
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	PERFORM ctx_system();
	SELECT coalesce(array_agg(r.id ORDER BY r.created_at, r.id), '{}') INTO ids
	FROM referrals r WHERE r.uic_hash = p_args->>'uic_hash';
	-- Read before this request's own records are written.
	body := jsonb_build_object('referrals', subject_access_json(ids));
	INSERT INTO subject_access_requests (id, supervisor_id, reason_sealed, referral_ids)
	VALUES ((p_args->>'id')::uuid, (p_who->>'id')::uuid, p_args->>'reason_sealed', ids);
	PERFORM ctx_caller();
	PERFORM audit_write(p_who, p_request_id, 'subject_access', 'subject_access',
	                    p_args->>'id', 'ok');
	FOREACH rid IN ARRAY ids LOOP
		PERFORM audit_write(p_who, p_request_id, 'subject_access', 'referral', rid::text, 'ok');
	END LOOP;
	INSERT INTO outbox (type, payload, organisation_id, office_id)
	VALUES ('access.subject_access',
	        jsonb_build_object('subject_access_id', (p_args->>'id')::uuid,
	                           'supervisor_id', (p_who->>'id')::uuid,
	                           'referral_ids', to_jsonb(ids)),
	        NULL, NULL);
	RETURN api_result(200, body);
END $$;

-- Forgetting a referral (retention, consent revocation: referral_forget in
-- 60_retention.sql sets forgotten_at) destroys the free text of the
-- break-the-glass uses on it too; the records of the uses stay. SECURITY
-- DEFINER: the runtime role may only insert into break_glass.
CREATE OR REPLACE FUNCTION access_forget_trg() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
	UPDATE break_glass SET reason_sealed = NULL
	WHERE referral_id = NEW.id AND reason_sealed IS NOT NULL;
	RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER access_forget AFTER UPDATE OF forgotten_at ON referrals
	FOR EACH ROW WHEN (OLD.forgotten_at IS NULL AND NEW.forgotten_at IS NOT NULL)
	EXECUTE FUNCTION access_forget_trg();
