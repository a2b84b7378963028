-- 0022_match_busy.sql - "every candidate is busy" is not "no candidate".
--
-- Owns: match_candidate_or_busy() and the match_assignment() that uses it.
-- Must never: leave an assignment unassigned (and escalate it) because the
-- candidates' rows were locked by other transactions for a moment.
--
-- Before this, a lock timeout or deadlock while waiting for the last
-- candidate was taken as "nobody can take it": with two sweepers re-offering
-- at once (each holding workers' rows for its batch), an assignment could end
-- unassigned although a free worker existed. Now the wait's failure is raised
-- as lock_not_available: the sweeper's per-deadline sub-transaction absorbs it
-- and retries the deadline on its next pass; a request (submission, decline,
-- leave) answers 503 with Retry-After and changes nothing, and the client
-- retries (submissions idempotently).

CREATE FUNCTION match_candidate_or_busy(a assignments, p_only uuid) RETURNS workers
LANGUAGE plpgsql AS $$
DECLARE
	w workers;
	old_timeout text := current_setting('lock_timeout');
BEGIN
	PERFORM set_config('lock_timeout', '2s', true);
	BEGIN
		w := match_candidate(a, p_only, false);
	EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
		RAISE EXCEPTION 'every candidate worker is busy' USING ERRCODE = 'lock_not_available';
	END;
	PERFORM set_config('lock_timeout', old_timeout, true);
	RETURN w;
END $$;

CREATE OR REPLACE FUNCTION match_assignment(p_id uuid, p_prefer uuid DEFAULT NULL) RETURNS assignments
LANGUAGE plpgsql AS $$
DECLARE
	a assignments;
	w workers;
	rule text := 'least_loaded';
BEGIN
	SELECT * INTO STRICT a FROM assignments WHERE id = p_id;
	IF a.status NOT IN ('unassigned', 'declined', 'expired') THEN
		RAISE EXCEPTION 'match_assignment on % assignment', a.status USING ERRCODE = 'RF409';
	END IF;

	-- Continuity of care is a preference: if that worker is busy for long,
	-- fall back to ordinary matching rather than fail.
	IF p_prefer IS NOT NULL THEN
		w := match_candidate_waiting(a, p_prefer);
		IF w.id IS NOT NULL THEN
			rule := 'continuity_of_care';
		END IF;
	END IF;
	IF w.id IS NULL THEN
		w := match_candidate(a, NULL, true);
	END IF;
	IF w.id IS NULL THEN
		w := match_candidate_or_busy(a, NULL);
	END IF;

	IF w.id IS NOT NULL THEN
		RETURN offer_make(a, w, jsonb_build_object(
			'rule', rule,
			'open_before', w.open_count,
			'capacity', w.capacity,
			'idle_since', w.last_assigned_at,
			'region', a.region,
			'shared_languages', (SELECT to_jsonb(array_agg(l ORDER BY l))
			                     FROM unnest(w.languages) l WHERE l = ANY (a.languages))));
	END IF;

	IF a.status <> 'unassigned' THEN
		UPDATE assignments SET status = 'unassigned', worker_id = NULL,
		       organisation_id = NULL, offer_expires_at = NULL, match_reason = NULL
		WHERE id = a.id RETURNING * INTO a;
	END IF;
	INSERT INTO escalations (reason, assignment_id, organisation_id)
	VALUES ('unassigned', a.id, NULL)
	ON CONFLICT (assignment_id) WHERE reason = 'unassigned' AND resolved_at IS NULL DO NOTHING;
	INSERT INTO outbox (type, payload)
	VALUES ('assignment.unassigned',
	        jsonb_build_object('assignment_id', a.id, 'detail_url', '/v1/assignments/' || a.id));
	RETURN a;
END $$;
