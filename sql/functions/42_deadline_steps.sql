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

-- Called only when one of its two cases can apply: a deadline marked missed
-- or voided (not on hold), a reminder stamped or a due time moved is not a
-- PL/pgSQL call per row (the sweeper marks a batch at a time).
CREATE OR REPLACE TRIGGER deadline_met BEFORE UPDATE ON deadlines
	FOR EACH ROW
	WHEN ((NEW.met_at IS NOT NULL AND OLD.met_at IS NULL)
	      OR (NEW.state <> 'pending' AND NEW.paused_at IS NOT NULL))
	EXECUTE FUNCTION deadline_met_trg();

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

-- The sweeper's re-offers, a batch at a time (issue 12) --------------------------
--
-- A claimed batch of due accept deadlines of live offers (deadline and
-- assignment rows locked by deadline_sweep, 10_deadlines_outbox.sql) is
-- expired and offered to the next workers in a fixed number of statements,
-- not in one match_assignment + offer_make round per deadline (about 1 ms
-- each). The choice is the one match_assignment (05_matching.sql) makes,
-- taken one assignment after the other in the batch's order (due time, id):
-- the least loaded worker first (open_count / capacity), then idle longest
-- (last_assigned_at, never offered first), then id; of the need's kind,
-- serving the region, sharing a language, below capacity, and not one who
-- declined this assignment or let it expire (the offer expired here
-- included); a worker another transaction holds is skipped, as the matcher's
-- first attempt (SKIP LOCKED) skips it. Every offer of the batch raises the
-- chosen worker's load by 1 / capacity and its idle-since to now() before
-- the next assignment chooses, as one offer after the other would. All the
-- batch's offers expire first, so all their slots are free for the choice
-- (they all fell due).
--
-- How one statement can choose for a whole batch: a worker's successive
-- offers have rising keys (load (open + j) / capacity, then idle-since),
-- so the choice is a merge of "slot events", one per worker and slot it
-- could still fill, sorted by key: each assignment takes the first event
-- not yet taken whose worker may take it (that event is always that
-- worker's next slot: its earlier ones sort before it and were taken, or
-- the worker was refused, and is refused for this assignment too). The
-- events come from the first 2k+16 slot rows (worker_match_slots_order) of
-- each (region, kind) with k assignments in the batch; when the pair has
-- more, an event sorting after the first row not read cannot be trusted to
-- be the least loaded, and that assignment, like one with nobody free, a
-- candidate busy elsewhere or a long search, goes the ordinary way after
-- the batch: match_assignment (waiting for a busy worker; unassigned with
-- its escalation and assignment.unassigned when nobody can take it; the
-- re-matching job from there).
-- Must never: offer a worker above capacity (every candidate is locked and
-- re-read before its events are made), make two live offers for one
-- assignment (offers_one_pending), or re-offer to a worker who declined or
-- let it expire.

-- The choice for the batch's assignments of one kind (p_aids: the whole
-- batch in order, its rows locked, their offers expired and their old
-- workers' loads lowered). One row per assignment of that kind, in order:
-- the worker (NULL: decide the ordinary way), its open count before this
-- offer and its idle-since at the time.
CREATE OR REPLACE FUNCTION deadline_reoffer_pick(p_aids uuid[], p_kind text,
	OUT n bigint, OUT assignment_id uuid, OUT worker_id uuid, OUT open_before integer,
	OUT idle_since timestamptz)
RETURNS SETOF record LANGUAGE plpgsql AS $$
DECLARE
	c_id uuid[];
	c_reg jsonb;
	c_lang jsonb;
	ev_c integer[];
	ev_open integer[];
	ev_idle timestamptz[];
	bounds jsonb;
	excl jsonb;
	used boolean[];
	nev integer;
	ptr integer := 1;
	e integer;
	got integer;
	cw integer;
	lim integer;
	truncated boolean;
	skipped boolean;
	stop boolean := false;
	r record;
