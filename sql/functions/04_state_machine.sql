-- 04_state_machine.sql - the assignment status machine: the triggers that
-- enforce it.
--
-- Owns: the trigger that refuses any status change assignment_transitions
-- (migration 0004) does not list, whoever makes it (api function or a direct
-- UPDATE); the writing of assignment_history; per-transition timestamps; workers.open_count, and the derived
-- referral status (closed when every assignment has ended).
-- Also the request context helpers every api_ function uses.
-- Must never: let a status change bypass the table, or record client data.

-- Request context -------------------------------------------------------------
-- app.role/app.subject/app.org/app.programme drive row-level security;
-- app.actor_role/app.actor_id/app.request_id name who acts in the history.
-- All are transaction-local (set_config(..., true)).

-- PL/pgSQL, not SQL: a SQL function that cannot be inlined (this one has
-- seven columns) is parsed and planned again at every call; PL/pgSQL keeps
-- its plan for the session (issue 12: every request calls this).
CREATE OR REPLACE FUNCTION ctx_set(p_who jsonb, p_request_id text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('app.role', coalesce(p_who->>'role', ''), true),
	        set_config('app.subject', coalesce(p_who->>'id', ''), true),
	        set_config('app.org', coalesce(p_who->>'org_id', ''), true),
	        set_config('app.programme', coalesce((p_who->>'programme')::boolean, false)::text, true),
	        set_config('app.actor_role', coalesce(p_who->>'role', 'system'), true),
	        set_config('app.actor_id', coalesce(p_who->>'id', ''), true),
	        set_config('app.request_id', coalesce(p_request_id, ''), true);
END $$;

-- Matching, duplicate detection and the sweeper must see rows outside the
-- caller's scope (another office's open referral for the same client, every
-- candidate's load). They run between ctx_system() and ctx_caller(); what
-- they return to the caller is then shaped under the caller's own scope.
-- (PL/pgSQL: a SQL function returning void is never inlined.)
CREATE OR REPLACE FUNCTION ctx_system() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('app.role', 'system', true);
END $$;

CREATE OR REPLACE FUNCTION ctx_caller() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('app.role', coalesce(nullif(current_setting('app.actor_role', true), ''), 'system'), true);
END $$;

CREATE OR REPLACE FUNCTION assignment_is_open(p_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
	SELECT p_status IN ('offered', 'accepted', 'in_progress', 'on_hold')
$$;

CREATE OR REPLACE FUNCTION assignment_is_ended(p_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
	SELECT p_status IN ('completed', 'failed', 'cancelled', 'reassigned')
$$;

-- BEFORE: refuse what the table does not allow; stamp the transition times.
-- A set-based statement that moves each row through a status and on in one
-- write (the sweeper's re-offer, deadline_reoffer_write in
-- 42_deadline_steps.sql: offered -> expired -> offered to the next worker)
-- names that status in app.status_via for that one statement: a row whose
-- status it leaves as it was then takes both steps here, each checked
-- against the table and the last one stamped, as two updates would.
CREATE OR REPLACE FUNCTION assignment_guard_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	via text;
BEGIN
	IF TG_OP = 'INSERT' THEN
		-- Unassigned, or offered to a worker at once (a submission's
		-- set-based match, 07_referrals.sql): the history then records
		-- both steps, as if it had been inserted unassigned and offered.
		IF NEW.status = 'offered' AND NEW.worker_id IS NOT NULL THEN
			PERFORM 1 FROM assignment_transitions
				WHERE from_status = 'unassigned' AND to_status = 'offered';
			IF FOUND THEN
				NEW.offered_at := now();
				RETURN NEW;
			END IF;
		END IF;
		IF NEW.status <> 'unassigned' THEN
			RAISE EXCEPTION 'an assignment starts unassigned'
				USING ERRCODE = 'RF409';
		END IF;
		RETURN NEW;
	END IF;
	IF NEW.status IS DISTINCT FROM OLD.status THEN
		PERFORM 1 FROM assignment_transitions
			WHERE from_status = OLD.status AND to_status = NEW.status;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'invalid transition % -> %', OLD.status, NEW.status
				USING ERRCODE = 'RF409';
		END IF;
	ELSE
		via := nullif(current_setting('app.status_via', true), '');
		IF via IS NOT NULL THEN
			PERFORM 1 FROM assignment_transitions
				WHERE from_status = OLD.status AND to_status = via;
			IF NOT FOUND THEN
				RAISE EXCEPTION 'invalid transition % -> %', OLD.status, via
					USING ERRCODE = 'RF409';
			END IF;
			PERFORM 1 FROM assignment_transitions
				WHERE from_status = via AND to_status = NEW.status;
			IF NOT FOUND THEN
				RAISE EXCEPTION 'invalid transition % -> %', via, NEW.status
					USING ERRCODE = 'RF409';
			END IF;
		END IF;
	END IF;
	IF NEW.status IS DISTINCT FROM OLD.status OR via IS NOT NULL THEN
		CASE NEW.status
		WHEN 'offered' THEN NEW.offered_at := now();
		WHEN 'accepted' THEN NEW.accepted_at := now();
		WHEN 'on_hold' THEN NEW.on_hold_at := now();
		WHEN 'completed', 'failed', 'cancelled', 'reassigned' THEN NEW.ended_at := now();
		ELSE NULL;
		END CASE;
	END IF;
	NEW.updated_at := now();
	RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER assignment_guard BEFORE INSERT OR UPDATE ON assignments
	FOR EACH ROW EXECUTE FUNCTION assignment_guard_trg();

-- AFTER: history, the workers' open counts, the referral's derived status.
CREATE OR REPLACE FUNCTION assignment_after_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	was_open boolean := TG_OP = 'UPDATE' AND assignment_is_open(OLD.status) AND OLD.worker_id IS NOT NULL;
	is_open boolean := assignment_is_open(NEW.status) AND NEW.worker_id IS NOT NULL;
	deferred text := coalesce(current_setting('app.loads_deferred', true), '');
BEGIN
	IF deferred = 'rows' THEN
		-- The statement writes this row's history itself (app.loads_deferred
		-- 'rows', with the loads below).
		NULL;
	ELSIF TG_OP = 'INSERT' AND NEW.status <> 'unassigned' THEN
		-- Born offered (assignment_guard_trg): both steps, one statement.
		INSERT INTO assignment_history (assignment_id, from_status, to_status, worker_id,
		                                actor_role, actor_id, request_id, reason, reason_sealed)
		SELECT NEW.id, s.from_status, s.to_status, s.worker_id,
		       coalesce(nullif(current_setting('app.actor_role', true), ''), 'db:' || current_user),
		       nullif(current_setting('app.actor_id', true), ''),
		       nullif(current_setting('app.request_id', true), ''),
		       nullif(current_setting('app.reason', true), ''),
		       nullif(current_setting('app.reason_sealed', true), '')
		FROM (VALUES (1, NULL, 'unassigned', NULL::uuid),
		             (2, 'unassigned', NEW.status, NEW.worker_id)) s(n, from_status, to_status, worker_id)
		ORDER BY s.n;
	ELSIF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status
	   OR NEW.worker_id IS DISTINCT FROM OLD.worker_id THEN
		INSERT INTO assignment_history (assignment_id, from_status, to_status, worker_id,
		                                actor_role, actor_id, request_id, reason, reason_sealed)
		VALUES (NEW.id, CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END, NEW.status,
		        NEW.worker_id,
		        coalesce(nullif(current_setting('app.actor_role', true), ''), 'db:' || current_user),
		        nullif(current_setting('app.actor_id', true), ''),
		        nullif(current_setting('app.request_id', true), ''),
		        coalesce(nullif(current_setting('app.reason', true), ''),
		                 CASE WHEN TG_OP = 'UPDATE' AND NEW.reason IS DISTINCT FROM OLD.reason
		                      THEN NEW.reason END),
		        nullif(current_setting('app.reason_sealed', true), ''));
	END IF;

	-- The workers' loads. A set-based statement that changes many
	-- assignments at once (the sweeper's batch re-offer,
	-- deadline_reoffer_batch in 42_deadline_steps.sql) sets app.loads_deferred
	-- for that one statement and applies each worker's net change itself in
	-- one UPDATE: one new version of a worker row per batch, not one per
	-- assignment (each of which also re-checks the row's foreign keys and
	-- rewrites its match slots). 'rows': the history rows too, which that
	-- statement then inserts in one INSERT, each with what this trigger
	-- would have written.
	IF deferred NOT IN ('on', 'rows') THEN
		IF was_open AND (NOT is_open OR NEW.worker_id IS DISTINCT FROM OLD.worker_id) THEN
			UPDATE workers SET open_count = open_count - 1 WHERE id = OLD.worker_id;
		END IF;
		-- A new offer also stamps the worker's idle-since (the matcher's
		-- tie-break), in the same write as its load: one update of the worker
		-- (and of its match slots) per offer, not two.
		IF is_open AND (NOT was_open OR NEW.worker_id IS DISTINCT FROM OLD.worker_id) THEN
			IF NEW.status = 'offered' THEN
				UPDATE workers SET open_count = open_count + 1, last_assigned_at = now()
				WHERE id = NEW.worker_id;
			ELSE
				UPDATE workers SET open_count = open_count + 1 WHERE id = NEW.worker_id;
			END IF;
		END IF;
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

CREATE OR REPLACE TRIGGER assignment_after AFTER INSERT OR UPDATE ON assignments
	FOR EACH ROW EXECUTE FUNCTION assignment_after_trg();
