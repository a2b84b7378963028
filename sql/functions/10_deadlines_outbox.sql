-- 10_deadlines_outbox.sql - the sweeper's claim, the supervisor's
-- deadline and audit lists, and the outbox claim/ack for webhook delivery.
--
-- Owns: deadline_sweep() and its steps (deadline_mark_missed(),
-- deadline_miss_offer()), api_deadline_list(), api_audit_list(),
-- outbox_claim(), outbox_done(), outbox_retry(), idempotency_purge().
-- Must never: act on a deadline twice (several daemons share one database),
-- wait on a row an api_ function holds (that order would deadlock), or put
-- client data into an outbox payload.

-- One deadline at a time was the sweeper's cost (issue 12): gone.
DROP FUNCTION IF EXISTS deadline_miss(deadlines);

-- Claimed deadlines whose assignments this transaction holds: mark them
-- missed, escalate each once and tell each organisation, in three set-based
-- statements (not one round of them per deadline). Touches no worker, so it
-- cannot deadlock with a request.
CREATE OR REPLACE FUNCTION deadline_mark_missed(p_ids uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	-- PL/pgSQL keeps the plan; the ids are joined, not tested with = ANY:
	-- as a SQL function its generic plan read the whole partial index of
	-- pending deadlines for every call (2 ms at 20,000 pending, 5 ms at
	-- 100,000), not the primary key.
	WITH m AS (
		UPDATE deadlines d SET state = 'missed', missed_at = now(), escalated = true
		FROM unnest(p_ids) AS x(id)
		WHERE d.id = x.id AND d.state = 'pending'
		RETURNING d.id, d.kind, d.assignment_id, d.organisation_id, d.due_at
	), e AS (
		INSERT INTO escalations (reason, deadline_id, assignment_id, organisation_id)
		SELECT 'deadline_missed', m.id, m.assignment_id, m.organisation_id FROM m
		ORDER BY m.due_at, m.id
		ON CONFLICT (deadline_id) DO NOTHING
	)
	INSERT INTO outbox (type, payload, organisation_id)
	SELECT 'deadline.missed',
	       jsonb_build_object('deadline_id', m.id, 'kind', m.kind, 'assignment_id', m.assignment_id,
	                          'detail_url', '/v1/assignments/' || m.assignment_id),
	       m.organisation_id
	FROM m ORDER BY m.due_at, m.id;
END $$;

-- One due accept deadline of a live offer, deadline and assignment locked:
-- mark it missed (first: the new offer's accept deadline must not meet it
-- pending), expire the offer and re-offer in this transaction.
CREATE OR REPLACE FUNCTION deadline_miss_offer(p_deadline uuid, p_assignment uuid) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM deadline_mark_missed(ARRAY[p_deadline]);
	PERFORM offer_end(p_assignment, 'expired', 'accept_deadline_missed');
	UPDATE assignments SET status = 'expired' WHERE id = p_assignment;
	PERFORM match_assignment(p_assignment);
END $$;

-- The sweeper's answer: what it did and when the next deadline falls due,
-- on the database clock.
CREATE OR REPLACE FUNCTION deadline_sweep_result(p_processed integer, p_skipped integer)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
	next_due timestamptz;
	wait_ms bigint;
BEGIN
	SELECT min(due_at) INTO next_due FROM deadlines WHERE state = 'pending';
	wait_ms := CASE WHEN next_due IS NULL THEN NULL
	                ELSE greatest(0, (extract(epoch FROM next_due - clock_timestamp()) * 1000)::bigint) END;
	IF p_skipped > 0 THEN
		-- Someone holds those rows right now: look again shortly, not in a spin.
		wait_ms := greatest(coalesce(wait_ms, 50), 50);
	END IF;
	RETURN jsonb_build_object('processed', p_processed, 'skipped', p_skipped,
	                          'next_due_at', to_char(next_due AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
	                          'next_due_in_ms', wait_ms);
END $$;

-- Claim due deadlines and act on them in this transaction, in named steps:
-- claim (the partial index deadlines_due_pending, FOR UPDATE SKIP LOCKED),
-- hold their assignments (SKIP LOCKED), mark the plain ones missed in one
-- set-based step, expire and re-offer the live offers one by one, then the
-- audit records in one statement.
-- FOR UPDATE SKIP LOCKED rather than an advisory lock: each daemon takes a
-- disjoint batch of rows, so two sweepers work in parallel instead of one
-- idling, and a deadline whose row is taken is simply left to the one holding
-- it; the state re-check ('pending') and the unique escalation per deadline
-- make each re-offer and each escalation happen once. The assignment is
-- locked with SKIP LOCKED too: an api_ call holding it (an accept racing the
-- expiry) may itself be waiting for this deadline row, so waiting here could
-- deadlock; the deadline is retried on the next pass instead.
-- A re-offer locks workers (the old one's load goes down, the next one's up),
-- and another sweeper or request may hold those in the other order: after a
-- deadlock or a lock timeout the re-offers are redone one sub-transaction
-- each, so a failure undoes only that deadline, which stays pending for the
-- next pass.
-- A full batch answers "now again" without looking for the next due time
-- (the daemon runs again at once); that probe is paid once, when the due
-- ones are done.
CREATE OR REPLACE FUNCTION deadline_sweep(p_limit integer DEFAULT 100) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	sys jsonb := jsonb_build_object('role', 'system');
	lim integer := greatest(coalesce(p_limit, 100), 1);
	ids uuid[];
	plain uuid[];
	reoffer uuid[];
	done uuid[];
	r record;
	skipped integer;
BEGIN
	PERFORM ctx_set(sys, 'sweeper');
	-- Never wait long on a row some request holds: skip it, retry next pass.
	PERFORM set_config('lock_timeout', '1s', true);
	-- claim
	SELECT coalesce(array_agg(c.id), '{}') INTO ids FROM (
		SELECT id FROM deadlines
		WHERE state = 'pending' AND due_at <= now()
		ORDER BY due_at LIMIT lim
		FOR UPDATE SKIP LOCKED) c;
	-- hold their assignments; a deadline whose assignment is taken is skipped
	WITH held AS (
		SELECT a.id, a.status FROM assignments a
		WHERE a.id IN (SELECT assignment_id FROM deadlines WHERE id = ANY (ids))
		FOR UPDATE SKIP LOCKED
	), k AS (
		SELECT d.id, d.due_at,
		       d.kind = 'accept' AND h.status = 'offered' AND EXISTS (
		           SELECT 1 FROM offers o WHERE o.id = d.offer_id AND o.outcome = 'pending') AS live
		FROM deadlines d JOIN held h ON h.id = d.assignment_id
		WHERE d.id = ANY (ids)
	)
	SELECT coalesce(array_agg(k.id ORDER BY k.due_at) FILTER (WHERE NOT k.live), '{}'),
	       coalesce(array_agg(k.id ORDER BY k.due_at) FILTER (WHERE k.live), '{}')
	INTO plain, reoffer FROM k;
	skipped := cardinality(ids) - cardinality(plain) - cardinality(reoffer);
	-- the plain ones, set-based
	PERFORM deadline_mark_missed(plain);
	done := plain;
	-- the live offers: all in one sub-transaction, set-based
	-- (deadline_reoffer_batch, 42_deadline_steps.sql); only when that one meets
	-- a deadlock or a lock timeout, again one sub-transaction each (more than
	-- 64 sub-transactions in one transaction overflow its snapshot cache and
	-- slow every other session's visibility checks)
	BEGIN
		PERFORM deadline_reoffer_batch(reoffer);
		done := done || reoffer;
	EXCEPTION WHEN deadlock_detected OR lock_not_available THEN
		FOR r IN SELECT d.id, d.assignment_id FROM deadlines d
		         WHERE d.id = ANY (reoffer) ORDER BY d.due_at, d.id LOOP
			BEGIN
				PERFORM deadline_miss_offer(r.id, r.assignment_id);
				done := done || r.id;
			EXCEPTION WHEN deadlock_detected OR lock_not_available THEN
				skipped := skipped + 1;
			END;
		END LOOP;
	END;
	-- Audit last: the chain head is the last lock a transaction takes, or a
	-- sweeper holding it would wait on workers other transactions hold while
	-- they wait for the head.
	PERFORM audit_write_each(sys, 'sweeper', 'deadline.missed', 'deadline', done::text[], 'ok');
	IF cardinality(ids) >= lim AND skipped = 0 THEN
		RETURN jsonb_build_object('processed', cardinality(done), 'skipped', 0,
		                          'next_due_at', NULL, 'next_due_in_ms', 0);
	END IF;
	RETURN deadline_sweep_result(cardinality(done), skipped);
END $$;

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

CREATE OR REPLACE FUNCTION api_deadline_list(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE sql AS $$
	SELECT list_page(p_who, p_request_id, p_args, 'deadline.list', ARRAY['supervisor'],
	                 'deadline', NULL, 'deadlines', 'deadline_json(x)', $f$
		(coalesce(($1->>'programme')::boolean, false) OR x.organisation_id::text = $1->>'org_id')
		AND x.state <> 'void'
		AND ($2->>'state' IS NULL OR x.state = $2->>'state')
		AND ($2->>'due_before' IS NULL OR x.due_at < ($2->>'due_before')::timestamptz)$f$)
$$;

-- A supervisor's audit scope: records about its organisation's assignments,
-- referrals touching them, or made by its organisation's people.
CREATE OR REPLACE FUNCTION audit_in_scope(l audit_log, p_who jsonb) RETURNS boolean
LANGUAGE sql STABLE AS $$
	-- The organisations of what the record is about and of who made it.
	SELECT coalesce((p_who->>'programme')::boolean, false) OR EXISTS (
		SELECT 1 FROM (
			SELECT a.organisation_id FROM assignments a
			WHERE l.object_type = 'assignment' AND a.id = try_uuid(l.object_id)
			UNION ALL SELECT a.organisation_id FROM assignments a
			WHERE l.object_type = 'referral' AND a.referral_id = try_uuid(l.object_id)
			UNION ALL SELECT d.organisation_id FROM deadlines d
			WHERE l.object_type = 'deadline' AND d.id = try_uuid(l.object_id)
			UNION ALL SELECT w.organisation_id FROM workers w
			WHERE l.actor_role = 'worker' AND w.id = try_uuid(l.actor_id)
			UNION ALL SELECT s.organisation_id FROM supervisors s
			WHERE l.actor_role = 'supervisor' AND s.id = try_uuid(l.actor_id)) o
		WHERE o.organisation_id::text = p_who->>'org_id')
$$;

-- GET /v1/audit, v2: newest first by id (the append order; unsealed records
-- are listed too, with seq null), and each item names its credential.
CREATE OR REPLACE FUNCTION audit_json(l audit_log) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object(
		'seq', l.seq, 'at', ts_us(l.at),
		'actor_role', l.actor_role, 'actor_id', l.actor_id, 'credential_id', l.credential_id,
		'action', l.action, 'object_type', l.object_type, 'object_id', l.object_id,
		'outcome', l.outcome, 'request_id', l.request_id)
$$;

CREATE OR REPLACE FUNCTION api_audit_list(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE sql AS $$
	SELECT list_page(p_who, p_request_id, p_args, 'audit.list', ARRAY['supervisor'],
	                 'audit', NULL, 'audit_log', 'audit_json(x)', $f$
		($2->>'from' IS NULL OR x.at >= ($2->>'from')::timestamptz)
		AND ($2->>'to' IS NULL OR x.at < ($2->>'to')::timestamptz)
		AND ($2->>'object' IS NULL OR x.object_id = $2->>'object')
		AND audit_in_scope(x, $1)$f$, true)
$$;

-- Outbox ------------------------------------------------------------------------
-- Claim up to p_limit due events for delivery. The claim commits at once and
-- leases each event for 60 s (next_attempt_at moves on, attempts counts up),
-- so a second daemon does not send it meanwhile; delivery happens outside any
-- transaction, then outbox_done() or outbox_retry(). A daemon dying mid-send
-- leaves the lease to run out: at-least-once. Each row comes with its target
-- webhooks (sealed secrets; the daemon opens them).
-- What an office's webhook may receive (protocol v1.1): the end of its
-- referral always; engagement events only while the client consents to
-- report-back. Asked at every claim, so a revocation also stops events
-- already queued (and their retries).
CREATE OR REPLACE FUNCTION outbox_office_may_receive(p_type text, p_payload jsonb) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT CASE
	WHEN p_type IN ('referral.withdrawn', 'referral.consent_revoked') THEN true
	WHEN p_type IN ('assignment.accepted', 'assignment.completed', 'assignment.failed',
	                'referral.closed') THEN
		coalesce((SELECT referral_office_report_back(r) FROM referrals r
		          WHERE r.id = try_uuid(p_payload->>'referral_id')), false)
	ELSE false END
$$;

CREATE OR REPLACE FUNCTION outbox_claim(p_limit integer) RETURNS SETOF jsonb
LANGUAGE plpgsql AS $$
BEGIN
	-- The consent check reads referrals, which row-level security hides
	-- from a connection without a context.
	PERFORM ctx_set(jsonb_build_object('role', 'system'), 'outbox');
	RETURN QUERY
	WITH due AS (
		SELECT id FROM outbox
		WHERE delivered_at IS NULL AND next_attempt_at <= now()
		ORDER BY next_attempt_at
		LIMIT greatest(coalesce(p_limit, 50), 1)
		FOR UPDATE SKIP LOCKED
	), claimed AS (
		UPDATE outbox o SET attempts = o.attempts + 1, next_attempt_at = now() + interval '60 seconds'
		FROM due WHERE o.id = due.id
		RETURNING o.*
	)
	SELECT jsonb_build_object('id', c.id, 'type', c.type, 'payload', c.payload,
		'created_at', ts(c.created_at), 'attempts', c.attempts,
		'webhooks', coalesce((SELECT jsonb_agg(jsonb_build_object('id', h.id, 'url', h.url,
		                                                          'secret_sealed', h.secret_sealed))
		                      FROM webhooks h
		                      WHERE h.active AND c.type = ANY (h.events)
		                        -- A webhook of nobody gets programme-wide
		                        -- events only, and only when marked so.
		                        AND ((h.programme AND c.organisation_id IS NULL
		                              AND c.office_id IS NULL)
		                             OR h.organisation_id = c.organisation_id
		                             OR (h.office_id = c.office_id
		                                 AND outbox_office_may_receive(c.type, c.payload)))), '[]'))
	FROM claimed c;
END $$;

-- PL/pgSQL, not SQL: a SQL function holding an UPDATE is never inlined, so
-- it was parsed and planned again for every message delivered (0.15-0.2 ms,
-- two messages per submission with both needs; issue 12).
CREATE OR REPLACE FUNCTION outbox_done(p_id uuid) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE outbox SET delivered_at = now(), last_error = NULL WHERE id = p_id;
END $$;

-- Exponential backoff: 2^attempts seconds, at most one hour.
CREATE OR REPLACE FUNCTION outbox_retry(p_id uuid, p_error text) RETURNS void
LANGUAGE sql AS $$
	UPDATE outbox SET last_error = left(p_error, 200),
	       next_attempt_at = now() + least(power(2, least(attempts, 12)) * interval '1 second',
	                                       interval '1 hour')
	WHERE id = p_id AND delivered_at IS NULL;
$$;

-- Retention: stored submission answers are needed only while a client may
-- still retry; the purge job drops older ones in small batches.
CREATE OR REPLACE FUNCTION idempotency_purge(p_older_than interval, p_limit integer DEFAULT 1000)
RETURNS integer LANGUAGE sql AS $$
	WITH gone AS (
		DELETE FROM idempotency_keys
		WHERE ctid IN (SELECT ctid FROM idempotency_keys
		               WHERE created_at < now() - p_older_than
		               ORDER BY created_at LIMIT greatest(p_limit, 1))
		RETURNING 1
	)
	SELECT count(*)::integer FROM gone
$$;
