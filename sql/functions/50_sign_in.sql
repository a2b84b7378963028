-- 50_sign_in.sql - one-time sign-in codes, sign-in and sign-out for the web
-- pages (issue 14), and the supervisor's list of its workers.
--
-- Owns: subject_role(), api_sign_in_code_create(), sign_in_claim(), api_sign_in(),
-- api_sign_out(), api_me() and api_worker_list().
-- Must never: keep a code or a token in clear (the daemon passes only their
-- keyed hashes); let a supervisor issue a code for anyone but a worker of its
-- organisation; let a code be used twice or after expires_at; tell a caller
-- of api_sign_in() why a code did not work (unknown, used and expired read
-- the same).

-- The role of a subject id, or NULL when no such (active) subject exists.
CREATE OR REPLACE FUNCTION subject_role(p_id uuid) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE
		WHEN EXISTS (SELECT 1 FROM workers WHERE id = p_id AND active) THEN 'worker'
		WHEN EXISTS (SELECT 1 FROM supervisors WHERE id = p_id) THEN 'supervisor'
		WHEN EXISTS (SELECT 1 FROM offices WHERE id = p_id) THEN 'office'
		WHEN EXISTS (SELECT 1 FROM admins WHERE id = p_id) THEN 'admin'
	END
$$;