BEGIN
	-- One statement: the first 2k+16 slot rows of each pair and the row
	-- after them (where what was read ends); those workers locked (the ones
	-- others hold are skipped) and re-read, so the events come from their
	-- latest versions; the events sorted, at most 3k+32; per region how many
	-- of them sort before its first row not read; and who may not take which
	-- assignment again.
	WITH b AS (
		SELECT x.n, x.id, a.region FROM unnest(p_aids) WITH ORDINALITY x(id, n)
		JOIN assignments a ON a.id = x.id WHERE a.need = p_kind
	), pr AS (
		SELECT b.region, count(*)::integer AS k FROM b GROUP BY b.region
	), sl AS (
		SELECT pr.region, pr.k, s.worker_id, s.rn, s.load, s.last_assigned_at
		FROM pr CROSS JOIN LATERAL (
			SELECT s.worker_id, s.load, s.last_assigned_at,
			       row_number() OVER (ORDER BY s.load, s.last_assigned_at NULLS FIRST, s.worker_id) AS rn
			FROM worker_match_slots s WHERE s.region = pr.region AND s.kind = p_kind
			ORDER BY s.load, s.last_assigned_at NULLS FIRST, s.worker_id
			LIMIT 2 * pr.k + 17) s
	), c AS (
		SELECT w.id, w.open_count, w.capacity, w.last_assigned_at, w.regions, w.languages
		FROM workers w
		WHERE w.id IN (SELECT sl.worker_id FROM sl WHERE sl.rn <= 2 * sl.k + 16)
		  AND w.active AND NOT w.on_leave AND w.kind = p_kind AND w.open_count < w.capacity
		ORDER BY w.id
		FOR UPDATE SKIP LOCKED
	), ci AS (
		SELECT c.*, row_number() OVER (ORDER BY c.id)::integer AS idx FROM c
	), ev AS (
		SELECT ci.idx, ci.id, ci.open_count + j AS open_before,
		       CASE WHEN j = 0 THEN ci.last_assigned_at ELSE now() END AS idle,
		       (ci.open_count + j)::numeric / ci.capacity AS load
		FROM ci CROSS JOIN LATERAL generate_series(0,
			least(ci.capacity - ci.open_count, (SELECT count(*) FROM b)::integer) - 1) j
	), evn AS (
		SELECT ev.*, row_number() OVER (ORDER BY ev.load, coalesce(ev.idle, '-infinity'), ev.id)::integer AS e
		FROM ev
		ORDER BY ev.load, coalesce(ev.idle, '-infinity'), ev.id
		LIMIT 3 * (SELECT count(*) FROM b) + 32
	)
	SELECT (SELECT array_agg(ci.id ORDER BY ci.idx) FROM ci),
	       (SELECT jsonb_agg(to_jsonb(ci.regions) ORDER BY ci.idx) FROM ci),
	       (SELECT jsonb_agg(to_jsonb(ci.languages) ORDER BY ci.idx) FROM ci),
	       (SELECT array_agg(evn.idx ORDER BY evn.e) FROM evn),
	       (SELECT array_agg(evn.open_before ORDER BY evn.e) FROM evn),
	       (SELECT array_agg(evn.idle ORDER BY evn.e) FROM evn),
	       (SELECT jsonb_object_agg(x.region, (SELECT count(*) FROM evn
	                WHERE (evn.load, coalesce(evn.idle, '-infinity'), evn.id)
	                      < (x.load, coalesce(x.last_assigned_at, '-infinity'), x.worker_id)))
	        FROM sl x WHERE x.rn = 2 * x.k + 17),
	       (SELECT jsonb_object_agg(b.n || ':' || ci.idx, true)
	        FROM b JOIN offers o ON o.assignment_id = b.id AND o.outcome IN ('declined', 'expired')
	        JOIN ci ON ci.id = o.worker_id),
	       (SELECT count(*) FROM ev) > 3 * (SELECT count(*) FROM b) + 32,
	       (SELECT count(DISTINCT sl.worker_id) FROM sl WHERE sl.rn <= 2 * sl.k + 16)
	       <> (SELECT count(*) FROM c)
	INTO c_id, c_reg, c_lang, ev_c, ev_open, ev_idle, bounds, excl, truncated, skipped;
	nev := coalesce(cardinality(ev_c), 0);
	used := array_fill(false, ARRAY[greatest(nev, 1)]);
	excl := coalesce(excl, '{}');
	bounds := coalesce(bounds, '{}');
	-- In order. Once one cannot be decided here, it and every later one go
	-- the ordinary way, in order (what they choose depends on its choice);
	-- one nobody can take (every worker that could was read, none refused
	-- nor busy elsewhere) takes nothing, and goes the ordinary way too.
	FOR r IN SELECT x.n, x.id, a.region, a.languages FROM unnest(p_aids) WITH ORDINALITY x(id, n)
	         JOIN assignments a ON a.id = x.id WHERE a.need = p_kind ORDER BY x.n LOOP
		n := r.n;
		assignment_id := r.id;
		worker_id := NULL;
		open_before := NULL;
		idle_since := NULL;
		IF NOT stop THEN
			WHILE ptr <= nev AND used[ptr] LOOP
				ptr := ptr + 1;
			END LOOP;
			-- events beyond the region's first unread slot row, or far
			-- down the list, are not decided here
			lim := least(nev, coalesce((bounds->>r.region)::integer, nev), ptr + 255);
			got := 0;
			e := ptr;
			WHILE e <= lim LOOP
				IF NOT used[e] THEN
					cw := ev_c[e];
					IF (c_reg->(cw - 1)) ? r.region AND (c_lang->(cw - 1)) ?| r.languages
					   AND NOT excl ? (r.n || ':' || cw) THEN
						got := e;
						EXIT;
					END IF;
				END IF;
				e := e + 1;
			END LOOP;
			IF got > 0 THEN
				used[got] := true;
				worker_id := c_id[ev_c[got]];
				open_before := ev_open[got];
				idle_since := ev_idle[got];
			ELSIF e <= nev OR bounds ? r.region OR truncated OR skipped THEN
				stop := true;
			END IF;
		END IF;
		RETURN NEXT;
	END LOOP;
