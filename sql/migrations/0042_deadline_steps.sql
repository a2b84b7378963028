-- 0042_deadline_steps.sql - deadlines that follow the working clock, stop
-- while on hold, remind before they fall due, and escalate in steps.
--
-- Owns: the deadline columns for clocks, holds and reminders; the hold and
-- resume trigger; offer_make() and api_assignment_accept() as revised (due
-- times from deadline_due()); deadline_steps() (the reminder and level-2
-- job's statement); escalation levels; api_deadline_list() with
-- escalations; the reassignment reason and api_assignment_history(); and
-- followup_gauges() for /metrics.
-- Must never: remind or escalate one level twice (several daemons, restarts:
-- the state is in these rows, taken FOR UPDATE SKIP LOCKED and re-checked);
-- count time on hold as time taken.

ALTER TABLE deadlines
	ADD COLUMN clock text NOT NULL DEFAULT 'wall' CHECK (clock IN ('wall', 'working')),
	ADD COLUMN remind_at timestamptz,
	ADD COLUMN reminded_at timestamptz,
	-- On hold: paused_at is set, held_left is the time (on the deadline's
	-- clock) it had left, and due_at is parked far ahead so the sweeper,
	-- which reads only due_at, leaves it alone. held_total sums finished holds.
	ADD COLUMN paused_at timestamptz,
	ADD COLUMN held_left interval,
	ADD COLUMN held_total interval NOT NULL DEFAULT interval '0';

CREATE INDEX deadlines_remind_due ON deadlines (remind_at)
	WHERE state = 'pending' AND reminded_at IS NULL AND remind_at IS NOT NULL;
CREATE INDEX deadlines_pending_kind ON deadlines (kind, due_at) WHERE state = 'pending';

-- Level 1 is the row the sweeper creates; level 2 is recorded on it.
ALTER TABLE escalations
	ADD COLUMN level integer NOT NULL DEFAULT 1 CHECK (level IN (1, 2)),
	ADD COLUMN level2_at timestamptz,
	ADD CHECK ((level = 2) = (level2_at IS NOT NULL));
CREATE INDEX escalations_level1_open ON escalations (created_at)
	WHERE reason = 'deadline_missed' AND resolved_at IS NULL AND level2_at IS NULL;
CREATE INDEX escalations_open ON escalations (level) WHERE resolved_at IS NULL;

-- The parked due time of a held deadline.
CREATE FUNCTION deadline_parked() RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$ SELECT timestamptz '9999-01-01 00:00:00+00' $$;

-- Holds -----------------------------------------------------------------------

-- on_hold stops first-contact and consultation deadlines (not the accept
-- deadline: an assignment on hold has been accepted); leaving on_hold for
-- in_progress starts them again with the time they had left. Any other exit
-- (reassigned, cancelled) voids them through the acting function, as before.
-- Acting on an assignment also settles its escalations: acceptance answers
-- a missed accept deadline, an ended assignment answers all.
CREATE FUNCTION assignment_steps_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.status = 'on_hold' AND OLD.status <> 'on_hold' THEN
		UPDATE deadlines SET paused_at = now(),
		       held_left = clock_left(clock, organisation_id, now(), due_at),
		       due_at = deadline_parked()
		WHERE assignment_id = NEW.id AND state = 'pending' AND paused_at IS NULL
		  AND kind IN ('first_contact', 'consultation');
	ELSIF OLD.status = 'on_hold' AND NEW.status = 'in_progress' THEN
		UPDATE deadlines SET due_at = clock_add(clock, organisation_id, now(), held_left),
		       held_total = held_total + (now() - paused_at),
		       remind_at = CASE WHEN remind_at IS NOT NULL
		                        THEN clock_add(clock, organisation_id, now(), held_left)
		                             - (due_at - remind_at) END,
		       paused_at = NULL, held_left = NULL
		WHERE assignment_id = NEW.id AND state = 'pending' AND paused_at IS NOT NULL;
	END IF;
	IF NEW.status = 'accepted' AND OLD.status = 'offered' THEN
		UPDATE escalations e SET resolved_at = now()
		FROM deadlines d
		WHERE e.assignment_id = NEW.id AND e.resolved_at IS NULL AND e.deadline_id = d.id
		  AND d.kind = 'accept';
	ELSIF assignment_is_ended(NEW.status) AND NOT assignment_is_ended(OLD.status) THEN
		UPDATE escalations SET resolved_at = now()
		WHERE assignment_id = NEW.id AND resolved_at IS NULL;
	END IF;
	RETURN NULL;
END $$;

CREATE TRIGGER assignment_steps AFTER UPDATE OF status ON assignments
	FOR EACH ROW WHEN (NEW.status IS DISTINCT FROM OLD.status)
	EXECUTE FUNCTION assignment_steps_trg();

-- When a deadline is met: the time it took excludes time on hold (finished
-- holds, and the running one when met during a hold); a held deadline shows
-- the due time it would have had; its escalation is answered.
CREATE FUNCTION deadline_met_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.met_at IS NOT NULL AND OLD.met_at IS NULL THEN
		IF NEW.elapsed IS NOT NULL THEN
			NEW.elapsed := greatest(NEW.elapsed - NEW.held_total
				- CASE WHEN NEW.paused_at IS NOT NULL AND NEW.met_at > NEW.paused_at
				       THEN NEW.met_at - NEW.paused_at ELSE interval '0' END, interval '0');
		END IF;
		UPDATE escalations SET resolved_at = now()
		WHERE deadline_id = NEW.id AND resolved_at IS NULL;
	END IF;
	IF NEW.state <> 'pending' AND NEW.paused_at IS NOT NULL AND NEW.due_at = deadline_parked() THEN
		NEW.due_at := NEW.paused_at + coalesce(NEW.held_left, interval '0');
	END IF;
	RETURN NEW;
END $$;

CREATE TRIGGER deadline_met BEFORE UPDATE ON deadlines
	FOR EACH ROW EXECUTE FUNCTION deadline_met_trg();

-- Deadline creation (as 0005 and 0008, due times from deadline_due) ------------

CREATE OR REPLACE FUNCTION offer_make(a assignments, w workers, p_reason jsonb) RETURNS assignments
LANGUAGE plpgsql AS $$
DECLARE
	dd record := deadline_due('accept', a.need, a.urgency, w.organisation_id, now());
	o offers;
	r assignments;
BEGIN
	INSERT INTO offers (assignment_id, worker_id, expires_at, match_reason)
	VALUES (a.id, w.id, dd.due_at, p_reason)
	RETURNING * INTO o;

	UPDATE assignments SET status = 'offered', worker_id = w.id,
	       organisation_id = w.organisation_id, offer_expires_at = o.expires_at,
	       match_reason = p_reason
	WHERE id = a.id RETURNING * INTO r;

	UPDATE workers SET last_assigned_at = now() WHERE id = w.id;

	INSERT INTO deadlines (kind, assignment_id, offer_id, worker_id, organisation_id, due_at,
	                       clock, remind_at)
	VALUES ('accept', a.id, o.id, w.id, w.organisation_id, o.expires_at, dd.clock, dd.remind_at);

	UPDATE escalations SET resolved_at = now()
	WHERE assignment_id = a.id AND reason = 'unassigned' AND resolved_at IS NULL;

	INSERT INTO outbox (type, payload, organisation_id)
	VALUES ('assignment.offered',
	        jsonb_build_object('assignment_id', a.id, 'worker_id', w.id,
	                           'detail_url', '/v1/assignments/' || a.id),
	        w.organisation_id);
	RETURN r;
END $$;

-- A deadline of an accepted assignment, due on its policy's clock.
CREATE FUNCTION deadline_start(p_kind text, a assignments) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	dd record := deadline_due(p_kind, a.need, a.urgency, a.organisation_id, now());
BEGIN
	INSERT INTO deadlines (kind, assignment_id, worker_id, organisation_id, due_at, clock, remind_at)
	VALUES (p_kind, a.id, a.worker_id, a.organisation_id, dd.due_at, dd.clock, dd.remind_at);
END $$;

CREATE OR REPLACE FUNCTION api_assignment_accept(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	a assignments;
	pol deadline_policies;
BEGIN
	PERFORM ctx_set(p_who, p_request_id);
	IF p_who->>'role' IS DISTINCT FROM 'worker' THEN
		RETURN api_forbidden(p_who, p_request_id, 'assignment.accept');
	END IF;
	a := assignment_lock(p_who, p_args->>'id');
	IF a.id IS NULL THEN
		RETURN api_not_found(p_who, p_request_id, 'assignment.accept', 'assignment', p_args->>'id');
	END IF;
	IF a.status <> 'offered' THEN
		RETURN invalid_transition(a.status, 'accept');
	END IF;
	IF now() >= a.offer_expires_at THEN
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
	INSERT INTO outbox (type, payload, organisation_id, office_id)
	VALUES ('assignment.accepted',
	        jsonb_build_object('assignment_id', a.id, 'referral_id', a.referral_id,
	                           'detail_url', '/v1/assignments/' || a.id),
	        a.organisation_id, a.office_id);
	RETURN assignment_reply(p_who, p_request_id, 'assignment.accept', a.id, 200);
END $$;

-- Reminders and level-2 escalation ---------------------------------------------

-- The job's statement: claim due reminders and level-1 escalations older than
-- p_escalate_after (both FOR UPDATE SKIP LOCKED, re-checked), act, and say
-- when the next is due. A level-1 escalation whose assignment was acted on
-- meanwhile is resolved instead of escalated.
CREATE FUNCTION deadline_steps(p_limit integer, p_escalate_after interval) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	sys jsonb := jsonb_build_object('role', 'system');
	lim integer := greatest(coalesce(p_limit, 100), 1);
	d deadlines;
	e escalations;
	a assignments;
	reminded uuid[] := '{}';
	escalated uuid[] := '{}';
	resolved integer := 0;
	x uuid;
	next_at timestamptz;
BEGIN
	PERFORM ctx_set(sys, 'deadline_steps');
	PERFORM set_config('lock_timeout', '1s', true);
	FOR d IN SELECT * FROM deadlines
	         WHERE state = 'pending' AND reminded_at IS NULL AND remind_at <= now()
	         ORDER BY remind_at LIMIT lim
	         FOR UPDATE SKIP LOCKED LOOP
		UPDATE deadlines SET reminded_at = now() WHERE id = d.id;
		INSERT INTO outbox (type, payload, organisation_id)
		VALUES ('deadline.due_soon',
		        jsonb_build_object('deadline_id', d.id, 'kind', d.kind,
		                           'assignment_id', d.assignment_id, 'due_at', ts(d.due_at),
		                           'detail_url', '/v1/assignments/' || d.assignment_id),
		        d.organisation_id);
		reminded := reminded || d.id;
	END LOOP;

	FOR e IN SELECT * FROM escalations
	         WHERE reason = 'deadline_missed' AND resolved_at IS NULL AND level2_at IS NULL
	           AND created_at <= now() - p_escalate_after
	         ORDER BY created_at LIMIT lim
	         FOR UPDATE SKIP LOCKED LOOP
		SELECT * INTO d FROM deadlines WHERE id = e.deadline_id;
		SELECT * INTO a FROM assignments WHERE id = e.assignment_id;
		IF d.met_at IS NOT NULL OR assignment_is_ended(a.status)
		   OR (d.kind = 'accept' AND a.status IN ('accepted', 'in_progress', 'on_hold')) THEN
			UPDATE escalations SET resolved_at = now() WHERE id = e.id;
			resolved := resolved + 1;
			CONTINUE;
		END IF;
		UPDATE escalations SET level = 2, level2_at = now() WHERE id = e.id;
		INSERT INTO outbox (type, payload)
		VALUES ('deadline.escalated',
		        jsonb_build_object('deadline_id', d.id, 'kind', d.kind, 'level', 2,
		                           'assignment_id', d.assignment_id,
		                           'detail_url', '/v1/assignments/' || d.assignment_id));
		escalated := escalated || d.id;
	END LOOP;

	FOREACH x IN ARRAY reminded LOOP
		PERFORM audit_write(sys, 'deadline_steps', 'deadline.remind', 'deadline', x::text, 'ok');
	END LOOP;
	FOREACH x IN ARRAY escalated LOOP
		PERFORM audit_write(sys, 'deadline_steps', 'deadline.escalate', 'deadline', x::text, 'ok');
	END LOOP;

	SELECT least(
		(SELECT min(remind_at) FROM deadlines
		 WHERE state = 'pending' AND reminded_at IS NULL AND remind_at IS NOT NULL),
		(SELECT min(created_at) + p_escalate_after FROM escalations
		 WHERE reason = 'deadline_missed' AND resolved_at IS NULL AND level2_at IS NULL))
	INTO next_at;
	RETURN jsonb_build_object('reminded', cardinality(reminded), 'escalated', cardinality(escalated),
		'resolved', resolved,
		'more', cardinality(reminded) >= lim OR cardinality(escalated) + resolved >= lim,
		'next_in_ms', CASE WHEN next_at IS NULL THEN NULL
		                   ELSE greatest(0, (extract(epoch FROM next_at - clock_timestamp()) * 1000)::bigint) END);
END $$;

-- The supervisor's deadline list, with the escalation steps -------------------------

CREATE OR REPLACE FUNCTION deadline_json(d deadlines) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('id', d.id, 'kind', d.kind, 'assignment_id', d.assignment_id,
		'worker_id', d.worker_id, 'organisation_id', d.organisation_id,
		'due_at', CASE WHEN d.state = 'pending' AND d.paused_at IS NOT NULL THEN NULL
		               ELSE ts(d.due_at) END,
		'on_hold', d.state = 'pending' AND d.paused_at IS NOT NULL,
		'clock', d.clock, 'remind_at', ts(d.remind_at), 'reminded_at', ts(d.reminded_at),
		'state', d.state, 'met_at', ts(d.met_at),
		'elapsed_seconds', extract(epoch FROM d.elapsed)::bigint,
		'missed_at', ts(d.missed_at), 'escalated', d.escalated,
		'escalations', coalesce((
			SELECT jsonb_agg(jsonb_build_object('level', s.level, 'at', ts(s.at)) ORDER BY s.level)
			FROM escalations e,
			     LATERAL (VALUES (1, e.created_at), (2, e.level2_at)) s(level, at)
			WHERE e.deadline_id = d.id AND s.at IS NOT NULL), '[]'),
		'created_at', ts(d.created_at))
$$;

-- Reassignment with a reason, and the history ------------------------------------

ALTER TABLE assignment_history ADD COLUMN reason text CHECK (length(reason) <= 500);

-- As in 0004, with the reason of the change: the one the acting function
-- names for the transaction (app.reason), or the assignment's own reason
-- when this change set it (decline, hold, fail).
CREATE OR REPLACE FUNCTION assignment_after_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	was_open boolean := TG_OP = 'UPDATE' AND assignment_is_open(OLD.status) AND OLD.worker_id IS NOT NULL;
	is_open boolean := assignment_is_open(NEW.status) AND NEW.worker_id IS NOT NULL;
BEGIN
	IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status
	   OR NEW.worker_id IS DISTINCT FROM OLD.worker_id THEN
		INSERT INTO assignment_history (assignment_id, from_status, to_status, worker_id,
		                                actor_role, actor_id, request_id, reason)
		VALUES (NEW.id, CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END, NEW.status,
		        NEW.worker_id,
		        coalesce(nullif(current_setting('app.actor_role', true), ''), 'db:' || current_user),
		        nullif(current_setting('app.actor_id', true), ''),
		        nullif(current_setting('app.request_id', true), ''),
		        coalesce(nullif(current_setting('app.reason', true), ''),
		                 CASE WHEN TG_OP = 'UPDATE' AND NEW.reason IS DISTINCT FROM OLD.reason
		                      THEN NEW.reason END));
	END IF;

	IF was_open AND (NOT is_open OR NEW.worker_id IS DISTINCT FROM OLD.worker_id) THEN
		UPDATE workers SET open_count = open_count - 1 WHERE id = OLD.worker_id;
	END IF;
	IF is_open AND (NOT was_open OR NEW.worker_id IS DISTINCT FROM OLD.worker_id) THEN
		UPDATE workers SET open_count = open_count + 1 WHERE id = NEW.worker_id;
	END IF;

	-- A referral is closed once every one of its assignments has ended.
	IF TG_OP = 'UPDATE' AND assignment_is_ended(NEW.status) AND NOT assignment_is_ended(OLD.status) THEN
		UPDATE referrals r SET status = 'closed', closed_at = now(), updated_at = now()
		WHERE r.id = NEW.referral_id AND r.status = 'open'
		  AND NOT EXISTS (SELECT 1 FROM assignments a
		                  WHERE a.referral_id = r.id AND NOT assignment_is_ended(a.status));
		IF FOUND THEN
			INSERT INTO outbox (type, payload, office_id)
			SELECT 'referral.closed',
			       jsonb_build_object('referral_id', NEW.referral_id,
			                          'detail_url', '/v1/referrals/' || NEW.referral_id),
			       NEW.office_id;
		END IF;
	END IF;
	RETURN NULL;
END $$;

-- As in 0008, with the supervisor's reason (required, 1-500) on the old row
-- and in the history of both rows.
CREATE OR REPLACE FUNCTION api_assignment_reassign(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	a assignments;
	n assignments;
	w workers;
	why text := p_args->>'reason';
BEGIN
	PERFORM ctx_set(p_who, p_request_id);
	IF p_who->>'role' IS DISTINCT FROM 'supervisor' THEN
		RETURN api_forbidden(p_who, p_request_id, 'assignment.reassign');
	END IF;
	IF why IS NULL OR length(why) NOT BETWEEN 1 AND 500 THEN
		RETURN api_error(400, 'invalid_value', 'reason is required (1 to 500 characters)', '/reason');
	END IF;
	a := assignment_lock(p_who, p_args->>'id');
	IF a.id IS NULL THEN
		RETURN api_not_found(p_who, p_request_id, 'assignment.reassign', 'assignment', p_args->>'id');
	END IF;
	IF a.status NOT IN ('unassigned', 'offered', 'accepted', 'in_progress', 'on_hold') THEN
		RETURN invalid_transition(a.status, 'reassign');
	END IF;

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

	PERFORM set_config('app.reason', why, true);
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
	RETURN assignment_reply(p_who, p_request_id, 'assignment.reassign', n.id, 200);
END $$;

-- Its organisation's supervisors; its worker while it holds it (offered to
-- it or open with it). Oldest first; the cursor is the last row's id.
CREATE FUNCTION api_assignment_history(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	a assignments;
	lim integer := api_limit(p_args);
	after bigint := 0;
	page assignment_history[];
	n integer;
BEGIN
	PERFORM ctx_set(p_who, p_request_id);
	IF p_who->>'role' NOT IN ('worker', 'supervisor') THEN
		RETURN api_forbidden(p_who, p_request_id, 'assignment.history');
	END IF;
	IF p_args->>'cursor' IS NOT NULL THEN
		BEGIN
			after := convert_from(decode(translate(p_args->>'cursor', '-_', '+/')
				|| repeat('=', (4 - length(p_args->>'cursor') % 4) % 4), 'base64'), 'UTF8')::bigint;
		EXCEPTION WHEN OTHERS THEN
			RETURN api_error(400, 'invalid_cursor', 'cursor is not valid', '/cursor');
		END;
	END IF;
	SELECT * INTO a FROM assignments WHERE id = try_uuid(p_args->>'id');
	IF a.id IS NULL OR NOT assignment_in_scope(a, p_who)
	   OR (p_who->>'role' = 'worker' AND NOT assignment_is_open(a.status)) THEN
		RETURN api_not_found(p_who, p_request_id, 'assignment.history', 'assignment', p_args->>'id');
	END IF;
	SELECT array_agg(h ORDER BY h.id) INTO page FROM (
		SELECT * FROM assignment_history
		WHERE assignment_id = a.id AND id > after
		ORDER BY id LIMIT lim + 1) h;
	n := coalesce(cardinality(page), 0);
	PERFORM audit_write(p_who, p_request_id, 'assignment.history', 'assignment', a.id::text, 'ok');
	RETURN api_result(200, jsonb_build_object(
		'items', coalesce((SELECT jsonb_agg(jsonb_build_object(
			'at', to_char(page[i].at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
			'from_status', page[i].from_status, 'to_status', page[i].to_status,
			'worker_id', page[i].worker_id,
			'actor_role', CASE WHEN page[i].actor_role LIKE 'db:%' THEN 'system'
			                   ELSE page[i].actor_role END,
			'reason', page[i].reason) ORDER BY i)
			FROM generate_series(1, least(n, lim)) i), '[]'),
		'next', CASE WHEN n > lim THEN rtrim(translate(encode(convert_to(page[lim].id::text, 'UTF8'),
		                                                       'base64'), '+/', '-_'), '=') END));
END $$;

-- Metrics ---------------------------------------------------------------------------

-- One statement per scrape (the daemon caches the answer a few seconds),
-- each part through a partial index: pending and overdue deadlines by kind
-- (overdue: missed with its escalation still open), unassigned assignments
-- by region, open escalations by level.
CREATE FUNCTION followup_gauges() RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM ctx_system();
	RETURN jsonb_build_object(
		'pending', coalesce((SELECT jsonb_object_agg(kind, n) FROM (
			SELECT kind, count(*) n FROM deadlines WHERE state = 'pending' GROUP BY kind) x), '{}'),
		'overdue', coalesce((SELECT jsonb_object_agg(kind, n) FROM (
			SELECT d.kind, count(*) n FROM escalations e JOIN deadlines d ON d.id = e.deadline_id
			WHERE e.resolved_at IS NULL AND e.reason = 'deadline_missed' GROUP BY d.kind) x), '{}'),
		'unassigned', coalesce((SELECT jsonb_object_agg(region, n) FROM (
			SELECT region, count(*) n FROM assignments WHERE status = 'unassigned'
			GROUP BY region) x), '{}'),
		'escalations', coalesce((SELECT jsonb_object_agg(level, n) FROM (
			SELECT level, count(*) n FROM escalations WHERE resolved_at IS NULL
			GROUP BY level) x), '{}'));
END $$;

DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'referrald_app') THEN
		EXECUTE 'GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO referrald_app';
	END IF;
END $$;
