-- 0041_audit_ledger_v2.sql - the audit ledger v2: append unsealed, seal later.
--
-- Owns: the v2 columns of audit_log (id, xid, credential_id, version,
-- sealed_at), audit_write() as the only way the runtime role appends,
-- audit_seal() (the sealer's one statement), audit_canonical_v2(), the
-- chain head's reading (audit_head) and publishing (audit_head_publish),
-- audit_authenticate_failed(), and the v2 audit_verify() / api_audit_list().
-- Must never: read anything a session can set (no current_setting) to decide a
-- sequence number or a hash; give the runtime role a write on audit_log or
-- audit_chain_head other than through these SECURITY DEFINER functions.
--
-- Why v2. v1 chained every record at insert time under one chain-head row
-- lock and kept the running seq/hash in session settings, which the runtime
-- role could set itself (it moved the head and made --verify-audit report a
-- "removed" record that never was) and which serialised every auditing
-- transaction. v2:
--   1. A request's transaction appends its records unsealed (seq, prev_hash,
--      hash NULL) through audit_write(), SECURITY DEFINER, with no lock on
--      any shared row. Each record carries its top-level transaction id
--      (xid, pg_current_xact_id(), set by the trigger below whatever the
--      caller passes).
--   2. One sealer at a time (pg_try_advisory_xact_lock; a periodic job of
--      every daemon, the others skip) runs audit_seal(): it reads the
--      snapshot's xmin horizon H = pg_snapshot_xmin(pg_current_snapshot())
--      first; every transaction with xid < H has ended, so no record with
--      xid < H can appear any more. It seals exactly those, ordered by
--      (xid, id), continuing the chain from the head. Records of
--      transactions still running (or younger than the oldest running one)
--      wait for a later run. Because each run seals everything below a
--      horizon that never moves backwards, the (xid, id) order of all sealed
--      records is one total order: no later record can ever be sealed in
--      front of an earlier seal (no fork), seq is dense (it is assigned in
--      the sealer's own transaction; a sealer that dies rolls back whole)
--      and a rolled-back request leaves no record to seal (no gap).
--   3. A sealed record never changes (the update trigger allows only the
--      one transition unsealed -> sealed, without touching content).
-- The price: a record is chained a little after its commit (the sealing
-- lag), and one long-running transaction anywhere in the cluster holds the
-- horizon back; --verify-audit reports unsealed records older than
-- [audit] max_unsealed_age.
--
-- Canonical content of a v2 record (what the C verifier rebuilds):
--   v2|seq|at|actor_role|actor_id|credential_id|action|object_type|object_id|
--   outcome|request_id
-- at as YYYY-MM-DDTHH:MM:SS.ffffffZ (UTC), NULL as the empty string;
-- hash = sha256(prev_hash || utf8(canonical)). v1 records (version 1, made
-- before this migration) keep their v1 form (0003_audit.sql).

ALTER TABLE audit_log
	ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY,
	ADD COLUMN xid xid8,
	ADD COLUMN credential_id text
		CHECK (credential_id !~ '[|[:cntrl:]]' AND length(credential_id) <= 80),
	ADD COLUMN version smallint NOT NULL DEFAULT 1 CHECK (version IN (1, 2)),
	ADD COLUMN sealed_at timestamptz;
ALTER TABLE audit_log ALTER COLUMN version SET DEFAULT 2;
ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey;
ALTER TABLE audit_log ALTER COLUMN seq DROP NOT NULL,
	ALTER COLUMN prev_hash DROP NOT NULL,
	ALTER COLUMN hash DROP NOT NULL;
ALTER TABLE audit_log ADD PRIMARY KEY (id);
CREATE UNIQUE INDEX audit_log_seq ON audit_log (seq);
CREATE INDEX audit_log_unsealed ON audit_log (xid, id) WHERE seq IS NULL;
ALTER TABLE audit_log
	ADD CONSTRAINT audit_log_sealed_whole
		CHECK ((seq IS NULL) = (hash IS NULL) AND (seq IS NULL) = (prev_hash IS NULL)),
	ADD CONSTRAINT audit_log_unsealed_xid CHECK (seq IS NOT NULL OR xid IS NOT NULL);

DROP TRIGGER audit_chain ON audit_log;
DROP TRIGGER audit_head ON audit_log;
DROP TRIGGER audit_no_update ON audit_log;
DROP FUNCTION audit_chain_trg();
DROP FUNCTION audit_head_trg();

-- Whatever an inserter passes, a new record is unsealed, stamped now and
-- with its own transaction's id.
CREATE FUNCTION audit_append_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	NEW.seq := NULL;
	NEW.prev_hash := NULL;
	NEW.hash := NULL;
	NEW.sealed_at := NULL;
	NEW.version := 2;
	NEW.xid := pg_current_xact_id();
	NEW.at := clock_timestamp();
	RETURN NEW;
END $$;
CREATE TRIGGER audit_append BEFORE INSERT ON audit_log
	FOR EACH ROW EXECUTE FUNCTION audit_append_trg();

-- The one change a record may see: being sealed, once, content untouched.
-- A WHEN condition rather than a function body: checked per row without a
-- PL/pgSQL call, which the sealer's bulk UPDATE would pay a million times.
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_log
	FOR EACH ROW WHEN (OLD.seq IS NOT NULL OR NEW.seq IS NULL
	   OR (NEW.id, NEW.xid, NEW.version, NEW.at, NEW.actor_role, NEW.actor_id, NEW.credential_id,
	       NEW.action, NEW.object_type, NEW.object_id, NEW.outcome, NEW.request_id)
	      IS DISTINCT FROM
	      (OLD.id, OLD.xid, OLD.version, OLD.at, OLD.actor_role, OLD.actor_id, OLD.credential_id,
	       OLD.action, OLD.object_type, OLD.object_id, OLD.outcome, OLD.request_id))
	EXECUTE FUNCTION audit_refuse_trg();
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_log
	FOR EACH ROW EXECUTE FUNCTION audit_refuse_trg();

-- Field by field, so the sealer can use it in a set-based query (a simple
-- SQL function is inlined there) with the seq it is about to assign.
CREATE FUNCTION audit_canonical_v2_of(p_seq bigint, p_at timestamptz, p_role text, p_actor text,
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

CREATE FUNCTION audit_canonical_v2(a audit_log) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT audit_canonical_v2_of(a.seq, a.at, a.actor_role, a.actor_id, a.credential_id, a.action,
	                             a.object_type, a.object_id, a.outcome, a.request_id)
$$;

CREATE FUNCTION audit_record_hash(prev bytea, a audit_log) RETURNS bytea
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
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
	INSERT INTO audit_log (at, actor_role, actor_id, credential_id, action, object_type,
	                       object_id, outcome, request_id)
	VALUES (clock_timestamp(), coalesce(p_who->>'role', 'system'), p_who->>'id',
	        left(p_who->>'credential_id', 80), p_action, p_object_type, p_object_id,
	        p_outcome, p_request_id)
$$;

-- The sealer. Returns {"sealed": n, "head_seq": s, "more": bool} or
-- {"sealed": 0, "busy": true} when another sealer holds the lock.
CREATE FUNCTION audit_seal(p_limit integer DEFAULT 5000) RETURNS jsonb
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
CREATE FUNCTION audit_head() RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
	SELECT jsonb_build_object('seq', h.last_seq, 'hash', encode(h.last_hash, 'hex'),
		'at', (SELECT to_char(l.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
		       FROM audit_log l WHERE l.seq = h.last_seq))
	FROM audit_chain_head h WHERE h.one
$$;

-- When the head was last published, so several daemons publish one
-- audit.head per interval between them.
CREATE TABLE audit_head_published (
	one  boolean PRIMARY KEY DEFAULT true CHECK (one),
	at   timestamptz NOT NULL,
	seq  bigint NOT NULL
);

-- Queue the signed head p_head ({"seq","hash","at","key_id","signature"})
-- as an audit.head event for programme-wide webhooks, unless one went out
-- less than p_interval ago. Returns true when queued.
CREATE FUNCTION audit_head_publish(p_head jsonb, p_interval interval) RETURNS boolean
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
CREATE FUNCTION audit_authenticate_failed(p_request_id text, p_args jsonb) RETURNS void
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

-- GET /v1/audit, v2: newest first by id (the append order; unsealed records
-- are listed too, with seq null), and each item names its credential.
CREATE OR REPLACE FUNCTION api_audit_list(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	lim integer := api_limit(p_args);
	before bigint;
	page audit_log[];
	n integer;
BEGIN
	PERFORM ctx_set(p_who, p_request_id);
	IF p_who->>'role' IS DISTINCT FROM 'supervisor' THEN
		RETURN api_forbidden(p_who, p_request_id, 'audit.list');
	END IF;
	IF p_args->>'cursor' IS NOT NULL THEN
		BEGIN
			before := convert_from(decode(translate(p_args->>'cursor', '-_', '+/')
				|| repeat('=', (4 - length(p_args->>'cursor') % 4) % 4), 'base64'), 'UTF8')::bigint;
		EXCEPTION WHEN OTHERS THEN
			RETURN api_error(400, 'invalid_cursor', 'cursor is not valid', '/cursor');
		END;
	END IF;
	SELECT array_agg(x ORDER BY x.id DESC) INTO page FROM (
		SELECT l.* FROM audit_log l
		WHERE (before IS NULL OR l.id < before)
		  AND (p_args->>'from' IS NULL OR l.at >= (p_args->>'from')::timestamptz)
		  AND (p_args->>'to' IS NULL OR l.at < (p_args->>'to')::timestamptz)
		  AND (p_args->>'object' IS NULL OR l.object_id = p_args->>'object')
		  AND audit_in_scope(l, p_who)
		ORDER BY l.id DESC
		LIMIT lim + 1) x;
	n := coalesce(cardinality(page), 0);
	PERFORM audit_write(p_who, p_request_id, 'audit.list', 'audit', NULL, 'ok');
	RETURN api_result(200, jsonb_build_object(
		'items', coalesce((SELECT jsonb_agg(jsonb_build_object(
			'seq', page[i].seq, 'at', to_char(page[i].at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
			'actor_role', page[i].actor_role, 'actor_id', page[i].actor_id,
			'credential_id', page[i].credential_id,
			'action', page[i].action, 'object_type', page[i].object_type,
			'object_id', page[i].object_id, 'outcome', page[i].outcome,
			'request_id', page[i].request_id) ORDER BY i)
			FROM generate_series(1, least(n, lim)) i), '[]'),
		'next', CASE WHEN n > lim THEN rtrim(translate(encode(convert_to(page[lim].id::text, 'UTF8'),
		                                                       'base64'), '+/', '-_'), '=') END));
END $$;

-- Least privilege for v2: no direct INSERT any more (audit_write is the way
-- in), nothing on the head tables; the new functions are callable.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'referrald_app') THEN
		RETURN;
	END IF;
	EXECUTE 'REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_log FROM referrald_app';
	EXECUTE 'REVOKE ALL ON audit_head_published FROM referrald_app';
	EXECUTE 'GRANT EXECUTE ON FUNCTION audit_seal(integer), audit_head(),
	         audit_head_publish(jsonb, interval), audit_authenticate_failed(text, jsonb),
	         audit_canonical_v2(audit_log), audit_record_hash(bytea, audit_log),
	         audit_canonical_v2_of(bigint, timestamptz, text, text, text, text, text, text, text, text)
	         TO referrald_app';
END $$;