END $$;

-- The batch's offers, written set-based: what offer_make does for one
-- (05_matching.sql), for all. p_aids: the whole batch in order (rows locked,
-- still offered, their offers expired and their old workers' loads already
-- lowered); p_wids, p_open, p_idle: each one's pick (a NULL worker: the
-- ordinary way, next). Each assignment row is written once: a picked one
-- from offered straight to offered to its next worker (app.status_via: the
-- guard checks and stamps offered -> expired -> offered), the others to
-- expired. Their history rows, the ones the assignments trigger would have
-- written for an expiry and then an offer (app.loads_deferred 'rows': it
-- leaves them and the loads to us), in one INSERT: every expiry, then every
-- new offer, each in the batch's order. One update per row: a second one in
-- the same transaction writes a second version and re-checks all four of
-- the row's foreign keys.
CREATE OR REPLACE FUNCTION deadline_reoffer_write(p_aids uuid[], p_wids uuid[], p_open integer[],
                                                  p_idle timestamptz[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('app.loads_deferred', 'rows', true);
	INSERT INTO assignment_history (assignment_id, from_status, to_status, worker_id,
	                                actor_role, actor_id, request_id, reason, reason_sealed)
	SELECT s.aid, s.from_status, s.to_status, s.worker_id,
	       coalesce(nullif(current_setting('app.actor_role', true), ''), 'db:' || current_user),
	       nullif(current_setting('app.actor_id', true), ''),
	       nullif(current_setting('app.request_id', true), ''),
	       nullif(current_setting('app.reason', true), ''),
	       nullif(current_setting('app.reason_sealed', true), '')
	FROM (SELECT 1 AS step, x.n, x.aid, a.status::text AS from_status, 'expired' AS to_status,
	             a.worker_id
	      FROM unnest(p_aids) WITH ORDINALITY x(aid, n) JOIN assignments a ON a.id = x.aid
	      UNION ALL
	      SELECT 2, x.n, x.aid, 'expired', 'offered', x.wid
	      FROM unnest(p_aids, p_wids) WITH ORDINALITY x(aid, wid, n) WHERE x.wid IS NOT NULL) s
	ORDER BY s.step, s.n;
	UPDATE assignments a SET status = 'expired'
	FROM unnest(p_aids, p_wids) AS x(aid, wid)
	WHERE a.id = x.aid AND x.wid IS NULL;
	PERFORM set_config('app.status_via', 'expired', true);
	-- Everything of each offer in one row (pp), its id made here, so that
	-- no statement below joins two of these sets (a nested loop over both,
	-- 100 x 100 rows, that the planner expects to be one row each).
	WITH p AS (
		SELECT x.n, x.aid, x.wid, x.open_before, x.idle, a.need, a.urgency, a.region,
		       a.languages AS alang, w.organisation_id AS org, w.capacity, w.languages AS wlang
		FROM unnest(p_aids, p_wids, p_open, p_idle) WITH ORDINALITY x(aid, wid, open_before, idle, n)
		JOIN assignments a ON a.id = x.aid JOIN workers w ON w.id = x.wid
	), pol AS (
		SELECT g.need, g.urgency, g.org, dd.due_at, dd.clock, dd.remind_at
		FROM (SELECT DISTINCT p.need, p.urgency, p.org FROM p) g
		CROSS JOIN LATERAL deadline_due('accept', g.need, g.urgency, g.org, now()) dd
	), pp AS (
		SELECT p.n, p.aid, p.wid, p.org, gen_random_uuid() AS offer_id, pol.due_at, pol.clock,
		       pol.remind_at, jsonb_build_object(
			'rule', 'least_loaded', 'open_before', p.open_before, 'capacity', p.capacity,
			'idle_since', p.idle, 'region', p.region,
			'shared_languages', (SELECT to_jsonb(array_agg(l ORDER BY l))
			                     FROM unnest(p.wlang) l WHERE l = ANY (p.alang))) AS match_reason
		FROM p JOIN pol ON pol.need = p.need AND pol.urgency = p.urgency AND pol.org = p.org
	), o AS (
		INSERT INTO offers (id, assignment_id, worker_id, expires_at, match_reason)
		SELECT pp.offer_id, pp.aid, pp.wid, pp.due_at, pp.match_reason FROM pp ORDER BY pp.n
	), dl AS (
		INSERT INTO deadlines (kind, assignment_id, offer_id, worker_id, organisation_id, due_at,
		                       clock, remind_at)
		SELECT 'accept', pp.aid, pp.offer_id, pp.wid, pp.org, pp.due_at, pp.clock, pp.remind_at
		FROM pp ORDER BY pp.n
	), esc AS (
		UPDATE escalations e SET resolved_at = now()
		FROM pp WHERE e.assignment_id = pp.aid AND e.reason = 'unassigned' AND e.resolved_at IS NULL
	), ob AS (
		INSERT INTO outbox (type, payload, organisation_id)
		SELECT 'assignment.offered',
		       jsonb_build_object('assignment_id', pp.aid, 'worker_id', pp.wid,
		                          'detail_url', '/v1/assignments/' || pp.aid),
		       pp.org
		FROM pp ORDER BY pp.n
	)
	-- A new worker sees none of what the previous one wrote (offer_make).
	UPDATE assignments a SET status = 'offered', worker_id = pp.wid, reason = NULL,
	       reason_sealed = NULL, organisation_id = pp.org, offer_expires_at = pp.due_at,
	       match_reason = pp.match_reason
	FROM pp
	WHERE a.id = pp.aid;
	PERFORM set_config('app.status_via', '', true);
	PERFORM set_config('app.loads_deferred', '', true);
	-- What the trigger does per offer (open_count + 1, idle-since now()),
	-- as one update per worker; the rows are locked (deadline_reoffer_pick).
	UPDATE workers w SET open_count = w.open_count + g.n, last_assigned_at = now()
	FROM (SELECT i.wid, count(*)::integer AS n FROM unnest(p_wids) AS i(wid)
	      WHERE i.wid IS NOT NULL GROUP BY i.wid) g
	WHERE w.id = g.wid;
END $$;

-- Due accept deadlines of live offers (p_deadlines; rows and assignments
-- locked by the caller): mark them missed with their escalations (once:
-- deadline_mark_missed), expire the offers, offer the assignments to the
-- next workers, the rest the ordinary way. One transaction (the caller's
-- sub-transaction): a crash or an error leaves all of it undone and the
-- deadlines pending for the next pass.
CREATE OR REPLACE FUNCTION deadline_reoffer_batch(p_deadlines uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	aids uuid[];
	k text;
	pk_wid uuid[];
	pk_open integer[];
	pk_idle timestamptz[];
	x record;
	aid uuid;
BEGIN
	IF coalesce(cardinality(p_deadlines), 0) = 0 THEN
		RETURN;
	END IF;
	SELECT array_agg(d.assignment_id ORDER BY d.due_at, d.id) INTO aids
	FROM unnest(p_deadlines) AS i(id) JOIN deadlines d ON d.id = i.id;
	-- first missed: the new offers' accept deadlines must not meet them pending
	PERFORM deadline_mark_missed(p_deadlines);
	UPDATE offers o SET outcome = 'expired', ended_at = now(), reason = 'accept_deadline_missed'
	FROM unnest(aids) AS i(id)
	WHERE o.assignment_id = i.id AND o.outcome = 'pending';
	-- The old workers' loads go down (one update per worker): their rows
	-- locked first, in id order (two sweepers then queue, not deadlock).
	PERFORM 1 FROM workers w
	WHERE w.id IN (SELECT a.worker_id FROM unnest(aids) AS i(id) JOIN assignments a ON a.id = i.id)
	ORDER BY w.id FOR UPDATE;
	-- Every one of them is a live offer (deadline_sweep checked: offered,
	-- its offer pending), so each frees one slot of its worker, before the
	-- choice (the rows themselves are written once, by
	-- deadline_reoffer_write: the trigger leaves the loads to us).
	UPDATE workers w SET open_count = w.open_count - g.n
	FROM (SELECT a.worker_id, count(*)::integer AS n FROM unnest(aids) AS i(id)
	      JOIN assignments a ON a.id = i.id WHERE a.worker_id IS NOT NULL GROUP BY a.worker_id) g
	WHERE w.id = g.worker_id;
	pk_wid := array_fill(NULL::uuid, ARRAY[cardinality(aids)]);
	pk_open := array_fill(NULL::integer, ARRAY[cardinality(aids)]);
	pk_idle := array_fill(NULL::timestamptz, ARRAY[cardinality(aids)]);
	FOR k IN SELECT DISTINCT a.need FROM unnest(aids) AS i(id) JOIN assignments a ON a.id = i.id
	         ORDER BY 1 LOOP
		FOR x IN SELECT * FROM deadline_reoffer_pick(aids, k) LOOP
			pk_wid[x.n] := x.worker_id;
			pk_open[x.n] := x.open_before;
			pk_idle[x.n] := x.idle_since;
		END LOOP;
	END LOOP;
	PERFORM deadline_reoffer_write(aids, pk_wid, pk_open, pk_idle);
	-- The ordinary way, in the batch's order: waits for a busy candidate
	-- (bounded), or unassigned with its escalation.
	FOREACH aid IN ARRAY ARRAY(SELECT i.id FROM unnest(aids, pk_wid) WITH ORDINALITY AS i(id, wid, n)
	                           WHERE i.wid IS NULL ORDER BY i.n) LOOP
		PERFORM match_assignment(aid);
	END LOOP;
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

