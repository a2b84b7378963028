-- 60_retention.sql - crypto-erasure and retention (issue 10 section 3).
--
-- Owns: referral_forget() (destroys a referral's personal fields and queues
-- its data key for deletion from the key store, in the caller's
-- transaction), the erasure queue's two calls for the daemon, the retention
-- policy (GET/PUT /v1/retention-policy), and retention_run(), the batch the
-- daemon's retention job runs: personal data destroyed contact_after_close
-- after a referral closed, its rows deleted record_after_close after,
-- leaving anonymous facts for the follow-up report.
-- Must never: delete an audit record; keep a personal field of a forgotten
-- referral; put a referral, assignment or worker id into the facts; hold
-- locks for more than one batch.
--
-- A referral is closed when its status is closed or withdrawn; it closed at
-- closed_at, withdrawn_at, or (a status set by other means) updated_at.

CREATE OR REPLACE FUNCTION referral_closed_at(r referrals) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$ SELECT coalesce(r.closed_at, r.withdrawn_at, r.updated_at) $$;

-- Destroy every personal field of these referrals and of their
-- assignments, events and history, and queue their data keys for deletion
-- from the key store. Runs in system scope (the fields of every row of the
-- referral go, whoever may see them) and gives the caller's scope back.
-- Returns how many referrals were found. Idempotent.
CREATE OR REPLACE FUNCTION referral_forget_many(p_ids uuid[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
	prev text := current_setting('app.role', true);
	n integer;
BEGIN
	PERFORM set_config('app.role', 'system', true);
	-- Step 1: the referral's own columns.
	UPDATE referrals SET contact_sealed = NULL, note_sealed = NULL, withdrawn_reason_sealed = NULL,
	       external_ref_sealed = NULL, external_ref_hash = NULL, uic_hash = NULL,
	       forgotten_at = coalesce(forgotten_at, now())
	WHERE id = ANY(p_ids);
	GET DIAGNOSTICS n = ROW_COUNT;
	-- Step 2: free text of its assignments, their events and history.
	-- A reassignment's reason is a supervisor's free text kept in clear in
	-- reason (the other values there are codes): it goes too.
	UPDATE assignments SET reason_sealed = NULL, detail_sealed = NULL,
	       reason = CASE WHEN status = 'reassigned' THEN NULL ELSE reason END
	WHERE referral_id = ANY(p_ids)
	  AND (reason_sealed IS NOT NULL OR detail_sealed IS NOT NULL
	       OR (status = 'reassigned' AND reason IS NOT NULL));
	UPDATE assignment_events e SET detail_sealed = NULL, outcome_sealed = NULL
	FROM assignments a
	WHERE a.referral_id = ANY(p_ids) AND e.assignment_id = a.id
	  AND (e.detail_sealed IS NOT NULL OR e.outcome_sealed IS NOT NULL);
	UPDATE assignment_history h SET reason = NULL, reason_sealed = NULL
	FROM assignments a
	WHERE a.referral_id = ANY(p_ids) AND h.assignment_id = a.id
	  AND (h.reason IS NOT NULL OR h.reason_sealed IS NOT NULL);
	-- Step 3: the data keys, deleted from the key store after commit.
	INSERT INTO data_key_erasures (referral_id)
	SELECT id FROM referrals WHERE id = ANY(p_ids)
	ON CONFLICT (referral_id) DO NOTHING;
	PERFORM set_config('app.role', coalesce(prev, ''), true);
	RETURN n;
END $$;

-- One referral (consent revocation calls this). true when it exists.
CREATE OR REPLACE FUNCTION referral_forget(p_referral uuid) RETURNS boolean
LANGUAGE sql AS $$ SELECT referral_forget_many(ARRAY[p_referral]) > 0 $$;

-- The daemon's side of the queue: the oldest queued referral ids, and,
-- once their keys are gone from the key store, their removal.
CREATE OR REPLACE FUNCTION data_key_erasures_due(p_limit integer) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
	SELECT coalesce(string_agg(referral_id::text, ',' ORDER BY queued_at), '')
	FROM (SELECT referral_id, queued_at FROM data_key_erasures
	      ORDER BY queued_at LIMIT greatest(p_limit, 1)) q
$$;

CREATE OR REPLACE FUNCTION data_key_erasures_done(p_ids uuid[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
	n integer;
BEGIN
	DELETE FROM data_key_erasures WHERE referral_id = ANY(p_ids);
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END $$;

-- The referral of an assignment (the daemon seals the assignment's free
-- text under that referral's data key), and whether its data still exists.
-- System scope: the daemon asks before the caller's own scope is checked,
-- and learns only ids.
CREATE OR REPLACE FUNCTION assignment_referral(p_assignment uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
	prev text := current_setting('app.role', true);
	j jsonb;
BEGIN
	PERFORM set_config('app.role', 'system', true);
	SELECT jsonb_build_object('referral_id', r.id, 'forgotten', r.forgotten_at IS NOT NULL)
	INTO j
	FROM assignments a JOIN referrals r ON r.id = a.referral_id
	WHERE a.id = p_assignment;
	PERFORM set_config('app.role', coalesce(prev, ''), true);
	RETURN j;
END $$;

-- Retention policy ---------------------------------------------------------

CREATE OR REPLACE FUNCTION retention_policy_json(p retention_policy) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('contact_after_close', iso_duration(p.contact_after_close),
	                          'record_after_close', iso_duration(p.record_after_close),
	                          'updated_at', ts(p.updated_at))
$$;

CREATE OR REPLACE FUNCTION api_retention_policy_get(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	err jsonb := admin_check(p_who, p_request_id, 'retention_policy.get');
	p retention_policy;
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	SELECT * INTO STRICT p FROM retention_policy;
	RETURN api_done(p_who, p_request_id, 'retention_policy.get', 'retention_policy', NULL, 200,
	                retention_policy_json(p));
END $$;

-- ISO 8601 durations as received (P30D, P730D, PT1S), positive.
CREATE OR REPLACE FUNCTION api_retention_policy_put(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	err jsonb := admin_check(p_who, p_request_id, 'retention_policy.put');
	p retention_policy;
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	err := durations_check(p_args, ARRAY['contact_after_close', 'record_after_close']);
	IF err IS NOT NULL THEN RETURN err; END IF;
	UPDATE retention_policy
	SET contact_after_close = coalesce((p_args->>'contact_after_close')::interval, contact_after_close),
	    record_after_close = coalesce((p_args->>'record_after_close')::interval, record_after_close),
	    updated_at = now()
	RETURNING * INTO STRICT p;
	RETURN api_done(p_who, p_request_id, 'retention_policy.put', 'retention_policy', NULL, 200,
	                retention_policy_json(p));
END $$;

-- The retention batch ------------------------------------------------------

-- Step: what the follow-up report needs of these referrals' rows, without
-- a referral, assignment or worker id.
CREATE OR REPLACE FUNCTION retention_keep_facts(p_ids uuid[]) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO deadline_facts (kind, organisation_id, office_id, region, need, state,
	                            starts_at, due_at, met_at, elapsed)
	SELECT d.kind, d.organisation_id, a.office_id, a.region, a.need, d.state,
	       d.starts_at, d.due_at, d.met_at, d.elapsed
	FROM assignments a JOIN deadlines d ON d.assignment_id = a.id
	WHERE a.referral_id = ANY(p_ids);
	INSERT INTO assignment_facts (organisation_id, office_id, region, need, urgency, status,
	                              outcome, created_at, accepted_at, first_contact_at, ended_at)
	SELECT a.organisation_id, a.office_id, a.region, a.need, a.urgency, a.status,
	       CASE WHEN a.outcome IN ('linked_to_services', 'engaged', 'declined_services', 'other',
	                               'lost_contact', 'client_declined', 'detained')
	            THEN a.outcome END,
	       a.created_at, a.accepted_at, a.first_contact_at, a.ended_at
	FROM assignments a WHERE a.referral_id = ANY(p_ids);
$$;

-- Step: delete these referrals and every row of theirs; audit records stay.
-- Returns the number of referrals deleted.
CREATE OR REPLACE FUNCTION retention_delete(p_ids uuid[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	aids uuid[];
	n integer;
BEGIN
	SELECT coalesce(array_agg(id), '{}') INTO aids FROM assignments WHERE referral_id = ANY(p_ids);
	DELETE FROM outbox WHERE payload->>'referral_id' = ANY(p_ids::text[]);
	DELETE FROM outbox WHERE payload->>'assignment_id' = ANY(aids::text[]);
	DELETE FROM escalations WHERE assignment_id = ANY(aids);
	DELETE FROM deadlines WHERE assignment_id = ANY(aids);
	DELETE FROM offers WHERE assignment_id = ANY(aids);
	DELETE FROM assignment_events WHERE assignment_id = ANY(aids);
	DELETE FROM assignment_history WHERE assignment_id = ANY(aids);
	DELETE FROM assignments WHERE id = ANY(aids);
	DELETE FROM idempotency_keys WHERE response->>'id' = ANY(p_ids::text[]);
	-- A later referral of the same client that linked to one of these
	-- loses the link, not its own rows.
	UPDATE referrals SET duplicate_of = NULL WHERE duplicate_of = ANY(p_ids);
	DELETE FROM referrals WHERE id = ANY(p_ids);
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END $$;

-- One record per referral of a batch (system actor, the referral's id), in
-- one statement: the records of a stage of retention_run.
CREATE OR REPLACE FUNCTION retention_audit(p_ids uuid[], p_action text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO audit_log (at, actor_role, actor_id, action, object_type, object_id, outcome,
	                       request_id)
	SELECT clock_timestamp(), 'system', 'retention', p_action, 'referral', x::text, 'ok',
	       'retention'
	FROM unnest(p_ids) x;
END $$;

-- One batch of the retention job: at most p_limit referrals whose personal
-- data is due for destruction, then at most p_limit whose rows are due for
-- deletion, each audited (system actor, the referral's id). One daemon at
-- a time (the others are told busy); rows a request holds are skipped and
-- taken next time. Returns {"forgotten", "purged", "ms", "more", "next_ms"}:
-- more when a stage filled its batch, next_ms the time until the next
-- referral falls due (null: none closed).
CREATE OR REPLACE FUNCTION retention_run(p_limit integer) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
	pol retention_policy;
	lim integer := greatest(coalesce(p_limit, 200), 1);
	forget_ids uuid[];
	purge_ids uuid[];
	nf integer := 0;
	np integer := 0;
	due timestamptz;
	sys jsonb := jsonb_build_object('role', 'system', 'id', 'retention');
BEGIN
	IF NOT pg_try_advisory_xact_lock(hashtextextended('referrald:retention', 0)) THEN
		RETURN jsonb_build_object('busy', true, 'forgotten', 0, 'purged', 0, 'more', false,
		                          'next_ms', 1000);
	END IF;
	PERFORM ctx_set(sys, 'retention');
	SELECT * INTO STRICT pol FROM retention_policy;

	SELECT coalesce(array_agg(id), '{}') INTO forget_ids FROM (
		SELECT r.id FROM referrals r
		WHERE r.status <> 'open' AND r.forgotten_at IS NULL
		  AND coalesce(r.closed_at, r.withdrawn_at, r.updated_at) <= now() - pol.contact_after_close
		ORDER BY coalesce(r.closed_at, r.withdrawn_at, r.updated_at)
		LIMIT lim FOR UPDATE SKIP LOCKED) q;
	IF cardinality(forget_ids) > 0 THEN
		nf := referral_forget_many(forget_ids);
		PERFORM retention_audit(forget_ids, 'retention.contact_erased');
	END IF;

	SELECT coalesce(array_agg(id), '{}') INTO purge_ids FROM (
		SELECT r.id FROM referrals r
		WHERE r.status <> 'open'
		  AND coalesce(r.closed_at, r.withdrawn_at, r.updated_at) <= now() - pol.record_after_close
		ORDER BY coalesce(r.closed_at, r.withdrawn_at, r.updated_at)
		LIMIT lim FOR UPDATE SKIP LOCKED) q;
	IF cardinality(purge_ids) > 0 THEN
		PERFORM referral_forget_many(purge_ids);
		PERFORM retention_keep_facts(purge_ids);
		np := retention_delete(purge_ids);
		PERFORM retention_audit(purge_ids, 'retention.record_purged');
	END IF;
	IF nf > 0 OR np > 0 THEN
		-- The counts of the batch, as one record of their own.
		PERFORM audit_write(sys, 'retention', 'retention.batch', 'retention',
		                    format('contact_erased=%s record_purged=%s', nf, np), 'ok');
	END IF;

	SELECT least(
		(SELECT coalesce(r.closed_at, r.withdrawn_at, r.updated_at) + pol.contact_after_close
		 FROM referrals r WHERE r.status <> 'open' AND r.forgotten_at IS NULL
		 ORDER BY coalesce(r.closed_at, r.withdrawn_at, r.updated_at) LIMIT 1),
		(SELECT coalesce(r.closed_at, r.withdrawn_at, r.updated_at) + pol.record_after_close
		 FROM referrals r WHERE r.status <> 'open'
		 ORDER BY coalesce(r.closed_at, r.withdrawn_at, r.updated_at) LIMIT 1))
	INTO due;
	RETURN jsonb_build_object('forgotten', nf, 'purged', np,
		-- How long this transaction has held its locks so far (commit follows).
		'ms', round(extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint,
		'more', cardinality(forget_ids) >= lim OR cardinality(purge_ids) >= lim,
		'next_ms', CASE WHEN due IS NOT NULL
		                THEN greatest(0, ceil(extract(epoch FROM due - now()) * 1000))::bigint END);
END $$;
