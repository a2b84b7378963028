-- 07_referrals.sql - submission, reading, listing and withdrawing
-- referrals.
--
-- Owns: api_referral_submit (idempotency, duplicates, matching in the same
-- transaction), api_referral_get, api_referral_list, api_referral_withdraw.
-- Must never: show a referral outside the caller's scope (404 + 'denied'
-- audit), return sealed client fields to offices or supervisors, or create
-- anything twice for one Idempotency-Key.

-- A referral's field rules, for every insert and update whoever writes.
-- These were CHECK constraints until migration 0090: PostgreSQL rebuilt and
-- planned their expressions from text for every statement writing the row;
-- here the expression is planned once per session. A rule holds unless it
-- is false (NULL passes, as in a CHECK), and the first broken one in name
-- order is reported as a CHECK would report it: check_violation, under the
-- constraint's old name. The patterns the CHECKs matched (^[0-9a-f]{64}$,
-- ^[a-z0-9-]{1,64}$) are tested as a length and an unbounded class (^[0-9a-f]*$):
-- the same strings, and ten times cheaper (the engine expands a bound of 64
-- into 64 states: about 11 us per 64-digit hash, two or three per
-- submission).
CREATE OR REPLACE FUNCTION referral_hex64(p text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
	SELECT length(p) = 64 AND p ~ '^[0-9a-f]*$'
$$;
CREATE OR REPLACE FUNCTION referral_checks_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	broken text := CASE
		WHEN (NEW.birth_year BETWEEN 1900 AND 2200) IS FALSE THEN 'referrals_birth_year_check'
		WHEN (NEW.consent_services = (NEW.consent_revoked_at IS NULL)) IS FALSE
			THEN 'referrals_consent_revoked'
		WHEN (length(NEW.external_ref) BETWEEN 1 AND 64) IS FALSE THEN 'referrals_external_ref_check'
		WHEN referral_hex64(NEW.external_ref_hash) IS FALSE THEN 'referrals_external_ref_hash_check'
		WHEN (cardinality(NEW.languages) >= 1) IS FALSE THEN 'referrals_languages_check'
		WHEN (cardinality(NEW.needs) BETWEEN 1 AND 2 AND NEW.needs::need[] IS NOT NULL) IS FALSE
			THEN 'referrals_needs_check'
		WHEN (length(NEW.region) BETWEEN 1 AND 64 AND NEW.region ~ '^[a-z0-9-]*$') IS FALSE
			THEN 'referrals_region_check'
		WHEN referral_hex64(NEW.uic_hash) IS FALSE THEN 'referrals_uic_hash_check' END;
BEGIN
	IF broken IS NULL THEN
		RETURN NEW;
	END IF;
	RAISE EXCEPTION 'new row for relation "referrals" violates check constraint "%"', broken
		USING ERRCODE = 'check_violation', CONSTRAINT = broken, TABLE = 'referrals';
END $$;
CREATE OR REPLACE TRIGGER referral_checks BEFORE INSERT OR UPDATE ON referrals
	FOR EACH ROW EXECUTE FUNCTION referral_checks_trg();

-- Submission, in five named steps: idempotency, duplicate link, insert,
-- match, audit (with the stored answer). api_referral_submit only strings
-- them together and turns each step's refusal into the answer.

-- Step 1, idempotency. One transaction per (office, key) at a time: a second
-- one arriving while the first is still running is told so instead of
-- waiting. NULL when the key is new; otherwise the answer to give (the
-- replayed one, or a refusal).
CREATE OR REPLACE FUNCTION referral_submit_idempotency(p_who jsonb, p_request_id text,
                                                       p_office uuid, p_key text, p_hash text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	stored idempotency_keys;
	r referrals;
BEGIN
	IF NOT pg_try_advisory_xact_lock(hashtextextended('idem:' || p_office || ':' || p_key, 0)) THEN
		RETURN api_error(409, 'idempotency_key_in_flight',
		                 'a request with this Idempotency-Key is still being processed');
	END IF;
	SELECT * INTO stored FROM idempotency_keys WHERE office_id = p_office AND key = p_key;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	IF stored.request_hash IS DISTINCT FROM p_hash THEN
		RETURN api_error(422, 'idempotency_key_reused',
		                 'this Idempotency-Key was used with a different request');
	END IF;
	PERFORM audit_write(p_who, p_request_id, 'referral.submit_replay', 'referral',
	                    stored.response->>'id', 'ok');
	-- The same referral again, as the office may see it now: a consent
	-- revoked since the first answer holds for the replay too, so only the
	-- id is stored (no case number or assignment kept in the stored answer).
	SELECT * INTO r FROM referrals WHERE id = try_uuid(stored.response->>'id');
	RETURN api_result(stored.status,
	                  CASE WHEN r.id IS NULL THEN stored.response ELSE referral_json(r) END,
	                  jsonb_build_object('Idempotent-Replayed', 'true',
	                                     'Location', '/v1/referrals/' || (stored.response->>'id')));
END $$;

-- The office's referral with this external_ref, under the caller's scope:
-- by the daemon's keyed hash (external_ref_hash, sql/functions/60_retention
-- explains why), or by the clear value of a row written before it.
-- (PL/pgSQL: planned once per session; as SQL, at every submission.)
-- Each lookup runs only with its key present: a NULL key folded into a
-- custom plan (no rows, cost 0) always looked cheaper than the generic
-- plan, so the statement was planned again at every submission.
CREATE OR REPLACE FUNCTION referral_by_external_ref(p_office uuid, p_ref text) RETURNS uuid
LANGUAGE plpgsql STABLE AS $$
BEGIN
	IF p_ref IS NULL THEN
		RETURN NULL;
	END IF;
	RETURN (SELECT id FROM referrals WHERE office_id = p_office AND external_ref = p_ref);
END $$;
CREATE OR REPLACE FUNCTION referral_by_external_ref(p_office uuid, p_args jsonb) RETURNS uuid
LANGUAGE plpgsql STABLE AS $$
DECLARE
	h text := p_args->>'external_ref_hash';
	found_id uuid;
BEGIN
	IF h IS NOT NULL THEN
		SELECT id INTO found_id FROM referrals WHERE office_id = p_office AND external_ref_hash = h;
		IF found_id IS NOT NULL THEN
			RETURN found_id;
		END IF;
	END IF;
	RETURN referral_by_external_ref(p_office, p_args->>'external_ref');
END $$;

CREATE OR REPLACE FUNCTION referral_duplicate_ref_error(p_existing uuid) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT api_error(409, 'duplicate_referral',
	                 'this office already submitted a referral with this external_ref',
	                 '/external_ref', jsonb_build_object('existing_id', p_existing))
$$;

-- Step 2, duplicate link: the open referral of the same client (any office)
-- the new one points at, or NULL. Runs in system scope. Submissions for one
-- client queue on the lock, so the second sees the first once it commits and
-- links to it: without the lock two concurrent ones would both look, find
-- nothing, and both be originals.
CREATE OR REPLACE FUNCTION referral_duplicate_of(p_uic_hash text) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
	dup uuid;
BEGIN
	PERFORM pg_advisory_xact_lock(hashtextextended('uic:' || p_uic_hash, 0));
	SELECT id INTO dup FROM referrals
	WHERE uic_hash = p_uic_hash AND status = 'open'
	ORDER BY created_at, id LIMIT 1;
	RETURN dup;
END $$;

-- Step 3, insert. NULL (nothing written) when another referral holds the
-- same id or external_ref: one committed first, or one still running that
-- then commits (ON CONFLICT waits for it, as the unique index would; no
-- sub-transaction needed).
CREATE OR REPLACE FUNCTION referral_insert(p_office uuid, p_args jsonb, p_dup uuid) RETURNS referrals
LANGUAGE plpgsql AS $$
DECLARE
	c jsonb := p_args->'client';
	r referrals;
BEGIN
	-- The daemon chose the id, so the sealed fields are bound to this row.
	INSERT INTO referrals (id, office_id, external_ref, uic_hash, birth_year, gender, languages,
	                       region, needs, urgency, consent_services, consent_report_back,
	                       consent_obtained_at, probation_starts_on, probation_ends_on,
	                       contact_sealed, note_sealed, duplicate_of,
	                       external_ref_sealed, external_ref_hash)
	VALUES (coalesce(try_uuid(p_args->>'id'), gen_random_uuid()), p_office, p_args->>'external_ref', c->>'uic_hash', (c->>'birth_year')::integer,
	        c->>'gender', jsonb_text_array(c->'languages'), c->>'region',
	        ARRAY(SELECT DISTINCT n FROM jsonb_array_elements_text(p_args->'needs') n ORDER BY n),
	        coalesce(p_args->>'urgency', 'normal'), true,
	        coalesce((p_args->'consent'->>'report_back')::boolean, false),
	        (p_args->'consent'->>'obtained_at')::timestamptz,
	        (p_args->'probation'->>'starts_on')::date, (p_args->'probation'->>'ends_on')::date,
	        c->>'contact_sealed', p_args->>'note_sealed', p_dup,
	        p_args->>'external_ref_sealed', p_args->>'external_ref_hash')
	ON CONFLICT DO NOTHING
	RETURNING * INTO r;
	RETURN r;
END $$;

-- Continuity of care: the worker already holding this client's open
-- assignment of the same need (offered last), or NULL.
CREATE OR REPLACE FUNCTION referral_continuity(r referrals, p_need text) RETURNS uuid
LANGUAGE sql STABLE AS $$
	SELECT a.worker_id
	FROM referrals o JOIN assignments a ON a.referral_id = o.id
	WHERE o.uic_hash = r.uic_hash AND o.status = 'open' AND o.id <> r.id
	  AND a.need = p_need AND a.worker_id IS NOT NULL
	  AND a.status IN ('offered', 'accepted', 'in_progress', 'on_hold')
	ORDER BY a.status = 'offered', a.created_at
	LIMIT 1
$$;

-- Step 4, match, the general way: one assignment per need, each matched by
-- match_assignment (continuity of care, waiting for a busy candidate,
-- escalation). Needs in a fixed order, so concurrent submissions lock
-- workers of the two kinds in the same order. Used for a duplicate (the
-- continuity preference); referral_match_all below for everything else.
CREATE OR REPLACE FUNCTION referral_match(r referrals) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	v_need text;
	aid uuid;
BEGIN
	FOREACH v_need IN ARRAY r.needs LOOP
		INSERT INTO assignments (referral_id, office_id, need, urgency, region, languages)
		VALUES (r.id, r.office_id, v_need, r.urgency, r.region, r.languages)
		RETURNING id INTO aid;
		PERFORM match_assignment(aid, CASE WHEN r.duplicate_of IS NOT NULL
		                                   THEN referral_continuity(r, v_need) END);
	END LOOP;
END $$;

-- Step 4, match, set-based (a referral that is no duplicate): the
-- candidates of every need in one query, then one INSERT per table for all
-- needs (assignments born 'offered', their offers, accept deadlines and
-- outbox messages), and the rows it wrote returned for the reply, in need
-- order. The same choice as match_assignment's first attempt (the least
-- loaded free candidate, FOR UPDATE SKIP LOCKED, read in index order,
-- match_candidate explains the shape), the same rows as offer_make writes.
-- A need with no free unlocked candidate is inserted unassigned and goes
-- through match_assignment (wait for a busy one, or escalate); so does every
-- need after it, which is why the second need is looked for only when the
-- first found one: workers are locked in need order, as referral_match does,
-- and a submission never holds a later need's worker while waiting for an
-- earlier need's (no lock-order cycle between two submissions). At most two
-- needs (referrals_needs_check).
-- Its plans are generic (planned once per session): a custom plan, with
-- the chosen workers folded in as constants, always looked cheaper and the
-- writing statement was planned again at every submission (0.5 ms).
CREATE OR REPLACE FUNCTION referral_match_all(r referrals) RETURNS assignments[]
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
	pick record;
	w1 workers;
	w2 workers;
	asg assignments[];
	a assignments;
	i integer;
