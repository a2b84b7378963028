-- 03_audit.sql - the hash-chained, insert-only audit trail: ledger v2
-- (requests append unsealed records, one sealer chains them; the why is in
-- migration 0041_audit_ledger_v2.sql).
--
-- Owns: the triggers that stamp new records and refuse changes,
-- audit_write() and audit_write_each() (its batch form: the only ways the
-- runtime role appends), audit_seal() (the
-- sealer's statement), the canonical forms, audit_head() and
-- audit_head_publish() (signed heads), audit_authenticate_failed() and
-- audit_verify().
-- Must never: store client data (only roles, ids, action names, outcomes and
-- request ids), or let anyone but a superuser who disables the triggers alter
-- a record.
--
-- Canonical content of a v1 record (made before ledger v2; what the C
-- verifier must rebuild byte for byte): the fields joined with '|', in this
-- order,
--   seq | at as YYYY-MM-DDTHH:MM:SS.ffffffZ (UTC) | actor_role | actor_id |
--   action | object_type | object_id | outcome | request_id
-- with NULL as the empty string; hash = sha256(prev_hash || utf8(canonical)),
-- prev_hash of seq 1 is 32 zero bytes. audit_append_trg() below (the CHECKs
-- of migrations 0003 and 0041 until 0094) keeps '|' and control characters
-- out of every field so the encoding is unambiguous. A v2 record (version 2) hashes
--   v2|seq|at|actor_role|actor_id|credential_id|action|object_type|object_id|
--   outcome|request_id
-- (audit_canonical_v2_of below).


CREATE OR REPLACE FUNCTION audit_canonical(a audit_log) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT a.seq::text
		|| '|' || to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
		|| '|' || a.actor_role
		|| '|' || coalesce(a.actor_id, '')
		|| '|' || a.action
		|| '|' || coalesce(a.object_type, '')
		|| '|' || coalesce(a.object_id, '')
		|| '|' || a.outcome
		|| '|' || coalesce(a.request_id, '')
$$;

-- v1's chain-at-insert (under the head row's lock, trusting session
-- settings) is gone.
DROP TRIGGER IF EXISTS audit_chain ON audit_log;
DROP TRIGGER IF EXISTS audit_head ON audit_log;
DROP FUNCTION IF EXISTS audit_chain_trg();
DROP FUNCTION IF EXISTS audit_head_trg();

CREATE OR REPLACE FUNCTION audit_refuse_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE OR REPLACE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_trg();


