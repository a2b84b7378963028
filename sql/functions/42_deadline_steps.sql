-- 42_deadline_steps.sql - deadlines that follow the working clock, stop
-- while on hold, remind before they fall due, and escalate in steps.
--
-- Owns (columns in migration 0040): the hold and resume trigger, the
-- met-deadline trigger (time on hold left out, escalation answered),
-- deadline_start() (what acceptance creates, due on the policy's clock),
-- deadline_steps() (the reminder and level-2 job's statement),
-- api_assignment_history(), and followup_gauges() for /metrics. Elsewhere:
-- offer_make (05), api_assignment_accept and the reassignment reason (08),
-- the history's reason (04), the deadline's escalations (10).
-- Must never: remind or escalate one level twice (several daemons, restarts:
-- the state is in these rows, taken FOR UPDATE SKIP LOCKED and re-checked);
-- count time on hold as time taken.

-- The parked due time of a held deadline.
CREATE OR REPLACE FUNCTION deadline_parked() RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$ SELECT timestamptz '9999-01-01 00:00:00+00' $$;

-- Holds -----------------------------------------------------------------------

-- on_hold stops first-contact and consultation deadlines (not the accept
-- deadline: an assignment on hold has been accepted); leaving on_hold for
-- in_progress starts them again with the time they had left. Any other exit
-- (reassigned, cancelled) voids them through the acting function, as before.
-- Acting on an assignment also settles its escalations: acceptance answers
-- a missed accept deadline, an ended assignment answers all.
CREATE OR REPLACE FUNCTION assignment_steps_trg() RETURNS trigger
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

CREATE OR REPLACE TRIGGER assignment_steps AFTER UPDATE OF status ON assignments
	FOR EACH ROW WHEN (NEW.status IS DISTINCT FROM OLD.status)
	EXECUTE FUNCTION assignment_steps_trg();

-- When a deadline is met: the time it took excludes time on hold (finished
-- holds, and the running one when met during a hold); a held deadline shows
-- the due time it would have had; its escalation is answered.
CREATE OR REPLACE FUNCTION deadline_met_trg() RETURNS trigger
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

CREATE OR REPLACE TRIGGER deadline_met BEFORE UPDATE ON deadlines
	FOR EACH ROW EXECUTE FUNCTION deadline_met_trg();

-- Deadline creation (as 0005 and 0008, due times from deadline_due) ------------

-- A deadline of an accepted assignment, due on its policy's clock.
CREATE OR REPLACE FUNCTION deadline_start(p_kind text, a assignments) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	dd record := deadline_due(p_kind, a.need, a.urgency, a.organisation_id, now());
BEGIN
	INSERT INTO deadlines (kind, assignment_id, worker_id, organisation_id, due_at, clock, remind_at)
	VALUES (p_kind, a.id, a.worker_id, a.organisation_id, dd.due_at, dd.clock, dd.remind_at);
END $$;

-- Reminders and level-2 escalation ---------------------------------------------

-- Due reminders, claimed FOR UPDATE SKIP LOCKED and marked: each goes out
-- once (deadline.due_soon to the deadline's organisation). Their ids.
CREATE OR REPLACE FUNCTION deadline_remind_due(p_limit integer) RETURNS uuid[]
LANGUAGE plpgsql AS $$
DECLARE
	d deadlines;
	done uuid[] := '{}';
BEGIN
	FOR d IN SELECT * FROM deadlines
	         WHERE state = 'pending' AND reminded_at IS NULL AND remind_at <= now()
	         ORDER BY remind_at LIMIT p_limit
	         FOR UPDATE SKIP LOCKED LOOP
		UPDATE deadlines SET reminded_at = now() WHERE id = d.id;
		INSERT INTO outbox (type, payload, organisation_id)
		VALUES ('deadline.due_soon',
		        jsonb_build_object('deadline_id', d.id, 'kind', d.kind,
		                           'assignment_id', d.assignment_id, 'due_at', ts(d.due_at),
		                           'detail_url', '/v1/assignments/' || d.assignment_id),
		        d.organisation_id);
		done := done || d.id;
	END LOOP;
	RETURN done;
END $$;

-- Level-1 escalations older than p_after, claimed FOR UPDATE SKIP LOCKED:
-- level 2 (deadline.escalated to programme endpoints) when the assignment is
-- still not acted on, resolved otherwise. The escalated deadlines' ids, and
-- how many were resolved.
CREATE OR REPLACE FUNCTION deadline_escalate_due(p_limit integer, p_after interval,
                                                 OUT escalated uuid[], OUT resolved integer)
LANGUAGE plpgsql AS $$
DECLARE
	e escalations;
	d deadlines;
	a assignments;
BEGIN
	escalated := '{}';
	resolved := 0;
	FOR e IN SELECT * FROM escalations
	         WHERE reason = 'deadline_missed' AND resolved_at IS NULL AND level2_at IS NULL
	           AND created_at <= now() - p_after
	         ORDER BY created_at LIMIT p_limit
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
END $$;

-- The job's statement: reminders, then level 2, then the audit (last: the
-- chain head is the last lock a transaction takes), and when the next of
-- either is due.
CREATE OR REPLACE FUNCTION deadline_steps(p_limit integer, p_escalate_after interval) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	sys jsonb := job_begin('deadline_steps');
	lim integer := greatest(coalesce(p_limit, 100), 1);
	reminded uuid[];
	esc record;
	x uuid;
	next_at timestamptz;
BEGIN
	reminded := deadline_remind_due(lim);
	esc := deadline_escalate_due(lim, p_escalate_after);
	FOREACH x IN ARRAY reminded LOOP
		PERFORM audit_write(sys, 'deadline_steps', 'deadline.remind', 'deadline', x::text, 'ok');
	END LOOP;
	FOREACH x IN ARRAY esc.escalated LOOP
		PERFORM audit_write(sys, 'deadline_steps', 'deadline.escalate', 'deadline', x::text, 'ok');
	END LOOP;
	SELECT least(
		(SELECT min(remind_at) FROM deadlines
		 WHERE state = 'pending' AND reminded_at IS NULL AND remind_at IS NOT NULL),
		(SELECT min(created_at) + p_escalate_after FROM escalations
		 WHERE reason = 'deadline_missed' AND resolved_at IS NULL AND level2_at IS NULL))
	INTO next_at;
	RETURN jsonb_build_object('reminded', cardinality(reminded),
		'escalated', cardinality(esc.escalated), 'resolved', esc.resolved,
		'more', cardinality(reminded) >= lim OR cardinality(esc.escalated) + esc.resolved >= lim,
		'next_in_ms', CASE WHEN next_at IS NULL THEN NULL
		                   ELSE greatest(0, (extract(epoch FROM next_at - clock_timestamp()) * 1000)::bigint) END);
END $$;

-- The supervisor's deadline list, with the escalation steps -------------------------

-- Reassignment with a reason, and the history ------------------------------------

-- Its organisation's supervisors; its worker while it holds it (offered to
-- it or open with it). Oldest first; the cursor is the last row's id.
CREATE OR REPLACE FUNCTION api_assignment_history(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	a assignments;
	lim integer := api_limit(p_args);
	cur record := list_start(p_who, p_request_id, p_args, 'assignment.history',
	                         ARRAY['worker', 'supervisor'], true);
	page jsonb;
BEGIN
	IF cur.err IS NOT NULL THEN
		RETURN cur.err;
	END IF;
	SELECT * INTO a FROM assignments WHERE id = try_uuid(p_args->>'id');
	IF a.id IS NULL OR NOT assignment_in_scope(a, p_who)
	   OR (p_who->>'role' = 'worker' AND NOT assignment_is_open(a.status)) THEN
		RETURN api_not_found(p_who, p_request_id, 'assignment.history', 'assignment', p_args->>'id');
	END IF;
	SELECT jsonb_agg(jsonb_build_object('c', cursor_seq_encode(h.id), 'j', jsonb_build_object(
		'at', ts_us(h.at), 'from_status', h.from_status, 'to_status', h.to_status,
		'worker_id', h.worker_id,
		'actor_role', CASE WHEN h.actor_role LIKE 'db:%' THEN 'system' ELSE h.actor_role END,
		'reason', h.reason,
		'reason_sealed', sealed_ref('assignment_history', 'reason', a.referral_id, h.reason_sealed)))
		ORDER BY h.id) INTO page
	FROM (SELECT * FROM assignment_history
	      WHERE assignment_id = a.id AND id > coalesce(cur.seq, 0)
	      ORDER BY id LIMIT lim + 1) h;
	RETURN list_reply(p_who, p_request_id, 'assignment.history', 'assignment', a.id::text, page, lim);
END $$;

-- Metrics ---------------------------------------------------------------------------

-- One statement per scrape (the daemon caches the answer a few seconds),
-- each part through a partial index: pending and overdue deadlines by kind
-- (overdue: missed with its escalation still open), unassigned assignments
-- by region, open escalations by level.
CREATE OR REPLACE FUNCTION followup_gauges() RETURNS jsonb
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