BEGIN
	SELECT m1.c1, m2.c2 INTO pick
	FROM (SELECT 1) base
	LEFT JOIN LATERAL (
		SELECT x.c1
		FROM (SELECT s.worker_id, s.load, s.last_assigned_at FROM worker_match_slots s
		      WHERE s.region = r.region AND s.kind = r.needs[1]) s
		CROSS JOIN LATERAL (
			SELECT c1 FROM workers c1
			WHERE c1.id = s.worker_id AND c1.active AND NOT c1.on_leave AND c1.kind = r.needs[1]
			  AND c1.regions @> ARRAY[r.region] AND c1.languages && r.languages
			  AND c1.open_count < c1.capacity
			FOR UPDATE OF c1 SKIP LOCKED) x
		ORDER BY s.load, s.last_assigned_at NULLS FIRST, s.worker_id
		LIMIT 1) m1 ON true
	LEFT JOIN LATERAL (
		SELECT x.c2
		FROM (SELECT s.worker_id, s.load, s.last_assigned_at FROM worker_match_slots s
		      WHERE s.region = r.region AND s.kind = r.needs[2]
		        AND (m1.c1).id IS NOT NULL) s
		CROSS JOIN LATERAL (
			SELECT c2 FROM workers c2
			WHERE c2.id = s.worker_id AND c2.active AND NOT c2.on_leave AND c2.kind = r.needs[2]
			  AND c2.regions @> ARRAY[r.region] AND c2.languages && r.languages
			  AND c2.open_count < c2.capacity
			FOR UPDATE OF c2 SKIP LOCKED) x
		ORDER BY s.load, s.last_assigned_at NULLS FIRST, s.worker_id
		LIMIT 1) m2 ON true;
	w1 := pick.c1;
	w2 := pick.c2;

	-- (Each sub-select names its own alias: a bare "c" in the second
	-- would be read as the first one's output column, a lateral reference.)
	-- What each need gets: its worker (or none), the accept deadline on
	-- the policy's clock (deadline_due, planned once here), the reason.
	WITH p AS MATERIALIZED (
		SELECT n.ord, n.need, gen_random_uuid() AS aid, gen_random_uuid() AS oid,
		       w.id AS wid, w.organisation_id AS org, dd.due_at, dd.clock, dd.remind_at,
		       CASE WHEN w.id IS NOT NULL THEN jsonb_build_object(
		           'rule', 'least_loaded',
		           'open_before', w.open_count,
		           'capacity', w.capacity,
		           'idle_since', w.last_assigned_at,
		           'region', r.region,
		           'shared_languages', (SELECT to_jsonb(array_agg(l ORDER BY l))
		                                FROM unnest(w.languages) l WHERE l = ANY (r.languages)))
		       END AS reason
		FROM unnest(r.needs) WITH ORDINALITY n(need, ord)
		CROSS JOIN LATERAL (SELECT (CASE n.ord WHEN 1 THEN w1 ELSE w2 END).*) w
		LEFT JOIN LATERAL (
			SELECT CASE WHEN cal.organisation_id IS NOT NULL
			            THEN coalesce(working_due(now(), pol.accept_within, cal.timezone,
			                                      cal.hours, cal.holidays),
			                          now() + pol.accept_within)
			            ELSE now() + pol.accept_within END AS due_at,
			       CASE WHEN cal.organisation_id IS NOT NULL THEN 'working' ELSE 'wall' END AS clock,
			       pol.remind_before
			FROM deadline_policies pol
			LEFT JOIN org_calendars cal ON pol.clock = 'working' AND cal.organisation_id = w.organisation_id
			WHERE pol.need = n.need AND pol.urgency = r.urgency AND w.id IS NOT NULL) d0 ON true
		CROSS JOIN LATERAL (
			SELECT d0.due_at, d0.clock,
			       CASE WHEN d0.remind_before IS NOT NULL
			            THEN greatest(now(), d0.due_at - d0.remind_before) END AS remind_at) dd),
	ins AS (
		INSERT INTO assignments (id, referral_id, office_id, need, urgency, region, languages,
		                         status, worker_id, organisation_id, offer_expires_at, match_reason)
		SELECT p.aid, r.id, r.office_id, p.need, r.urgency, r.region, r.languages,
		       CASE WHEN p.wid IS NULL THEN 'unassigned' ELSE 'offered' END, p.wid, p.org,
		       CASE WHEN p.wid IS NOT NULL THEN p.due_at END, p.reason
		FROM p ORDER BY p.ord
		RETURNING *),
	ins_offers AS (
		INSERT INTO offers (id, assignment_id, worker_id, expires_at, match_reason)
		SELECT p.oid, p.aid, p.wid, p.due_at, p.reason FROM p WHERE p.wid IS NOT NULL ORDER BY p.ord),
	ins_deadlines AS (
		INSERT INTO deadlines (kind, assignment_id, offer_id, worker_id, organisation_id, due_at,
		                       clock, remind_at)
		SELECT 'accept', p.aid, p.oid, p.wid, p.org, p.due_at, p.clock, p.remind_at
		FROM p WHERE p.wid IS NOT NULL ORDER BY p.ord),
	ins_outbox AS (
		INSERT INTO outbox (type, payload, organisation_id)
		SELECT 'assignment.offered',
		       jsonb_build_object('assignment_id', p.aid, 'worker_id', p.wid,
		                          'detail_url', '/v1/assignments/' || p.aid),
		       p.org
		FROM p WHERE p.wid IS NOT NULL ORDER BY p.ord)
	SELECT array_agg(ins ORDER BY ins.need) INTO asg FROM ins;

	FOR i IN 1 .. cardinality(asg) LOOP
		IF asg[i].status = 'unassigned' THEN
			a := match_assignment(asg[i].id);
			asg[i] := a;
		END IF;
	END LOOP;
	RETURN asg;
END $$;

-- The reply to a submission is the referral as its office sees it, built
-- from the rows the submission holds (referral_office_json_of, called
-- directly: a wrapper of its own was one more PL/pgSQL call per submission).
DROP FUNCTION IF EXISTS referral_submit_reply(referrals, assignments[]);
DROP FUNCTION IF EXISTS referral_submit_done(jsonb, text, uuid, text, text);
DROP FUNCTION IF EXISTS referral_submit_done(jsonb, text, referrals, text, text);

CREATE OR REPLACE FUNCTION api_referral_submit(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	office uuid := (p_who->>'id')::uuid;
	k text := p_args->>'idempotency_key';
	answer jsonb;
	existing uuid;
	dup uuid;
	r referrals;
	asg assignments[];
	body jsonb;
	err jsonb := api_check(p_who, p_request_id, 'referral.submit', ARRAY['office']);
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	IF k IS NULL OR length(k) NOT BETWEEN 1 AND 128 THEN
		RETURN api_error(400, 'idempotency_key_required', 'Idempotency-Key header is required');
	END IF;
	-- Step 1, idempotency.
	answer := referral_submit_idempotency(p_who, p_request_id, office, k, p_args->>'request_hash');
	IF answer IS NOT NULL THEN
		RETURN answer;
	END IF;
	IF NOT coalesce((p_args->'consent'->>'services')::boolean, false) THEN
		RETURN api_error(422, 'consent_required', 'the client must consent to services',
		                 '/consent/services');
	END IF;
	existing := referral_by_external_ref(office, p_args);
	IF existing IS NOT NULL THEN
		RETURN referral_duplicate_ref_error(existing);
	END IF;

	-- Duplicate detection and continuity of care look at every office's
	-- referrals: system scope until the response is shaped.
	PERFORM ctx_system();
	-- Step 2, duplicate link; step 3, insert.
	dup := referral_duplicate_of(p_args->'client'->>'uic_hash');
	r := referral_insert(office, p_args, dup);
	IF r.id IS NULL THEN
		-- Another key raced us with the same external_ref and committed first.
		PERFORM ctx_caller();
		RETURN referral_duplicate_ref_error(referral_by_external_ref(office, p_args));
	END IF;
	-- Step 4, match.
	IF dup IS NULL THEN
		asg := referral_match_all(r);
	ELSE
		PERFORM referral_match(r);
	END IF;
	PERFORM ctx_caller();

	-- Step 5, the answer, shaped for the office from the row the insert
	-- returned and the assignments matching wrote (matching never writes
	-- the referral row); the key keeps only the referral's id for replays
	-- (which shape it again); the audit record is the last write.
	body := CASE WHEN dup IS NULL THEN referral_office_json_of(r, asg) ELSE referral_json(r) END;
	INSERT INTO idempotency_keys (office_id, key, request_hash, status, response)
	VALUES (office, k, coalesce(p_args->>'request_hash', ''), 201, jsonb_build_object('id', r.id));
	RETURN api_done(p_who, p_request_id, 'referral.submit', 'referral', r.id::text, 201,
	                body, jsonb_build_object('Location', '/v1/referrals/' || r.id));
END $$;

-- Scope of one referral for the caller (the explicit check; row-level
-- security repeats it underneath).
CREATE OR REPLACE FUNCTION referral_in_scope(r referrals, p_who jsonb) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT CASE p_who->>'role'
	WHEN 'office' THEN r.office_id::text = p_who->>'id'
	WHEN 'supervisor' THEN coalesce((p_who->>'programme')::boolean, false)
		OR EXISTS (SELECT 1 FROM assignments a
		           WHERE a.referral_id = r.id AND a.organisation_id::text = p_who->>'org_id')
	ELSE false END
$$;

CREATE OR REPLACE FUNCTION api_referral_get(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	r referrals;
	err jsonb := api_check(p_who, p_request_id, 'referral.get', ARRAY['office', 'supervisor']);
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	SELECT * INTO r FROM referrals WHERE id = try_uuid(p_args->>'id');
	IF r.id IS NULL OR NOT referral_in_scope(r, p_who) THEN
		RETURN api_not_found(p_who, p_request_id, 'referral.get', 'referral', p_args->>'id');
	END IF;
	RETURN api_done(p_who, p_request_id, 'referral.get', 'referral', r.id::text, 200,
	                referral_json(r));
END $$;

-- An office filters on the status it may see, or the filter would tell it
-- what the view hides.
CREATE OR REPLACE FUNCTION api_referral_list(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE sql AS $$
	SELECT list_page(p_who, p_request_id, p_args, 'referral.list', ARRAY['office', 'supervisor'],
	                 'referral', NULL, 'referrals', 'referral_json(x)', $f$
		referral_in_scope(x, $1)
		AND ($1->>'role' <> 'office' OR x.office_id = ($1->>'id')::uuid)
		AND ($2->>'status' IS NULL
		     OR CASE WHEN $1->>'role' = 'office' THEN referral_office_status(x)
		             ELSE x.status END = $2->>'status')
		AND ($2->>'since' IS NULL OR x.created_at >= ($2->>'since')::timestamptz)$f$)
$$;

-- Every live assignment of a referral ends 'cancelled' with p_reason (its
-- open offer ending p_offer_outcome), its pending deadlines void, its
-- escalations resolved, and an assignment.cancelled event for each (with
-- p_unassigned_too also for those no organisation holds). The workers whose
-- load goes down are locked first, in id order: two transactions touching
-- the same two workers then cannot deadlock. Withdrawal and consent
-- revocation (12_consent.sql) both end a referral's work this way.
CREATE OR REPLACE FUNCTION referral_cancel_assignments(p_referral uuid, p_offer_outcome text,
                                                       p_reason text, p_unassigned_too boolean)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	aid uuid;
BEGIN
	PERFORM 1 FROM workers
	WHERE id IN (SELECT worker_id FROM assignments
	             WHERE referral_id = p_referral AND assignment_is_open(status))
	ORDER BY id FOR UPDATE;
	FOR aid IN SELECT id FROM assignments
	           WHERE referral_id = p_referral AND NOT assignment_is_ended(status)
	           ORDER BY id FOR UPDATE LOOP
		PERFORM offer_end(aid, p_offer_outcome, p_reason);
		-- declined/expired rows are matched again in the same transaction
		-- that set them, so every live row here has a cancel transition.
		UPDATE assignments SET status = 'cancelled', reason = p_reason, reason_sealed = NULL
		WHERE id = aid;
		UPDATE deadlines SET state = 'void' WHERE assignment_id = aid AND state = 'pending';
		UPDATE escalations SET resolved_at = now() WHERE assignment_id = aid AND resolved_at IS NULL;
		INSERT INTO outbox (type, payload, organisation_id)
		SELECT 'assignment.cancelled',
		       jsonb_build_object('assignment_id', aid, 'detail_url', '/v1/assignments/' || aid),
		       organisation_id
		FROM assignments WHERE id = aid AND (p_unassigned_too OR organisation_id IS NOT NULL);
	END LOOP;
END $$;

CREATE OR REPLACE FUNCTION api_referral_withdraw(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	r referrals;
	err jsonb := api_check(p_who, p_request_id, 'referral.withdraw', ARRAY['office']);
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	SELECT * INTO r FROM referrals WHERE id = try_uuid(p_args->>'id') FOR UPDATE;
	IF r.id IS NULL OR NOT referral_in_scope(r, p_who) THEN
		RETURN api_not_found(p_who, p_request_id, 'referral.withdraw', 'referral', p_args->>'id');
	END IF;
	-- Open as the office sees it: without report-back a referral whose
	-- assignments all ended still looks open to it, and a 409 here would
	-- tell it otherwise; withdrawing it then marks it withdrawn.
	IF referral_office_status(r) <> 'open' THEN
		RETURN api_error(409, 'invalid_transition', 'only an open referral can be withdrawn');
	END IF;

	PERFORM ctx_system();
	UPDATE referrals SET status = 'withdrawn', withdrawn_at = now(), updated_at = now(),
	       withdrawn_reason_sealed = p_args->>'reason_sealed'
	WHERE id = r.id RETURNING * INTO r;
	PERFORM referral_cancel_assignments(r.id, 'cancelled', 'referral_withdrawn', true);
	INSERT INTO outbox (type, payload, office_id)
	VALUES ('referral.withdrawn',
	        jsonb_build_object('referral_id', r.id, 'detail_url', '/v1/referrals/' || r.id), r.office_id);
	PERFORM ctx_caller();
	RETURN api_done(p_who, p_request_id, 'referral.withdraw', 'referral', r.id::text, 200,
	                referral_json(r));
END $$;