-- Whatever an inserter passes, a new record is unsealed, of version 2,
-- stamped now and with its own transaction's id (the CHECKs
-- audit_log_sealed_whole, audit_log_unsealed_xid and audit_log_version_check
-- until migration 0095). Its fields keep the canonical form
-- unambiguous: no '|' or control character in any field it joins, each
-- within its bound, the outcome one of three; a field may be NULL (as a
-- CHECK would pass it). These were CHECK constraints until migration 0094:
-- PostgreSQL rebuilt their expressions from text for every INSERT statement,
-- a fifth of an audited read's CPU; here the plan is kept for the session.
-- The character rule is one match over the fields joined by a space (which
-- is neither '|' nor a control character, and concat_ws skips NULLs): a
-- field holds such a character exactly when the joined text does, and one
-- match instead of seven costs a fifth less (callgrind: 17,000 of the
-- checks' 82,000 instructions per record).
CREATE OR REPLACE FUNCTION audit_append_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT (concat_ws(' ', NEW.actor_role, NEW.actor_id, NEW.credential_id, NEW.action,
	                  NEW.object_type, NEW.object_id, NEW.request_id) !~ '[|[:cntrl:]]'
	        AND coalesce(length(NEW.actor_role) <= 32, true)
	        AND coalesce(length(NEW.actor_id) <= 64, true)
	        AND coalesce(length(NEW.credential_id) <= 80, true)
	        AND coalesce(length(NEW.action) <= 64, true)
	        AND coalesce(length(NEW.object_type) <= 32, true)
	        AND coalesce(length(NEW.object_id) <= 64, true)
	        AND coalesce(NEW.outcome IN ('ok', 'denied', 'error'), true)
	        AND coalesce(length(NEW.request_id) <= 64, true)) THEN
		RAISE EXCEPTION 'audit record refused: a field holds ''|'' or a control character, or is too long'
			USING ERRCODE = 'check_violation';
	END IF;
	NEW.seq := NULL;
	NEW.prev_hash := NULL;
	NEW.hash := NULL;
	NEW.sealed_at := NULL;
	NEW.version := 2;
	NEW.xid := pg_current_xact_id();
	NEW.at := clock_timestamp();
	RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER audit_append BEFORE INSERT ON audit_log
	FOR EACH ROW EXECUTE FUNCTION audit_append_trg();

-- The one change a record may see: being sealed, once, whole (seq,
-- prev_hash and hash together: the CHECK audit_log_sealed_whole until
-- migration 0095), content untouched.
-- A WHEN condition rather than a function body: checked per row without a
-- PL/pgSQL call, which the sealer's bulk UPDATE would pay a million times.
CREATE OR REPLACE TRIGGER audit_no_update BEFORE UPDATE ON audit_log
	FOR EACH ROW WHEN (OLD.seq IS NOT NULL OR NEW.seq IS NULL
	   OR NEW.prev_hash IS NULL OR NEW.hash IS NULL
	   OR (NEW.id, NEW.xid, NEW.version, NEW.at, NEW.actor_role, NEW.actor_id, NEW.credential_id,
	       NEW.action, NEW.object_type, NEW.object_id, NEW.outcome, NEW.request_id)
	      IS DISTINCT FROM
	      (OLD.id, OLD.xid, OLD.version, OLD.at, OLD.actor_role, OLD.actor_id, OLD.credential_id,
	       OLD.action, OLD.object_type, OLD.object_id, OLD.outcome, OLD.request_id))
	EXECUTE FUNCTION audit_refuse_trg();
CREATE OR REPLACE TRIGGER audit_no_delete BEFORE DELETE ON audit_log
	FOR EACH ROW EXECUTE FUNCTION audit_refuse_trg();

-- Field by field, so the sealer can use it in a set-based query (a simple
-- SQL function is inlined there) with the seq it is about to assign.
CREATE OR REPLACE FUNCTION audit_canonical_v2_of(p_seq bigint, p_at timestamptz, p_role text, p_actor text,
                                      p_cred text, p_action text, p_otype text, p_oid text,
                                      p_outcome text, p_req text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT 'v2|' || p_seq::text
		|| '|' || to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
		|| '|' || p_role
		|| '|' || coalesce(p_actor, '')
		|| '|' || coalesce(p_cred, '')
		|| '|' || p_action
		|| '|' || coalesce(p_otype, '')
		|| '|' || coalesce(p_oid, '')
		|| '|' || p_outcome
		|| '|' || coalesce(p_req, '')
$$;

CREATE OR REPLACE FUNCTION audit_canonical_v2(a audit_log) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT audit_canonical_v2_of(a.seq, a.at, a.actor_role, a.actor_id, a.credential_id, a.action,
	                             a.object_type, a.object_id, a.outcome, a.request_id)
$$;

CREATE OR REPLACE FUNCTION audit_record_hash(prev bytea, a audit_log) RETURNS bytea
LANGUAGE sql STABLE AS $$
	SELECT sha256(prev || convert_to(CASE WHEN a.version = 1 THEN audit_canonical(a)
	                                      ELSE audit_canonical_v2(a) END, 'UTF8'))
$$;

-- One audit record, appended unsealed. p_who is the principal ({"role",
-- "id", "credential_id"}). SECURITY DEFINER: the runtime role has no INSERT
-- on audit_log; this is its only way in, and it cannot choose seq, time,
-- hashes or the transaction id.
CREATE OR REPLACE FUNCTION audit_write(p_who jsonb, p_request_id text, p_action text,
                                       p_object_type text, p_object_id text, p_outcome text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
	-- PL/pgSQL keeps this INSERT's plan for the session; as a SQL function
	-- it was parsed and planned at every record (issue 12).
	INSERT INTO audit_log (at, actor_role, actor_id, credential_id, action, object_type,
	                       object_id, outcome, request_id)
	VALUES (clock_timestamp(), coalesce(p_who->>'role', 'system'), p_who->>'id',
	        left(p_who->>'credential_id', 80), p_action, p_object_type, p_object_id,
	        p_outcome, p_request_id);
END $$;

-- audit_write for many objects of one action in one statement (a sweep's
-- batch): one record each, in the array's order.
CREATE OR REPLACE FUNCTION audit_write_each(p_who jsonb, p_request_id text, p_action text,
                                            p_object_type text, p_object_ids text[], p_outcome text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
	INSERT INTO audit_log (at, actor_role, actor_id, credential_id, action, object_type,
	                       object_id, outcome, request_id)
	SELECT clock_timestamp(), coalesce(p_who->>'role', 'system'), p_who->>'id',
	       left(p_who->>'credential_id', 80), p_action, p_object_type, o.id, p_outcome,
	       p_request_id
	FROM unnest(p_object_ids) WITH ORDINALITY AS o(id, n)
	ORDER BY o.n;
END $$;

-- The sealer. Returns {"sealed": n, "head_seq": s, "more": bool} or
-- {"sealed": 0, "busy": true} when another sealer holds the lock.
CREATE OR REPLACE FUNCTION audit_seal(p_limit integer DEFAULT 5000) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
	-- First, before anything of ours can hold an xid: every transaction
	-- older than this has ended.
	horizon xid8 := pg_snapshot_xmin(pg_current_snapshot());
	lim integer := least(greatest(coalesce(p_limit, 5000), 1), 100000);
	s bigint;
	prev bytea;
	r record;
	ids bigint[] := '{}';
	seqs bigint[] := '{}';
	prevs bytea[] := '{}';
	hashes bytea[] := '{}';
	n integer := 0;
BEGIN
	IF NOT pg_try_advisory_xact_lock(1919247972, 1635083369) THEN
		RETURN jsonb_build_object('sealed', 0, 'busy', true);
	END IF;
	SELECT last_seq, last_hash INTO STRICT s, prev FROM audit_chain_head WHERE one FOR UPDATE;
	-- The canonical text is built by the query (set-based, with the seq
	-- each record is about to get); the loop only chains the hashes.
	FOR r IN SELECT x.id, s + row_number() OVER (ORDER BY x.xid, x.id) AS seq,
	                convert_to(audit_canonical_v2_of(s + row_number() OVER (ORDER BY x.xid, x.id),
	                    x.at, x.actor_role, x.actor_id, x.credential_id, x.action, x.object_type,
	                    x.object_id, x.outcome, x.request_id), 'UTF8') AS c
	         FROM (SELECT * FROM audit_log WHERE seq IS NULL AND xid < horizon
	               ORDER BY xid, id LIMIT lim) x
	         ORDER BY x.xid, x.id LOOP
		n := n + 1;
		ids[n] := r.id;
		seqs[n] := r.seq;
		prevs[n] := prev;
		prev := sha256(prev || r.c);
		hashes[n] := prev;
	END LOOP;
	s := s + n;
	IF n > 0 THEN
		UPDATE audit_log l SET seq = u.seq, prev_hash = u.prev, hash = u.hash,
		       sealed_at = clock_timestamp()
		FROM unnest(ids, seqs, prevs, hashes) AS u(id, seq, prev, hash)
		WHERE l.id = u.id;
		UPDATE audit_chain_head SET last_seq = s, last_hash = prev WHERE one;
	END IF;
	RETURN jsonb_build_object('sealed', n, 'head_seq', s, 'more', n = lim);
END $$;

-- The chain's latest sealed record: {"seq","hash","at"} (at as in the
-- canonical record; null for an empty chain).
CREATE OR REPLACE FUNCTION audit_head() RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
	SELECT jsonb_build_object('seq', h.last_seq, 'hash', encode(h.last_hash, 'hex'),
		'at', (SELECT to_char(l.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
		       FROM audit_log l WHERE l.seq = h.last_seq))
	FROM audit_chain_head h WHERE h.one
$$;

-- Queue the signed head p_head ({"seq","hash","at","key_id","signature"})
-- as an audit.head event for programme-wide webhooks, unless one went out
-- less than p_interval ago. Returns true when queued.
CREATE OR REPLACE FUNCTION audit_head_publish(p_head jsonb, p_interval interval) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
	last timestamptz;
BEGIN
	IF jsonb_typeof(p_head->'seq') IS DISTINCT FROM 'number'
	   OR coalesce(p_head->>'hash', '') !~ '^[0-9a-f]{64}$'
	   OR coalesce(p_head->>'signature', '') !~ '^[A-Za-z0-9+/]{86}==$'
	   OR coalesce(p_head->>'key_id', '') !~ '^[A-Za-z0-9._-]{1,64}$' THEN
		RAISE EXCEPTION 'malformed audit head' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM pg_advisory_xact_lock(1919247972, 1751474532);
	SELECT at INTO last FROM audit_head_published WHERE one;
	IF last IS NOT NULL AND last > now() - p_interval THEN
		RETURN false;
	END IF;
	INSERT INTO audit_head_published (one, at, seq) VALUES (true, now(), (p_head->>'seq')::bigint)
	ON CONFLICT (one) DO UPDATE SET at = EXCLUDED.at, seq = EXCLUDED.seq;
	INSERT INTO outbox (type, payload)
	VALUES ('audit.head', jsonb_build_object('seq', p_head->'seq', 'hash', p_head->'hash',
	        'at', p_head->'at', 'key_id', p_head->'key_id', 'signature', p_head->'signature'));
	RETURN true;
END $$;

-- A failed authentication (401): one `authenticate`/`denied` record with the
-- reason and, when it names one, the credential (a token id is never known
-- here; a certificate's fingerprint is). Never the secret: the C side sends
-- only {"reason", "credential_id"?, "address"?}.
CREATE OR REPLACE FUNCTION audit_authenticate_failed(p_request_id text, p_args jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM audit_write(jsonb_build_object('role', 'none',
	                    'credential_id', left(regexp_replace(coalesce(p_args->>'credential_id', ''),
	                                                         '[^0-9a-fA-F:cert]', '', 'g'), 80)),
	                    p_request_id, 'authenticate',
	                    'address', left(regexp_replace(coalesce(p_args->>'address', ''),
	                                                   '[^0-9a-fA-F:./]', '', 'g'), 64),
	                    'denied');
END $$;

-- The SQL-side verifier, v2 (the C verifier is the reference; this one
-- serves psql users). Sealed records only; reports the first bad one.
CREATE OR REPLACE FUNCTION audit_verify(p_from_seq bigint DEFAULT 1, p_limit integer DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
	a audit_log;
	expect_seq bigint := greatest(p_from_seq, 1);
	prev bytea;
	n bigint := 0;
BEGIN
	IF expect_seq = 1 THEN
		prev := decode(repeat('00', 32), 'hex');
	ELSE
		SELECT hash INTO prev FROM audit_log WHERE seq = expect_seq - 1;
		IF prev IS NULL THEN
			RETURN jsonb_build_object('checked', 0, 'first_bad_seq', expect_seq - 1,
			                          'reason', 'missing');
		END IF;
	END IF;
	FOR a IN SELECT * FROM audit_log WHERE seq >= expect_seq ORDER BY seq
	         LIMIT p_limit LOOP
		IF a.seq <> expect_seq THEN
			RETURN jsonb_build_object('checked', n, 'first_bad_seq', expect_seq,
			                          'reason', 'missing');
		END IF;
		IF a.prev_hash <> prev THEN
			RETURN jsonb_build_object('checked', n, 'first_bad_seq', a.seq,
			                          'reason', 'broken_link');
		END IF;
		IF a.hash <> audit_record_hash(prev, a) THEN
			RETURN jsonb_build_object('checked', n, 'first_bad_seq', a.seq,
			                          'reason', 'altered');
		END IF;
		prev := a.hash;
		expect_seq := expect_seq + 1;
		n := n + 1;
	END LOOP;
	IF p_limit IS NULL AND (SELECT last_seq FROM audit_chain_head) <> expect_seq - 1 THEN
		RETURN jsonb_build_object('checked', n, 'first_bad_seq', expect_seq,
		                          'reason', 'missing');
	END IF;
	RETURN jsonb_build_object('checked', n, 'first_bad_seq', NULL, 'reason', NULL);
END $$;

