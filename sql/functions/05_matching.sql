-- 05_matching.sql - choosing the worker for an assignment, and offers.
--
-- Owns: match_assignment() (used by submission, decline, expiry, leave,
-- reassignment and re-matching, 41_rematch.sql), offer_make() and
-- offer_end(), and the accept deadline each offer carries (due on its
-- policy's clock, deadline_due() of 40_calendars.sql).
-- Must never: offer a worker above capacity, make two live offers for one
-- assignment, re-offer an assignment to a worker who declined it or let it
-- expire, or run without the assignment row locked by the caller.
--
-- Concurrency, the argument: a worker's load is workers.open_count, changed
-- only by the assignments trigger inside the transaction that holds the
-- worker's row lock. The matcher takes that lock (FOR UPDATE) on the chosen
-- candidate before offering, and PostgreSQL re-checks the WHERE clause
-- (open_count < capacity) on the locked, latest row version, so two
-- transactions can never both fill a worker's last slot. SKIP LOCKED first, so
-- concurrent submissions spread over free candidates instead of queueing on the
-- least loaded one; only when every candidate is locked by someone else do we
-- wait (bounded by lock_timeout), and a wait that fails is an error the
-- caller retries, never "unassigned" (see match_candidate_waiting).
-- offers_one_pending (unique) makes a double offer impossible even if a caller
-- forgot to lock the assignment.

-- PL/pgSQL: called as a value, the SQL version was never inlined and was
-- planned again at every offer (issue 12).
CREATE OR REPLACE FUNCTION policy_for(p_need text, p_urgency text) RETURNS deadline_policies
LANGUAGE plpgsql STABLE AS $$
DECLARE
	p deadline_policies;
BEGIN
	SELECT * INTO p FROM deadline_policies WHERE need = p_need AND urgency = p_urgency;
	RETURN p;
END $$;

-- The candidate order is read from an index, not sorted: worker_match_slots
-- (migration 0080) holds one row per free worker (active, not on leave, below
-- capacity) and region it serves, with its load (open_count / capacity) and
-- idle-since, indexed by (region, kind, load, last_assigned_at NULLS FIRST,
-- worker_id). The trigger below rewrites a worker's rows in the transaction
-- that changes the worker, which holds the worker's row lock; so a slot row
-- is only ever written after its worker's lock (no lock-order cycle), and the
-- matcher, which locks the worker (FOR UPDATE OF c), re-checks every
-- condition on the worker's latest version: a stale slot row can only make it
-- look at a worker that is then skipped, never offer one over capacity.
--
-- Which updates matter is tested here, not in the trigger's WHEN: a WHEN
-- condition is rebuilt from its stored text and planned for every statement
-- that updates a worker, and every offer updates one (its load): about
-- 100,000 instructions per offer, a thirtieth of a submission (callgrind,
-- tests/bench/README); PL/pgSQL plans the test once per session.
CREATE OR REPLACE FUNCTION worker_match_slots_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	free boolean := NEW.active AND NOT NEW.on_leave AND NEW.open_count < NEW.capacity;
BEGIN
	IF TG_OP = 'UPDATE' THEN
		IF (OLD.open_count, OLD.capacity, OLD.last_assigned_at, OLD.active, OLD.on_leave, OLD.kind,
		    OLD.regions)
		   IS NOT DISTINCT FROM
		   (NEW.open_count, NEW.capacity, NEW.last_assigned_at, NEW.active, NEW.on_leave, NEW.kind,
		    NEW.regions) THEN
			RETURN NULL;
		END IF;
		IF free AND OLD.active AND NOT OLD.on_leave AND OLD.open_count < OLD.capacity
		   AND NEW.kind = OLD.kind AND NEW.regions = OLD.regions THEN
			-- The common case (an offer, a slot freed): new order columns only.
			UPDATE worker_match_slots
			SET load = NEW.open_count::numeric / NEW.capacity, last_assigned_at = NEW.last_assigned_at
			WHERE worker_id = NEW.id;
			RETURN NULL;
		END IF;
		DELETE FROM worker_match_slots WHERE worker_id = NEW.id;
	END IF;
	IF free THEN
		INSERT INTO worker_match_slots (worker_id, region, kind, load, last_assigned_at)
		SELECT DISTINCT NEW.id, r, NEW.kind, NEW.open_count::numeric / NEW.capacity, NEW.last_assigned_at
		FROM unnest(NEW.regions) r;
	END IF;
	RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER worker_match_slots_ins AFTER INSERT ON workers
	FOR EACH ROW EXECUTE FUNCTION worker_match_slots_trg();
CREATE OR REPLACE TRIGGER worker_match_slots_upd
	AFTER UPDATE OF open_count, capacity, last_assigned_at, active, on_leave, kind, regions ON workers
	FOR EACH ROW EXECUTE FUNCTION worker_match_slots_trg();

-- The slots of one (region, kind) made equal to what workers say, for the
-- changes no trigger saw (session_replication_role = replica: a restore, a
-- manual repair). Called by the periodic re-matching pass for each pair it
-- looks at (41_rematch.sql), so such a worker is found within one
-- rematch_interval. Writes only rows that differ: nothing when in step.
-- Costs one pass over the pair's workers (GIN on regions); it never runs in
-- a request.
CREATE OR REPLACE FUNCTION worker_match_slots_repair(p_region text, p_kind text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	-- It writes slot rows without their workers' locks: a wait on a request
	-- that holds one gives way (the next pass repairs).
	BEGIN
	WITH want AS (
		SELECT w.id, w.kind, w.open_count::numeric / w.capacity AS load, w.last_assigned_at
		FROM workers w
		WHERE w.regions @> ARRAY[p_region] AND w.kind = p_kind
		  AND w.active AND NOT w.on_leave AND w.open_count < w.capacity),
	gone AS (
		DELETE FROM worker_match_slots s
		WHERE s.region = p_region AND s.kind = p_kind
		  AND NOT EXISTS (SELECT 1 FROM want WHERE want.id = s.worker_id))
	INSERT INTO worker_match_slots (worker_id, region, kind, load, last_assigned_at)
	SELECT want.id, p_region, want.kind, want.load, want.last_assigned_at FROM want
	WHERE NOT EXISTS (SELECT 1 FROM worker_match_slots s
	                  WHERE s.worker_id = want.id AND s.region = p_region AND s.kind = want.kind
	                    AND s.load = want.load
	                    AND s.last_assigned_at IS NOT DISTINCT FROM want.last_assigned_at)
	ON CONFLICT (worker_id, region) DO UPDATE
	SET kind = EXCLUDED.kind, load = EXCLUDED.load, last_assigned_at = EXCLUDED.last_assigned_at;
	EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
		NULL;
	END;
END $$;

-- The candidate query, shared by both attempts. p_skip_locked chooses the
-- locking mode. Returns the locked worker row or NULL. The least loaded
-- first, then idle longest, then id: the first rows of worker_match_slots_order
-- for (region, kind) that pass the worker's own conditions (a shared
-- language, not declined or let expire by that worker), so the cost is the
-- rows read until one passes, not the number of candidates (the plan is in
-- the output of tests/bench/matching.sh). One named worker (p_only,
-- continuity of care) is looked up by id.
--
-- The shape is the plan: the slot rows in index order drive a nested loop,
-- and each candidate worker is locked in a sub-select of its own (a lock
-- inside a sub-select keeps the planner from flattening it), read by its
-- primary key. As a flat join, the plan PL/pgSQL caches for the session
-- (generic: region and kind unknown) started from the workers' GIN indexes
-- and sorted every candidate of the region: 0.2 ms for the first submission
-- of a connection, 130 ms from the sixth on at 100,000 workers.
CREATE OR REPLACE FUNCTION match_candidate(a assignments, p_only uuid, p_skip_locked boolean)
RETURNS workers LANGUAGE plpgsql AS $$
DECLARE
	w workers;
BEGIN
	IF p_only IS NOT NULL THEN
		IF p_skip_locked THEN
			SELECT c.* INTO w FROM workers c
			WHERE c.id = p_only AND c.active AND NOT c.on_leave AND c.kind = a.need
			  AND c.regions @> ARRAY[a.region] AND c.languages && a.languages
			  AND c.open_count < c.capacity
			  AND NOT EXISTS (SELECT 1 FROM offers o
			                  WHERE o.assignment_id = a.id AND o.worker_id = c.id
			                    AND o.outcome IN ('declined', 'expired'))
			FOR UPDATE SKIP LOCKED;
		ELSE
			SELECT c.* INTO w FROM workers c
			WHERE c.id = p_only AND c.active AND NOT c.on_leave AND c.kind = a.need
			  AND c.regions @> ARRAY[a.region] AND c.languages && a.languages
			  AND c.open_count < c.capacity
			  AND NOT EXISTS (SELECT 1 FROM offers o
			                  WHERE o.assignment_id = a.id AND o.worker_id = c.id
			                    AND o.outcome IN ('declined', 'expired'))
			FOR UPDATE;
		END IF;
	ELSIF p_skip_locked THEN
		SELECT (x.c).* INTO w
		FROM (SELECT s.worker_id, s.load, s.last_assigned_at FROM worker_match_slots s
		      WHERE s.region = a.region AND s.kind = a.need) s
		CROSS JOIN LATERAL (
			SELECT c FROM workers c
			WHERE c.id = s.worker_id AND c.active AND NOT c.on_leave AND c.kind = a.need
			  AND c.regions @> ARRAY[a.region] AND c.languages && a.languages
			  AND c.open_count < c.capacity
			  AND NOT EXISTS (SELECT 1 FROM offers o
			                  WHERE o.assignment_id = a.id AND o.worker_id = c.id
			                    AND o.outcome IN ('declined', 'expired'))
			FOR UPDATE OF c SKIP LOCKED) x
		ORDER BY s.load, s.last_assigned_at NULLS FIRST, s.worker_id
		LIMIT 1;
	ELSE
		SELECT (x.c).* INTO w
		FROM (SELECT s.worker_id, s.load, s.last_assigned_at FROM worker_match_slots s
		      WHERE s.region = a.region AND s.kind = a.need) s
		CROSS JOIN LATERAL (
			SELECT c FROM workers c
			WHERE c.id = s.worker_id AND c.active AND NOT c.on_leave AND c.kind = a.need
			  AND c.regions @> ARRAY[a.region] AND c.languages && a.languages
			  AND c.open_count < c.capacity
			  AND NOT EXISTS (SELECT 1 FROM offers o
			                  WHERE o.assignment_id = a.id AND o.worker_id = c.id
			                    AND o.outcome IN ('declined', 'expired'))
			FOR UPDATE OF c) x
		ORDER BY s.load, s.last_assigned_at NULLS FIRST, s.worker_id
		LIMIT 1;
	END IF;
	IF w.id IS NULL THEN
		RETURN NULL;
	END IF;
	RETURN w;
END $$;

-- Wait (bounded) for a candidate someone else has locked. When the wait
-- fails (lock timeout, deadlock), p_busy_is_error says what that means:
-- for the preferred worker of continuity of care, only "not this one"
-- (NULL, ordinary matching follows); for the last attempt, "busy", never
-- "nobody can take it". Taking busy for none would leave an assignment
-- unassigned, and escalated, while a free worker exists (two sweepers
-- re-offering at once each hold workers' rows for their batch). The busy
-- error is lock_not_available: the sweeper's per-deadline sub-transaction
-- absorbs it and retries the deadline on its next pass; a request
-- (submission, decline, leave) answers 503 with Retry-After and changes
-- nothing, and the client retries (submissions idempotently).
CREATE OR REPLACE FUNCTION match_candidate_waiting(a assignments, p_only uuid, p_busy_is_error boolean)
RETURNS workers LANGUAGE plpgsql AS $$
DECLARE
	w workers;
	old_timeout text := current_setting('lock_timeout');
BEGIN
	PERFORM set_config('lock_timeout', '2s', true);
	BEGIN
		w := match_candidate(a, p_only, false);
	EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
		IF p_busy_is_error THEN
			RAISE EXCEPTION 'every candidate worker is busy' USING ERRCODE = 'lock_not_available';
		END IF;
		w := NULL;
	END;
	PERFORM set_config('lock_timeout', old_timeout, true);
	RETURN w;
END $$;

-- Offer assignment a (locked by the caller) to worker w (locked too).
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

	-- A new worker sees none of what the previous one wrote (its decline
	-- reason): cleared with the offer.
	UPDATE assignments SET status = 'offered', worker_id = w.id, reason = NULL, reason_sealed = NULL,
	       organisation_id = w.organisation_id, offer_expires_at = o.expires_at,
	       match_reason = p_reason
	WHERE id = a.id RETURNING * INTO r;

	-- The worker's load and idle-since follow in the assignments trigger
	-- (04_state_machine.sql), in one update.

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

-- Close the live offer of an assignment (accepted, declined, expired,
-- withdrawn, cancelled, reassigned) and settle its accept deadline.
CREATE OR REPLACE FUNCTION offer_end(p_assignment uuid, p_outcome text, p_reason text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	o offers;
BEGIN
	UPDATE offers SET outcome = p_outcome, ended_at = now(), reason = p_reason
	WHERE assignment_id = p_assignment AND outcome = 'pending'
	RETURNING * INTO o;
	IF o.id IS NULL THEN
		RETURN;
	END IF;
	IF p_outcome = 'accepted' THEN
		UPDATE deadlines SET state = 'met', met_at = now(), elapsed = now() - starts_at
		WHERE offer_id = o.id AND state = 'pending';
	ELSIF p_outcome <> 'expired' THEN
		-- Nothing can meet it any more; the sweeper marks expiries itself.
		UPDATE deadlines SET state = 'void'
		WHERE offer_id = o.id AND state = 'pending';
	END IF;
END $$;

-- Find and make the next offer for assignment p_id, whose row the caller has
-- locked and whose status is unassigned, declined or expired. p_prefer is a
-- worker to try first (continuity of care). Returns the updated row: offered,
-- or unassigned with an escalation when nobody can take it.
CREATE OR REPLACE FUNCTION match_assignment(p_id uuid, p_prefer uuid DEFAULT NULL) RETURNS assignments
LANGUAGE plpgsql AS $$
DECLARE
	a assignments;
	w workers;
	rule text := 'least_loaded';
	prev_org uuid;
	esc uuid;
BEGIN
	SELECT * INTO STRICT a FROM assignments WHERE id = p_id;
	IF a.status NOT IN ('unassigned', 'declined', 'expired') THEN
		RAISE EXCEPTION 'match_assignment on % assignment', a.status USING ERRCODE = 'RF409';
	END IF;

	-- Continuity of care is a preference: if that worker is busy for long,
	-- fall back to ordinary matching rather than fail.
	IF p_prefer IS NOT NULL THEN
		w := match_candidate_waiting(a, p_prefer, false);
		IF w.id IS NOT NULL THEN
			rule := 'continuity_of_care';
		END IF;
	END IF;
	IF w.id IS NULL THEN
		w := match_candidate(a, NULL, true);
	END IF;
	IF w.id IS NULL THEN
		w := match_candidate_waiting(a, NULL, true);
	END IF;

	IF w.id IS NOT NULL THEN
		RETURN offer_make(a, w, jsonb_build_object(
			'rule', CASE WHEN a.status = 'unassigned' AND rule = 'least_loaded'
			             AND current_setting('app.request_id', true) = 'rematch'
			             THEN 'rematch' ELSE rule END,
			'open_before', w.open_count,
			'capacity', w.capacity,
			'idle_since', w.last_assigned_at,
			'region', a.region,
			'shared_languages', (SELECT to_jsonb(array_agg(l ORDER BY l))
			                     FROM unnest(w.languages) l WHERE l = ANY (a.languages))));
	END IF;

	IF a.status <> 'unassigned' THEN
		prev_org := a.organisation_id;
		UPDATE assignments SET status = 'unassigned', worker_id = NULL,
		       organisation_id = NULL, offer_expires_at = NULL, match_reason = NULL
		WHERE id = a.id RETURNING * INTO a;
	END IF;
	INSERT INTO escalations (reason, assignment_id, organisation_id)
	VALUES ('unassigned', a.id, NULL)
	ON CONFLICT (assignment_id) WHERE reason = 'unassigned' AND resolved_at IS NULL DO NOTHING
	RETURNING id INTO esc;
	IF esc IS NOT NULL THEN
		INSERT INTO outbox (type, payload, organisation_id)
		VALUES ('assignment.unassigned',
		        jsonb_strip_nulls(jsonb_build_object('assignment_id', a.id,
		                                             'organisation_id', prev_org,
		                                             'detail_url', '/v1/assignments/' || a.id)),
		        prev_org);
	END IF;
	RETURN a;
END $$;

-- A worker goes on leave or is deactivated: each offer it holds ends
-- ('withdrawn', the assignment passes through 'expired') and goes to the next
-- candidate. Accepted work stays with the worker: a supervisor reassigns it.
CREATE OR REPLACE FUNCTION worker_release_offers(p_worker uuid) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	aid uuid;
	n integer := 0;
BEGIN
	FOR aid IN SELECT id FROM assignments
	           WHERE worker_id = p_worker AND status = 'offered'
	           ORDER BY id FOR UPDATE LOOP
		PERFORM offer_end(aid, 'withdrawn', 'worker_unavailable');
		UPDATE assignments SET status = 'expired' WHERE id = aid;
		PERFORM match_assignment(aid);
		n := n + 1;
	END LOOP;
	RETURN n;
END $$;
