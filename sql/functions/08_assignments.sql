-- 08_assignments.sql - the worker's and supervisor's side of
-- assignments: read, list, accept, decline, events, hold, resume, complete,
-- fail, reassign.
--
-- Owns: the api_assignment_* functions and the deadlines that acceptance and
-- first contact create or meet.
-- Must never: act on an assignment without its row lock (that lock is what
-- makes "two accepts, one winner" true), show client fields to anyone but the
-- worker holding an accepted assignment, or let such a read go unaudited.

-- Scope: a worker sees what is offered to or held by it; a supervisor its
-- organisation's assignments, plus unassigned ones its organisation could
-- serve (programme supervisors: all).
-- PL/pgSQL: as a SQL function with a sub-query it was never inlined and was
-- planned again at every call (issue 12).
CREATE OR REPLACE FUNCTION assignment_in_scope(a assignments, p_who jsonb) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN CASE p_who->>'role'
	WHEN 'worker' THEN a.worker_id::text = p_who->>'id'
	WHEN 'supervisor' THEN coalesce((p_who->>'programme')::boolean, false)
		OR a.organisation_id::text = p_who->>'org_id'
		OR (a.worker_id IS NULL AND EXISTS (
			SELECT 1 FROM workers w
			WHERE w.organisation_id::text = p_who->>'org_id' AND w.kind = a.need
			  AND w.regions @> ARRAY[a.region]))
	ELSE false END;
END $$;

-- The caller's assignment, locked; NULL when absent or out of scope.
CREATE OR REPLACE FUNCTION assignment_lock(p_who jsonb, p_id text) RETURNS assignments
LANGUAGE plpgsql AS $$
DECLARE
	a assignments;
BEGIN
	SELECT * INTO a FROM assignments WHERE id = try_uuid(p_id) FOR UPDATE;
	IF a.id IS NULL OR NOT assignment_in_scope(a, p_who) THEN
		RETURN NULL;
	END IF;
	RETURN a;
END $$;