-- p_args: {"subject_id", "code_hash", "lifetime_s"}. A supervisor may issue a
-- code for a worker of its organisation (programme supervisors: any worker),
-- an admin for any subject. Anyone else, or a subject out of scope: 404, as
-- for a subject that does not exist.
CREATE OR REPLACE FUNCTION api_sign_in_code_create(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	sid uuid := try_uuid(p_args->>'subject_id');
	srole text;
	c sign_in_codes;
	ok boolean;
	err jsonb := api_check(p_who, p_request_id, 'sign_in_code.create', ARRAY['supervisor', 'admin']);
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	srole := subject_role(sid);
	ok := CASE p_who->>'role'
		WHEN 'admin' THEN srole IS NOT NULL
		WHEN 'supervisor' THEN srole = 'worker' AND (
			coalesce((p_who->>'programme')::boolean, false)
			OR EXISTS (SELECT 1 FROM workers w WHERE w.id = sid
			           AND w.organisation_id::text = p_who->>'org_id'))
		ELSE false END;
	IF NOT coalesce(ok, false) THEN
		RETURN api_not_found(p_who, p_request_id, 'sign_in_code.create', 'subject',
		                     p_args->>'subject_id');
	END IF;
	INSERT INTO sign_in_codes (role, subject_id, code_hash, issued_by_role, issued_by, expires_at)
	VALUES (srole, sid, lower(p_args->>'code_hash'), p_who->>'role', (p_who->>'id')::uuid,
	        now() + make_interval(secs => (p_args->>'lifetime_s')::double precision))
	RETURNING * INTO c;
	RETURN api_done(p_who, p_request_id, 'sign_in_code.create', 'sign_in_code', c.id::text, 201,
		jsonb_build_object('id', c.id, 'subject_id', c.subject_id, 'role', c.role,
		                   'expires_at', ts(c.expires_at)));
END $$;

-- Sign-in, step 1 (daemon/api_sign_in.c tells why two): p_args {"code_hash"}.
-- Spends the code (row lock: of two sign-ins racing with one code, one
-- wins): {"claimed": true, "code_id", "role", "subject_id"}. A code that is
-- unknown, spent, expired or whose subject is gone: {"claimed": false},
-- nothing changed; the daemon treats it as any failed authentication
-- (counted against the address, audited 'authenticate'/'denied', 401).
CREATE OR REPLACE FUNCTION sign_in_claim(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c sign_in_codes;
BEGIN
	PERFORM ctx_set(p_who, p_request_id);
	SELECT * INTO c FROM sign_in_codes
	WHERE code_hash = lower(p_args->>'code_hash') AND used_at IS NULL AND expires_at > now()
	FOR UPDATE;
	IF c.id IS NULL OR subject_role(c.subject_id) IS DISTINCT FROM c.role THEN
		RETURN api_result(200, jsonb_build_object('claimed', false));
	END IF;
	UPDATE sign_in_codes SET used_at = now() WHERE id = c.id;
	RETURN api_result(200, jsonb_build_object('claimed', true, 'code_id', c.id, 'role', c.role,
	                                          'subject_id', c.subject_id));
END $$;

-- Sign-in, step 2: p_args {"code_id", "role", "subject_id", "token_hash",
-- "binding", "expires_epoch"} for a code step 1 spent (and not yet turned
-- into a token): the token row, linked from the code, audited as 'sign_in'.
CREATE OR REPLACE FUNCTION api_sign_in(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c sign_in_codes;
	t tokens;
BEGIN
	PERFORM ctx_set(p_who, p_request_id);
	SELECT * INTO c FROM sign_in_codes
	WHERE id = try_uuid(p_args->>'code_id') AND used_at IS NOT NULL AND token_id IS NULL
	  AND role = p_args->>'role' AND subject_id = try_uuid(p_args->>'subject_id')
	FOR UPDATE;
	IF c.id IS NULL THEN
		RETURN api_error(409, 'conflict', 'the sign-in code was already used');
	END IF;
	t := token_insert(c.role, c.subject_id, p_args->>'token_hash', p_args->>'binding',
	                  to_timestamp((p_args->>'expires_epoch')::bigint), c.issued_by::text,
	                  c.issued_by_role);
	UPDATE sign_in_codes SET token_id = t.id WHERE id = c.id;
	PERFORM audit_write(jsonb_build_object('role', c.role, 'id', c.subject_id, 'credential_id', t.id),
	                    p_request_id, 'sign_in', 'token', t.id::text, 'ok');
	RETURN api_result(200, jsonb_build_object('role', t.role, 'subject_id', t.subject_id,
	                                          'expires_at', ts(t.expires_at)));
END $$;

-- Revokes the token the request was made with (p_who.token_id).
CREATE OR REPLACE FUNCTION api_sign_out(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	tid uuid := try_uuid(p_who->>'token_id');
BEGIN
	PERFORM ctx_set(p_who, p_request_id);
	IF tid IS NULL THEN
		RETURN api_error(400, 'no_token', 'sign-out revokes a bearer token; this request has none');
	END IF;
	PERFORM token_revoke_one(tid);
	RETURN api_done(p_who, p_request_id, 'sign_out', 'token', tid::text, 204, NULL);
END $$;

-- A supervisor's workers (programme supervisors and admins: all), by handle.
-- No client data: ids, handles, kinds, regions, languages and load.
CREATE OR REPLACE FUNCTION api_worker_list(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	items jsonb;
	prog boolean := coalesce((p_who->>'programme')::boolean, false) OR p_who->>'role' = 'admin';
	err jsonb := api_check(p_who, p_request_id, 'worker.list', ARRAY['supervisor', 'admin']);
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	SELECT coalesce(jsonb_agg(jsonb_build_object(
		'id', w.id, 'organisation_id', w.organisation_id, 'handle', w.handle, 'kind', w.kind,
		'regions', to_jsonb(w.regions), 'languages', to_jsonb(w.languages),
		'capacity', w.capacity, 'open', w.open_count, 'on_leave', w.on_leave, 'active', w.active)
		ORDER BY w.handle), '[]')
	INTO items
	FROM workers w
	WHERE (prog OR w.organisation_id::text = p_who->>'org_id')
	  AND (p_args->>'organisation_id' IS NULL
	       OR w.organisation_id::text = p_args->>'organisation_id');
	RETURN api_done(p_who, p_request_id, 'worker.list', 'worker', NULL, 200,
	                jsonb_build_object('items', items));
END $$;

-- Who the credential of this request is: role, subject, organisation, its
-- handle (a probation office: its name) and when the token expires (null for
-- a certificate). No client data.
CREATE OR REPLACE FUNCTION api_me(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	sid uuid := try_uuid(p_who->>'id');
	exp timestamptz;
	h text;
BEGIN
	PERFORM ctx_set(p_who, p_request_id);
	SELECT expires_at INTO exp FROM tokens WHERE id = try_uuid(p_who->>'token_id');
	h := CASE p_who->>'role'
		WHEN 'worker' THEN (SELECT handle FROM workers WHERE id = sid)
		WHEN 'supervisor' THEN (SELECT handle FROM supervisors WHERE id = sid)
		WHEN 'admin' THEN (SELECT handle FROM admins WHERE id = sid)
		WHEN 'office' THEN (SELECT name FROM offices WHERE id = sid)
	END;
	RETURN api_result(200, jsonb_build_object(
		'role', p_who->>'role', 'subject_id', sid, 'organisation_id', try_uuid(p_who->>'org_id'),
		'programme', coalesce((p_who->>'programme')::boolean, false),
		'handle', h, 'expires_at', ts(exp)));
END $$;