-- End of every action: back to the caller's scope, audit (the action, and a
-- read_client_data record when the answer carries client fields), answer.
CREATE OR REPLACE FUNCTION assignment_reply(p_who jsonb, p_request_id text, p_action text, p_id uuid,
                                 p_status integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	a assignments;
BEGIN
	PERFORM ctx_caller();
	SELECT * INTO STRICT a FROM assignments WHERE id = p_id;
	IF assignment_shows_client(a) THEN
		PERFORM audit_write(p_who, p_request_id, p_action, 'assignment', a.id::text, 'ok');
		PERFORM audit_write(p_who, p_request_id, 'read_client_data', 'assignment', a.id::text, 'ok');
	ELSE
		PERFORM audit_write(p_who, p_request_id, p_action, 'assignment', a.id::text, 'ok');
	END IF;
	RETURN api_result(p_status, assignment_json(a));
END $$;

CREATE OR REPLACE FUNCTION invalid_transition(p_from text, p_action text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT api_error(409, 'invalid_transition',
	                 'cannot ' || p_action || ' an assignment that is ' || p_from)
$$;

-- Pending deadlines of an assignment that can no longer be met.
CREATE OR REPLACE FUNCTION deadlines_void(p_assignment uuid) RETURNS void
LANGUAGE sql AS $$
	UPDATE deadlines SET state = 'void' WHERE assignment_id = p_assignment AND state = 'pending';
$$;

-- The first steps of every action on one assignment: api_check for p_role,
-- the caller's own refusal of its arguments (p_invalid, answered after the
-- role check and before the lookup), the assignment locked (404 with a
-- 'denied' record when absent or out of scope) and in one of the statuses
-- p_from (409 "cannot <p_verb>", p_verb defaulting to the action's verb).
-- err is the answer to return when not NULL.
CREATE OR REPLACE FUNCTION assignment_take(p_who jsonb, p_request_id text, p_args jsonb,
                                           p_action text, p_role text, p_from text[],
                                           p_verb text DEFAULT NULL, p_invalid jsonb DEFAULT NULL,
                                           OUT err jsonb, OUT a assignments)
LANGUAGE plpgsql AS $$
BEGIN
	err := coalesce(api_check(p_who, p_request_id, p_action, ARRAY[p_role]), p_invalid);
	IF err IS NOT NULL THEN
		RETURN;
	END IF;
	a := assignment_lock(p_who, p_args->>'id');
	IF a.id IS NULL THEN
		err := api_not_found(p_who, p_request_id, p_action, 'assignment', p_args->>'id');
	ELSIF NOT (a.status = ANY (p_from)) THEN
		err := invalid_transition(a.status, coalesce(p_verb, split_part(p_action, '.', 2)));
	END IF;
END $$;

-- An assignment's event for its organisation and office (accepted, completed,
-- failed): ids and the detail_url only. PL/pgSQL keeps the INSERT's plan for
-- the session (a SQL function is planned again at every call).
CREATE OR REPLACE FUNCTION assignment_outbox(a assignments, p_type text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO outbox (type, payload, organisation_id, office_id)
	VALUES (p_type, jsonb_build_object('assignment_id', a.id, 'referral_id', a.referral_id,
	                                   'detail_url', '/v1/assignments/' || a.id),
	        a.organisation_id, a.office_id);
END $$;

-- GET /v1/assignments/{id}. A worker's read of its own assignment is the
-- hot audited read (issue 12): one query reads the row in scope (the same
-- test as assignment_in_scope, under the same row-level security) with its
-- shape, then its one record; no api_check, break-glass lookup or second
-- read of the row. Every other role takes the general path.
-- Its context is the two settings that row-level security reads for a
-- worker (app.role, app.subject), as break_glass_read sets them; nothing
-- else in this path reads the others (no history row, trigger or matching),
-- and all end with the transaction. ctx_set's seven cost a twentieth of the
-- read (callgrind: 65,000 of about 1.5 M instructions).
CREATE OR REPLACE FUNCTION api_assignment_get(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	a assignments;
	err jsonb;
	aid uuid;
	shows boolean;
	j jsonb;
BEGIN
	IF p_who->>'role' = 'worker' THEN
		PERFORM set_config('app.role', 'worker', true),
		        set_config('app.subject', coalesce(p_who->>'id', ''), true);
		-- assignment_json(x) as its worker sees it, built in this query
		-- (the client's fields joined, not read again; sql_audit.bats
		-- checks that both answer the same).
		SELECT x.id, r.id IS NOT NULL, jsonb_build_object(
			'id', x.id, 'referral_id', x.referral_id, 'need', x.need, 'status', x.status,
			'worker_id', x.worker_id, 'urgency', x.urgency, 'region', x.region,
			'languages', to_jsonb(x.languages), 'offer_expires_at', ts(x.offer_expires_at),
			'offered_at', ts(x.offered_at), 'accepted_at', ts(x.accepted_at),
			'first_contact_at', ts(x.first_contact_at), 'on_hold_at', ts(x.on_hold_at),
			'ended_at', ts(x.ended_at), 'outcome', x.outcome, 'reason', x.reason,
			'reason_sealed', sealed_ref('assignments', 'reason', x.id, x.reason_sealed),
			'created_at', ts(x.created_at), 'updated_at', ts(x.updated_at),
			'replaces', x.replaces, 'replaced_by', x.replaced_by,
			'overdue', EXISTS (SELECT 1 FROM deadlines d WHERE d.assignment_id = x.id AND d.state = 'missed')
			        OR EXISTS (SELECT 1 FROM escalations e WHERE e.assignment_id = x.id AND e.resolved_at IS NULL),
			'client', CASE WHEN r.id IS NOT NULL THEN jsonb_build_object(
				'birth_year', r.birth_year, 'gender', r.gender, 'languages', to_jsonb(r.languages),
				'region', r.region,
				'contact_sealed', sealed_ref('referrals', 'contact', r.id, r.contact_sealed)) END,
			'note_sealed', CASE WHEN r.id IS NOT NULL
			               THEN sealed_ref('referrals', 'note', r.id, r.note_sealed) END)
		INTO aid, shows, j
		FROM assignments x
		LEFT JOIN referrals r ON r.id = x.referral_id
		     AND x.status IN ('accepted', 'in_progress', 'on_hold')
		WHERE x.id = try_uuid(p_args->>'id') AND x.worker_id::text = p_who->>'id';
		IF NOT shows THEN
			j := j - 'client' - 'note_sealed';
		END IF;
		IF aid IS NULL THEN
			RETURN api_not_found(p_who, p_request_id, 'assignment.get', 'assignment', p_args->>'id');
		END IF;
		-- A read that shows client fields is recorded as that.
		PERFORM audit_write(p_who, p_request_id,
		                    CASE WHEN shows THEN 'read_client_data' ELSE 'assignment.get' END,
		                    'assignment', aid::text, 'ok');
		RETURN api_result(200, j);
	END IF;
	err := api_check(p_who, p_request_id, 'assignment.get', ARRAY['worker', 'supervisor']);
	IF err IS NOT NULL THEN RETURN err; END IF;
	-- A supervisor who broke the glass reads it as its worker does while
	-- the window is open (70_access.sql).
	IF break_glass_active(p_who, p_args->>'id') THEN
		RETURN break_glass_read(p_who, p_request_id, p_args->>'id');
	END IF;
	SELECT * INTO a FROM assignments WHERE id = try_uuid(p_args->>'id');
	IF a.id IS NULL OR NOT assignment_in_scope(a, p_who) THEN
		RETURN api_not_found(p_who, p_request_id, 'assignment.get', 'assignment', p_args->>'id');
	END IF;
	RETURN api_done(p_who, p_request_id, CASE WHEN assignment_shows_client(a)
	                THEN 'read_client_data' ELSE 'assignment.get' END,
	                'assignment', a.id::text, 200, assignment_json(a));
END $$;

-- Items carry no client fields (each such read is fetched and audited one by
-- one through api_assignment_get).
CREATE OR REPLACE FUNCTION api_assignment_list(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE sql AS $$
	SELECT list_page(p_who, p_request_id, p_args, 'assignment.list', ARRAY['worker', 'supervisor'],
	                 'assignment', NULL, 'assignments',
	                 $i$assignment_json(x) - 'client' - 'note_sealed' - 'reason_sealed'$i$, $f$
		assignment_in_scope(x, $1)
		AND ($1->>'role' <> 'worker' OR x.worker_id = ($1->>'id')::uuid)
		AND ($2->>'status' IS NULL OR x.status = $2->>'status')
		AND (NOT coalesce(($2->>'overdue')::boolean, false) OR assignment_overdue(x.id))$f$)
$$;

CREATE OR REPLACE FUNCTION api_assignment_accept(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	t record := assignment_take(p_who, p_request_id, p_args, 'assignment.accept', 'worker',
	                            ARRAY['offered']);
	a assignments := t.a;
	pol deadline_policies;
BEGIN
	IF t.err IS NOT NULL THEN
		RETURN t.err;
	ELSIF now() >= a.offer_expires_at THEN
		RETURN api_error(409, 'offer_expired', 'the offer has expired');
	END IF;

	PERFORM ctx_system();
	pol := policy_for(a.need, a.urgency);
	PERFORM offer_end(a.id, 'accepted', NULL);
	UPDATE assignments SET status = 'accepted' WHERE id = a.id;
	PERFORM deadline_start('first_contact', a);
	IF pol.consultation_within IS NOT NULL THEN
		PERFORM deadline_start('consultation', a);
	END IF;
	PERFORM assignment_outbox(a, 'assignment.accepted');
	RETURN assignment_reply(p_who, p_request_id, 'assignment.accept', a.id, 200);
END $$;

CREATE OR REPLACE FUNCTION api_assignment_decline(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	t record := assignment_take(p_who, p_request_id, p_args, 'assignment.decline', 'worker',
	                            ARRAY['offered']);
	a assignments := t.a;
	seen jsonb;
BEGIN
	IF t.err IS NOT NULL THEN
		RETURN t.err;
	END IF;

	PERFORM ctx_system();
	PERFORM offer_end(a.id, 'declined', NULL);
	UPDATE assignments SET status = 'declined', reason = NULL,
	       reason_sealed = p_args->>'reason_sealed'
	WHERE id = a.id RETURNING * INTO a;
	-- What the declining worker last saw, before the row moves on.
	PERFORM ctx_caller();
	seen := assignment_json(a);
	PERFORM ctx_system();
	PERFORM match_assignment(a.id);
	PERFORM ctx_caller();
	RETURN api_done(p_who, p_request_id, 'assignment.decline', 'assignment', a.id::text, 200, seen);
END $$;

CREATE OR REPLACE FUNCTION api_assignment_event(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	at_ timestamptz := coalesce((p_args->>'at')::timestamptz, now());
	t record := assignment_take(p_who, p_request_id, p_args, 'assignment.event', 'worker',
	                            ARRAY['accepted', 'in_progress', 'on_hold'], 'record an event on');
	a assignments := t.a;
	e assignment_events;
	typ text := p_args->>'type';
BEGIN
	IF t.err IS NOT NULL THEN
		RETURN t.err;
	END IF;
	-- An event happened after the assignment was accepted and not in the
	-- future: a backdated contact would meet a deadline in no time. A
	-- minute of clock skew is forgiven (and clamped to now).
	IF at_ < date_trunc('second', a.accepted_at) OR at_ > now() + interval '1 minute' THEN
		RETURN api_error(422, 'invalid_value',
		                 'at must lie between the assignment''s acceptance and now', '/at');
	END IF;
	at_ := least(at_, now());

	PERFORM ctx_system();
	INSERT INTO assignment_events (id, assignment_id, type, at, outcome_sealed, detail_sealed,
	                               actor_role, actor_id)
	VALUES (coalesce(try_uuid(p_args->>'event_id'), gen_random_uuid()), a.id, typ, at_,
	        p_args->>'outcome_sealed', p_args->>'detail_sealed', 'worker', (p_who->>'id')::uuid)
	RETURNING * INTO e;

	IF typ = 'contact_made' AND a.first_contact_at IS NULL THEN
		UPDATE assignments SET first_contact_at = at_,
		       status = CASE WHEN status = 'accepted' THEN 'in_progress' ELSE status END
		WHERE id = a.id;
		-- Late contact still records when it happened (the reports need it).
		UPDATE deadlines SET state = CASE WHEN state = 'pending' THEN 'met' ELSE state END,
		       met_at = at_, elapsed = greatest(at_ - starts_at, interval '0')
		WHERE assignment_id = a.id AND kind = 'first_contact' AND met_at IS NULL
		  AND state IN ('pending', 'missed');
	ELSIF typ = 'service_delivered' THEN
		UPDATE deadlines SET state = CASE WHEN state = 'pending' THEN 'met' ELSE state END,
		       met_at = at_, elapsed = greatest(at_ - starts_at, interval '0')
		WHERE assignment_id = a.id AND kind = 'consultation' AND met_at IS NULL
		  AND state IN ('pending', 'missed');
	END IF;

	PERFORM ctx_caller();
	RETURN api_done(p_who, p_request_id, 'assignment.event', 'assignment', a.id::text, 201,
		jsonb_build_object('id', e.id, 'assignment_id', a.id, 'type', e.type, 'at', ts(e.at),
		'outcome_sealed', sealed_ref('assignment_events', 'outcome', e.id, e.outcome_sealed),
		'created_at', ts(e.created_at)));
END $$;

-- hold, resume, complete and fail: one status change each, by the worker.
-- p_action is the operation's one name ('assignment.hold'): the audit action
-- of the route and of its api_ function.
CREATE OR REPLACE FUNCTION assignment_worker_step(p_who jsonb, p_request_id text, p_args jsonb,
                                       p_action text, p_from text[], p_to text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	t record := assignment_take(p_who, p_request_id, p_args, p_action, 'worker', p_from);
	a assignments := t.a;
	verb text := split_part(p_action, '.', 2);
BEGIN
	IF t.err IS NOT NULL THEN
		RETURN t.err;
	END IF;

	PERFORM ctx_system();
	UPDATE assignments SET status = p_to,
	       reason = CASE WHEN verb = 'fail' THEN left(p_args->>'reason', 32) ELSE reason END,
	       reason_sealed = CASE WHEN verb = 'hold' THEN p_args->>'reason_sealed'
	                            ELSE reason_sealed END,
	       outcome = CASE WHEN verb = 'complete' THEN p_args->>'outcome'
	                      WHEN verb = 'fail' THEN 'failed' ELSE outcome END,
	       detail_sealed = CASE WHEN verb IN ('complete', 'fail')
	                            THEN p_args->>'detail_sealed' ELSE detail_sealed END
	WHERE id = a.id;
	IF p_to IN ('completed', 'failed') THEN
		PERFORM deadlines_void(a.id);
		PERFORM assignment_outbox(a, 'assignment.' || p_to);
	END IF;
	RETURN assignment_reply(p_who, p_request_id, p_action, a.id, 200);
END $$;

CREATE OR REPLACE FUNCTION api_assignment_hold(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE sql AS $$
	SELECT assignment_worker_step(p_who, p_request_id, p_args, 'assignment.hold',
	                              ARRAY['accepted', 'in_progress'], 'on_hold')
$$;

CREATE OR REPLACE FUNCTION api_assignment_resume(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE sql AS $$
	SELECT assignment_worker_step(p_who, p_request_id, p_args, 'assignment.resume',
	                              ARRAY['on_hold'], 'in_progress')
$$;

CREATE OR REPLACE FUNCTION api_assignment_complete(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE sql AS $$
	SELECT assignment_worker_step(p_who, p_request_id, p_args, 'assignment.complete',
	                              ARRAY['in_progress'], 'completed')
$$;

CREATE OR REPLACE FUNCTION api_assignment_fail(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE sql AS $$
	SELECT assignment_worker_step(p_who, p_request_id, p_args, 'assignment.fail',
	                              ARRAY['in_progress'], 'failed')
$$;

-- A supervisor moves an open assignment to a worker of its organisation: the
-- old row ends 'reassigned', a new row for the same need is offered to that
-- worker at once (the new row first, so the referral never looks closed).
CREATE OR REPLACE FUNCTION api_assignment_reassign(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	a assignments;
	n assignments;
	w workers;
	why text := p_args->>'reason';
	-- The daemon seals the reason under the referral's data key (bound to
	-- assignment_history.reason of the referral): only that reaches us.
	why_sealed text := p_args->>'reason_sealed';
	t record := assignment_take(p_who, p_request_id, p_args, 'assignment.reassign', 'supervisor',
		ARRAY['unassigned', 'offered', 'accepted', 'in_progress', 'on_hold'], NULL,
		CASE WHEN why_sealed IS NULL AND (why IS NULL OR length(why) NOT BETWEEN 1 AND 500)
		     THEN api_error(400, 'invalid_value', 'reason is required (1 to 500 characters)',
		                    '/reason') END);
BEGIN
	IF t.err IS NOT NULL THEN
		RETURN t.err;
	END IF;
	a := t.a;

	PERFORM ctx_system();
	SELECT * INTO w FROM workers
	WHERE id = try_uuid(p_args->>'worker_id')
	  AND (coalesce((p_who->>'programme')::boolean, false) OR organisation_id::text = p_who->>'org_id')
	FOR UPDATE;
	IF w.id IS NULL OR w.id IS NOT DISTINCT FROM a.worker_id OR w.kind <> a.need
	   OR NOT w.active OR w.on_leave OR w.open_count >= w.capacity THEN
		PERFORM ctx_caller();
		RETURN api_error(400, 'invalid_field',
		                 'worker_id is not an available worker of this kind in your organisation',
		                 '/worker_id');
	END IF;

	PERFORM set_config('app.reason', coalesce(why, ''), true);
	PERFORM set_config('app.reason_sealed', coalesce(why_sealed, ''), true);
	INSERT INTO assignments (referral_id, office_id, need, urgency, region, languages, replaces)
	VALUES (a.referral_id, a.office_id, a.need, a.urgency, a.region, a.languages, a.id)
	RETURNING * INTO n;
	PERFORM offer_end(a.id, 'reassigned', 'supervisor');
	UPDATE assignments SET status = 'reassigned', replaced_by = n.id, reason = why WHERE id = a.id;
	PERFORM deadlines_void(a.id);
	UPDATE escalations SET resolved_at = now() WHERE assignment_id = a.id AND resolved_at IS NULL;
	PERFORM offer_make(n, w, jsonb_build_object('rule', 'supervisor', 'supervisor_id', p_who->>'id',
	                                            'open_before', w.open_count, 'capacity', w.capacity));
	PERFORM set_config('app.reason', '', true);
	PERFORM set_config('app.reason_sealed', '', true);
	RETURN assignment_reply(p_who, p_request_id, 'assignment.reassign', n.id, 200);
END $$;
