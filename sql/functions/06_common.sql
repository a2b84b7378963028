-- 06_common.sql - authentication lookups and the helpers every api_
-- function shares: results, errors, times, cursors, JSON shapes.
--
-- Owns: auth_token(), auth_cert(), mint_admin_token(), api_result(),
-- api_error(), api_not_found() (404 + 'denied' audit), ts(), the list cursor,
-- and the assignment/referral JSON shapes per role.
-- Must never: put client data into an error, or return sealed fields to a
-- caller who may not see them.

-- STABLE, as to_char is: a SQL function declared IMMUTABLE over a STABLE
-- body is never inlined, and each call went through the SQL-function
-- executor (eight per assignment shown; issue 12). The same for the three
-- below (jsonb_build_object is STABLE).
CREATE OR REPLACE FUNCTION ts(t timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- The same with microseconds: the audit and history records' times.
CREATE OR REPLACE FUNCTION ts_us(t timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

CREATE OR REPLACE FUNCTION api_result(p_status integer, p_body jsonb, p_headers jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('status', p_status, 'body', p_body, 'headers', coalesce(p_headers, '{}'))
$$;

CREATE OR REPLACE FUNCTION api_error(p_status integer, p_code text, p_message text, p_field text DEFAULT NULL,
                          p_extra jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE sql STABLE AS $$
	SELECT api_result(p_status, jsonb_build_object('error',
		jsonb_strip_nulls(jsonb_build_object('code', p_code, 'message', p_message, 'field', p_field))
		|| p_extra))
$$;

-- The object is absent or outside the caller's scope: the same 404 either
-- way, and a 'denied' audit record that commits with it.
CREATE OR REPLACE FUNCTION api_not_found(p_who jsonb, p_request_id text, p_action text,
                              p_object_type text, p_object_id text)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
	PERFORM audit_write(p_who, p_request_id, p_action, p_object_type,
	                    left(regexp_replace(coalesce(p_object_id, ''), '[^0-9a-fA-F-]', '', 'g'), 64),
	                    'denied');
	RETURN api_error(404, 'not_found', 'no such ' || p_object_type);
END $$;

CREATE OR REPLACE FUNCTION api_forbidden(p_who jsonb, p_request_id text, p_action text) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM audit_write(p_who, p_request_id, p_action, NULL, NULL, 'denied');
	RETURN api_error(403, 'forbidden', 'this role may not do that');
END $$;

-- The end of every operation that succeeds: its 'ok' record, its answer.
CREATE OR REPLACE FUNCTION api_done(p_who jsonb, p_request_id text, p_action text,
                                    p_object_type text, p_object_id text, p_status integer,
                                    p_body jsonb, p_headers jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM audit_write(p_who, p_request_id, p_action, p_object_type, p_object_id, 'ok');
	RETURN api_result(p_status, p_body, p_headers);
END $$;

-- The router's refusal of a role that may never call a route (403): one
-- `denied` record, whatever the route (metrics included, which has no
-- function of its own). p_args: {"route", "method", "id"?}.
CREATE OR REPLACE FUNCTION audit_denied(p_who jsonb, p_request_id text, p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM ctx_set(p_who, p_request_id);
	PERFORM audit_write(p_who, p_request_id,
	                    left(regexp_replace(coalesce(p_args->>'route', 'unknown'), '[^a-z_.]', '', 'g'), 64),
	                    'route', left(regexp_replace(coalesce(p_args->>'id', ''), '[^0-9a-fA-F-]', '', 'g'), 64),
	                    'denied');
	RETURN api_error(403, 'forbidden', 'this role may not call this endpoint');
END $$;

-- A uuid from text, or NULL when malformed (treated as not found).
CREATE OR REPLACE FUNCTION try_uuid(p text) RETURNS uuid
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	RETURN p::uuid;
EXCEPTION WHEN invalid_text_representation THEN
	RETURN NULL;
END $$;

-- Whether p is one of the values of a value-set domain (0075_value_sets.sql,
-- the one list of each set); NULL is not.
CREATE OR REPLACE FUNCTION is_value_of(p text, p_domain regtype) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
	IF p IS NULL THEN
		RETURN false;
	END IF;
	EXECUTE format('SELECT $1::%s', p_domain) USING p;
	RETURN true;
EXCEPTION WHEN check_violation THEN
	RETURN false;
END $$;

-- List paging: newest first by (created_at, id). The cursor is base64url of
-- "<epoch microseconds>,<uuid>": opaque to callers, stable under inserts.
CREATE OR REPLACE FUNCTION cursor_encode(p_at timestamptz, p_id uuid) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT rtrim(translate(encode(convert_to(
		(extract(epoch FROM p_at) * 1000000)::bigint::text || ',' || p_id::text, 'UTF8'),
		'base64'), E'+/\n', '-_'), '=')
$$;

-- Returns (at, id) or raises RF400 for anything that is not our cursor.
CREATE OR REPLACE FUNCTION cursor_decode(p text, OUT at timestamptz, OUT id uuid)
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	s text;
	b text := translate(p, '-_', '+/');
BEGIN
	b := b || repeat('=', (4 - length(b) % 4) % 4);
	s := convert_from(decode(b, 'base64'), 'UTF8');
	at := timestamptz 'epoch' + split_part(s, ',', 1)::bigint * interval '1 microsecond';
	id := split_part(s, ',', 2)::uuid;
EXCEPTION WHEN OTHERS THEN
	RAISE EXCEPTION 'bad cursor' USING ERRCODE = 'RF400';
END $$;

-- The cursor of the lists paged by an append order (audit records, an
-- assignment's history): base64url of the row's bigint id.
CREATE OR REPLACE FUNCTION cursor_seq_encode(p bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT rtrim(translate(encode(convert_to(p::text, 'UTF8'), 'base64'), '+/', '-_'), '=')
$$;

CREATE OR REPLACE FUNCTION cursor_seq_decode(p text) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	RETURN convert_from(decode(translate(p, '-_', '+/') || repeat('=', (4 - length(p) % 4) % 4),
	                           'base64'), 'UTF8')::bigint;
EXCEPTION WHEN OTHERS THEN
	RAISE EXCEPTION 'bad cursor' USING ERRCODE = 'RF400';
END $$;

CREATE OR REPLACE FUNCTION api_limit(p_args jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
	SELECT least(greatest(coalesce((p_args->>'limit')::integer, 50), 1), 200)
$$;

-- The first step of every operation: the request context, then the roles it
-- serves; the 403 (a 'denied' record under its action) to return, or NULL.
-- 'programme' in p_roles admits a programme supervisor.
CREATE OR REPLACE FUNCTION api_check(p_who jsonb, p_request_id text, p_action text, p_roles text[])
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
	PERFORM ctx_set(p_who, p_request_id);
	IF NOT coalesce(p_who->>'role' = ANY (p_roles)
	                OR ('programme' = ANY (p_roles) AND p_who->>'role' = 'supervisor'
	                    AND (p_who->>'programme')::boolean), false) THEN
		RETURN api_forbidden(p_who, p_request_id, p_action);
	END IF;
	RETURN NULL;
END $$;

-- The steps every list takes before its query: api_check and the paging
-- cursor (400 invalid_cursor). err is the answer to return when not NULL;
-- at/id are the cursor's position, or seq with p_by_seq (a list in append
-- order); NULL: the first page.
DROP FUNCTION IF EXISTS list_start(jsonb, text, jsonb, text, text[]);
CREATE OR REPLACE FUNCTION list_start(p_who jsonb, p_request_id text, p_args jsonb, p_action text,
                                      p_roles text[], p_by_seq boolean DEFAULT false,
                                      OUT err jsonb, OUT at timestamptz, OUT id uuid,
                                      OUT seq bigint)
LANGUAGE plpgsql AS $$
BEGIN
	err := api_check(p_who, p_request_id, p_action, p_roles);
	IF err IS NOT NULL THEN
		RETURN;
	ELSIF p_by_seq THEN
		seq := cursor_seq_decode(p_args->>'cursor');
		RETURN;
	END IF;
	SELECT c.at, c.id INTO at, id FROM cursor_decode(p_args->>'cursor') c;
EXCEPTION WHEN SQLSTATE 'RF400' THEN
	err := api_error(400, 'invalid_cursor', 'cursor is not valid', '/cursor');
END $$;

-- The steps after it: p_page holds up to p_lim + 1 rows, newest first, each
-- {"c": its cursor, "j": its item}; the answer shows p_lim of them, "next"
-- the cursor of the last shown when there are more, and the read is audited.
CREATE OR REPLACE FUNCTION list_reply(p_who jsonb, p_request_id text, p_action text,
                                      p_object_type text, p_object_id text, p_page jsonb,
                                      p_lim integer)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	n integer := coalesce(jsonb_array_length(p_page), 0);
BEGIN
	PERFORM audit_write(p_who, p_request_id, p_action, p_object_type, p_object_id, 'ok');
	RETURN api_result(200, jsonb_build_object(
		'items', coalesce((SELECT jsonb_agg(p_page->i->'j' ORDER BY i)
		                   FROM generate_series(0, least(n, p_lim) - 1) i), '[]'),
		'next', CASE WHEN n > p_lim THEN p_page->(p_lim - 1)->>'c' END));
END $$;

-- A whole list paged newest first by (created_at, id), or by id alone with
-- p_by_seq (append order), for the roles p_roles: list_start, one page of
-- p_table, list_reply (audited as p_action on p_object_type, p_object_id).
-- p_filter is the list's condition on row x of p_table, p_item the item
-- shown for it; both are SQL text written in these files (never a caller's
-- input) and may use $1 (p_who) and $2 (p_args). One statement, planned
-- with the request's values.
CREATE OR REPLACE FUNCTION list_page(p_who jsonb, p_request_id text, p_args jsonb, p_action text,
                                     p_roles text[], p_object_type text, p_object_id text,
                                     p_table regclass, p_item text, p_filter text,
                                     p_by_seq boolean DEFAULT false)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	lim integer := api_limit(p_args);
	cur record;
	page jsonb;
	key text := CASE WHEN p_by_seq THEN '(x).id DESC' ELSE '(x).created_at DESC, (x).id DESC' END;
BEGIN
	cur := list_start(p_who, p_request_id, p_args, p_action, p_roles, p_by_seq);
	IF cur.err IS NOT NULL THEN
		RETURN cur.err;
	END IF;
	EXECUTE format($q$
		SELECT jsonb_agg(jsonb_build_object('c', %s, 'j', %s) ORDER BY %s)
		FROM (SELECT x FROM %s x WHERE (%s) AND %s ORDER BY %s LIMIT $6) s$q$,
		CASE WHEN p_by_seq THEN 'cursor_seq_encode((x).id)'
		     ELSE 'cursor_encode((x).created_at, (x).id)' END,
		p_item, key, p_table, p_filter,
		CASE WHEN p_by_seq THEN '($5::bigint IS NULL OR (x).id < $5)'
		     ELSE '($3::timestamptz IS NULL OR ((x).created_at, (x).id) < ($3, $4::uuid))' END,
		key)
	INTO page USING p_who, p_args, cur.at, cur.id, cur.seq, lim + 1;
	RETURN list_reply(p_who, p_request_id, p_action, p_object_type, p_object_id, page, lim);
END $$;

-- The first step of a periodic job's statement: the system actor (the
-- request id names the job) and a short lock wait, so that a row some
-- request holds is left for the next run. Returns the actor for the audit.
CREATE OR REPLACE FUNCTION job_begin(p_job text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	sys jsonb := jsonb_build_object('role', 'system');
BEGIN
	PERFORM ctx_set(sys, p_job);
	PERFORM set_config('lock_timeout', '1s', true);
	RETURN sys;
END $$;

-- The members p_fields of p_args that are present must be positive ISO 8601
-- durations (PT2S, P7D, ...): NULL when they are, else the 400 naming the
-- first that is not.
CREATE OR REPLACE FUNCTION durations_check(p_args jsonb, p_fields text[]) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	f text;
	iv interval;
BEGIN
	FOREACH f IN ARRAY p_fields LOOP
		CONTINUE WHEN p_args->>f IS NULL;
		BEGIN
			IF p_args->>f !~ '^P(?!$)([0-9]+Y)?([0-9]+M)?([0-9]+W)?([0-9]+D)?(T(?=[0-9])([0-9]+H)?([0-9]+M)?([0-9]+(\.[0-9]+)?S)?)?$' THEN
				RAISE invalid_datetime_format;
			END IF;
			iv := (p_args->>f)::interval;
			IF iv <= interval '0' THEN
				RAISE invalid_datetime_format;
			END IF;
		EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow
		               OR interval_field_overflow THEN
			RETURN api_error(400, 'invalid_field', 'not a positive ISO 8601 duration', '/' || f);
		END;
	END LOOP;
	RETURN NULL;
END $$;

-- PL/pgSQL: with its sub-select the SQL version was never inlined and was
-- planned again at every call (one per submission; issue 12).
CREATE OR REPLACE FUNCTION jsonb_text_array(p jsonb) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	IF p IS NULL OR jsonb_typeof(p) <> 'array' THEN
		RETURN NULL;
	END IF;
	RETURN ARRAY(SELECT jsonb_array_elements_text(p));
END $$;

-- ISO 8601 duration text of an interval (PT24H, P7D, PT2S).
-- The SET clause restores the caller's style when the function returns.
CREATE OR REPLACE FUNCTION iso_duration(p interval) RETURNS text
LANGUAGE plpgsql STABLE SET intervalstyle = 'iso_8601' AS $$
BEGIN
	RETURN p::text;
END $$;

-- Authentication --------------------------------------------------------------

-- Tokens are written only through these SECURITY DEFINER functions, each
-- taking an already keyed hash and its binding (the runtime role has no
-- direct write on tokens). Their rows: token_hash is HMAC-SHA256 of the token
-- under [security] token_key_file, binding the HMAC of hash, role, subject and
-- expiry under the same key, checked by the daemon at every authentication.

CREATE OR REPLACE FUNCTION token_insert(p_role text, p_subject uuid, p_hash text, p_binding text,
                             p_expires timestamptz, p_issued_by text, p_issued_by_role text)
RETURNS tokens LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
	INSERT INTO tokens (role, subject_id, token_hash, binding, expires_at, issued_by, issued_by_role)
	VALUES (p_role, p_subject, lower(p_hash), lower(p_binding), p_expires, p_issued_by,
	        p_issued_by_role)
	RETURNING *
$$;

CREATE OR REPLACE FUNCTION token_revoke_one(p_id uuid) RETURNS tokens
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
	UPDATE tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = p_id RETURNING *
$$;

CREATE OR REPLACE FUNCTION token_revoke_subject(p_subject uuid) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
	WITH r AS (UPDATE tokens SET revoked_at = now()
	           WHERE subject_id = p_subject AND revoked_at IS NULL RETURNING 1)
	SELECT count(*)::integer FROM r
$$;

-- A row another request is touching right now is left to it (SKIP LOCKED):
-- otherwise every request in flight with the token queued on its row lock
-- once a minute, each until the previous one's transaction ended (issue 12).
CREATE OR REPLACE FUNCTION token_touch(p_id uuid) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
	UPDATE tokens SET last_used_at = now()
	WHERE id = (SELECT t.id FROM tokens t
	            WHERE t.id = p_id AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute')
	            FOR UPDATE SKIP LOCKED)
$$;

-- Principal for a bearer token's keyed hash; NULL when unknown, expired,
-- revoked or its subject disabled (the daemon answers 401 without saying
-- which). The hash is looked up by index: comparing hashes of a 256-bit
-- secret leaks nothing usable. The stored hash and binding go back: the
-- daemon compares the hash with its own in constant time and recomputes the
-- binding (daemon/auth.c). last_used_at is written at most once a minute.
CREATE OR REPLACE FUNCTION auth_token(p_token_hash text) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
	t tokens;
	who jsonb;
BEGIN
	SELECT * INTO t FROM tokens
	WHERE token_hash = lower(p_token_hash) AND revoked_at IS NULL AND expires_at > now();
	IF t.id IS NULL THEN
		RETURN NULL;
	END IF;
	CASE t.role
	WHEN 'office' THEN
		SELECT jsonb_build_object('role', 'office', 'id', o.id, 'org_id', NULL, 'programme', false)
		INTO who FROM offices o WHERE o.id = t.subject_id AND o.active;
	WHEN 'worker' THEN
		SELECT jsonb_build_object('role', 'worker', 'id', w.id, 'org_id', w.organisation_id, 'programme', false)
		INTO who FROM workers w WHERE w.id = t.subject_id AND w.active;
	WHEN 'supervisor' THEN
		SELECT jsonb_build_object('role', 'supervisor', 'id', s.id, 'org_id', s.organisation_id,
		                          'programme', s.scope = 'programme')
		INTO who FROM supervisors s WHERE s.id = t.subject_id AND s.active;
	WHEN 'admin' THEN
		SELECT jsonb_build_object('role', 'admin', 'id', a.id, 'org_id', NULL, 'programme', false)
		INTO who FROM admins a WHERE a.id = t.subject_id;
	END CASE;
	IF who IS NULL THEN
		RETURN NULL;
	END IF;
	-- Most requests come within the minute: no UPDATE statement for them.
	IF t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute' THEN
		PERFORM token_touch(t.id);
	END IF;
	RETURN who || jsonb_build_object('token_id', t.id, 'token_hash', t.token_hash,
	                                 'binding', t.binding,
	                                 'expires_epoch', extract(epoch FROM t.expires_at)::bigint);
END $$;

CREATE OR REPLACE FUNCTION auth_cert(p_fingerprint text, p_subject text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('role', 'office', 'id', c.office_id, 'org_id', NULL,
	                          'programme', false, 'token_id', NULL)
	FROM office_certs c JOIN offices o ON o.id = c.office_id AND o.active
	WHERE (p_fingerprint IS NOT NULL AND c.fingerprint = lower(p_fingerprint))
	   OR (p_subject IS NOT NULL AND c.subject = p_subject)
	ORDER BY (c.fingerprint = lower(p_fingerprint)) DESC NULLS LAST
	LIMIT 1
$$;

-- The command-line bootstrap (as the schema owner; the runtime role may not):
-- admin_ensure gives the admin's id, which the token's binding names.
CREATE OR REPLACE FUNCTION admin_ensure(p_handle text) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
	aid uuid;
BEGIN
	INSERT INTO admins (handle) VALUES (p_handle) ON CONFLICT (handle) DO NOTHING;
	SELECT id INTO STRICT aid FROM admins WHERE handle = p_handle;
	RETURN aid;
END $$;

DROP FUNCTION IF EXISTS mint_admin_token(text, text, timestamptz);
CREATE OR REPLACE FUNCTION mint_admin_token(p_handle text, p_token_hash text, p_binding text,
                                 p_expires_epoch bigint)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	aid uuid := admin_ensure(p_handle);
	t tokens;
BEGIN
	PERFORM ctx_set(jsonb_build_object('role', 'admin', 'id', aid), 'cli');
	t := token_insert('admin', aid, p_token_hash, p_binding, to_timestamp(p_expires_epoch),
	                  'cli', 'cli');
	PERFORM audit_write(jsonb_build_object('role', 'admin', 'id', aid), 'cli',
	                    'token.mint', 'token', t.id::text, 'ok');
	RETURN jsonb_build_object('admin_id', aid, 'token_id', t.id, 'expires_at', ts(t.expires_at));
END $$;

-- JSON shapes -------------------------------------------------------------------

-- A sealed value as the daemon opens it: where it is bound, and the value
-- (the daemon's AEAD associated data is "v2|" kid "|" table "|" column "|"
-- row id; daemon/api_call.c opens only the pairs it expects).
CREATE OR REPLACE FUNCTION sealed_ref(p_table text, p_column text, p_row uuid, p_value text)
RETURNS jsonb LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN p_value IS NULL THEN NULL
	            ELSE jsonb_build_object('sealed', p_value, 'table', p_table,
	                                    'column', p_column, 'row', p_row) END
$$;

-- What an office sees (protocol v1.1): only what the client allowed it to
-- learn. Without report-back consent a referral's status is never derived
-- from its assignments: open until the office withdraws it or consent to
-- services is revoked (closed). With report-back the derived status.
CREATE OR REPLACE FUNCTION referral_office_report_back(r referrals) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT r.consent_report_back AND r.consent_revoked_at IS NULL
$$;

CREATE OR REPLACE FUNCTION referral_office_status(r referrals) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN r.status = 'withdrawn' THEN 'withdrawn'
	            WHEN r.consent_revoked_at IS NOT NULL THEN 'closed'
	            WHEN r.consent_report_back THEN r.status
	            ELSE 'open' END
$$;

CREATE OR REPLACE FUNCTION referral_consent_json(r referrals) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('services', r.consent_services,
	                          'report_back', r.consent_report_back,
	                          'obtained_at', ts(r.consent_obtained_at),
	                          'revoked_at', ts(r.consent_revoked_at),
	                          'report_back_revoked_at', ts(r.report_back_revoked_at))
$$;

-- An assignment of a referral as its office sees it: id and need; with
-- report-back also its progress (the outcome code, never a detail). Never
-- the worker.
CREATE OR REPLACE FUNCTION assignment_office_json(a assignments, p_report_back boolean) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('id', a.id, 'need', a.need)
	    || CASE WHEN p_report_back
	            THEN jsonb_build_object('status', a.status, 'accepted_at', ts(a.accepted_at),
	                                    'contact_made_at', ts(a.first_contact_at),
	                                    'ended_at', ts(a.ended_at), 'outcome', a.outcome)
	            ELSE '{}' END
$$;

-- The short assignment of a referral as a supervisor sees it.
CREATE OR REPLACE FUNCTION assignment_short_json(a assignments) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('id', a.id, 'need', a.need, 'status', a.status,
	                          'worker_id', a.worker_id, 'offer_expires_at', ts(a.offer_expires_at),
	                          'accepted_at', ts(a.accepted_at), 'ended_at', ts(a.ended_at),
	                          'contact_made_at', ts(a.first_contact_at), 'outcome', a.outcome)
$$;

-- The referral as its office sees it. Without report-back only the
-- assignments the submission made (one per need): a reassignment's new row
-- would tell the office that something happened. referral_office_json_of
-- shapes it from assignment rows the caller already holds (a submission's
-- reply); referral_office_json reads them.
CREATE OR REPLACE FUNCTION referral_office_json_of(r referrals, p_assignments assignments[])
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
	report_back boolean := referral_office_report_back(r);
BEGIN
	RETURN jsonb_build_object(
		'id', r.id, 'external_ref', r.external_ref,
		'external_ref_sealed', sealed_ref('referrals', 'external_ref', r.id, r.external_ref_sealed),
		'status', referral_office_status(r),
		'created_at', ts(r.created_at), 'withdrawn_at', ts(r.withdrawn_at),
		'needs', to_jsonb(r.needs), 'urgency', r.urgency, 'consent', referral_consent_json(r),
		'assignments', coalesce((
			SELECT jsonb_agg(assignment_office_json(a, report_back)
			                 ORDER BY a.created_at, a.need, a.id)
			FROM unnest(p_assignments) a
			WHERE a.referral_id = r.id AND (report_back OR a.replaces IS NULL)), '[]'));
END $$;

CREATE OR REPLACE FUNCTION referral_office_json(r referrals) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN referral_office_json_of(r, ARRAY(SELECT a FROM assignments a WHERE a.referral_id = r.id));
END $$;

-- The referral as a worker holding one of its assignments sees it (the
-- answer to its consent revocation): no case number, its own assignments.
CREATE OR REPLACE FUNCTION referral_worker_json(r referrals) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN jsonb_build_object(
		'id', r.id, 'status', r.status, 'created_at', ts(r.created_at),
		'withdrawn_at', ts(r.withdrawn_at), 'closed_at', ts(r.closed_at),
		'needs', to_jsonb(r.needs), 'urgency', r.urgency, 'consent', referral_consent_json(r),
		'assignments', coalesce((
			SELECT jsonb_agg(jsonb_build_object('id', a.id, 'need', a.need, 'status', a.status,
			                                    'reason', a.reason)
			                 ORDER BY a.created_at, a.need, a.id)
			FROM assignments a
			WHERE a.referral_id = r.id AND a.worker_id::text = current_setting('app.subject', true)),
			'[]'));
END $$;

-- The referral as a supervisor sees it, under the current row-level-security
-- scope (so it sees only its organisation's assignments of it): the worker
-- and the duplicate link included.
CREATE OR REPLACE FUNCTION referral_supervisor_json(r referrals) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN jsonb_build_object(
		'id', r.id, 'status', r.status, 'external_ref', r.external_ref,
		'external_ref_sealed', sealed_ref('referrals', 'external_ref', r.id, r.external_ref_sealed),
		'created_at', ts(r.created_at), 'updated_at', ts(r.updated_at),
		'duplicate_of', r.duplicate_of, 'urgency', r.urgency, 'needs', to_jsonb(r.needs),
		'withdrawn_at', ts(r.withdrawn_at), 'closed_at', ts(r.closed_at),
		'consent', referral_consent_json(r),
		'office_id', r.office_id, 'region', r.region, 'report_back', r.consent_report_back,
		'assignments', coalesce((SELECT jsonb_agg(assignment_short_json(a)
		                                          ORDER BY a.created_at, a.need, a.id)
		                         FROM assignments a WHERE a.referral_id = r.id), '[]'));
END $$;

-- A referral as the current caller's role may see it. These four are
-- PL/pgSQL: as SQL functions with sub-queries they were never inlined and
-- were planned again at every call (issue 12: every submission's reply).
DROP FUNCTION IF EXISTS assignment_short_json(assignments, boolean);
CREATE OR REPLACE FUNCTION referral_json(r referrals) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN CASE current_setting('app.role', true)
	       WHEN 'office' THEN referral_office_json(r)
	       WHEN 'worker' THEN referral_worker_json(r)
	       WHEN 'supervisor' THEN referral_supervisor_json(r)
	       ELSE jsonb_build_object('id', r.id) END;
END $$;

-- Is the assignment overdue (a missed deadline not yet resolved by acting)?
CREATE OR REPLACE FUNCTION assignment_overdue(p_id uuid) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
	-- PL/pgSQL: a SQL function with sub-queries is never inlined and was
	-- planned again at every call (issue 12).
	RETURN EXISTS (SELECT 1 FROM deadlines d WHERE d.assignment_id = p_id AND d.state = 'missed')
	    OR EXISTS (SELECT 1 FROM escalations e WHERE e.assignment_id = p_id AND e.resolved_at IS NULL);
END $$;


-- The full assignment. Client fields and sealed notes only for the worker
-- holding it once accepted; the caller audits that read (read_client_data).
CREATE OR REPLACE FUNCTION assignment_json(a assignments) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
	role text := current_setting('app.role', true);
	j jsonb;
	r referrals;
BEGIN
	j := jsonb_build_object(
		'id', a.id, 'referral_id', a.referral_id, 'need', a.need, 'status', a.status,
		'worker_id', a.worker_id, 'urgency', a.urgency, 'region', a.region,
		'languages', to_jsonb(a.languages), 'offer_expires_at', ts(a.offer_expires_at),
		'offered_at', ts(a.offered_at), 'accepted_at', ts(a.accepted_at),
		'first_contact_at', ts(a.first_contact_at), 'on_hold_at', ts(a.on_hold_at),
		'ended_at', ts(a.ended_at), 'outcome', a.outcome, 'reason', a.reason,
		'reason_sealed', sealed_ref('assignments', 'reason', a.id, a.reason_sealed),
		'created_at', ts(a.created_at), 'updated_at', ts(a.updated_at),
		'replaces', a.replaces, 'replaced_by', a.replaced_by,
		'overdue', assignment_overdue(a.id));
	IF role IN ('supervisor', 'system') THEN
		j := j || jsonb_build_object('match_reason', a.match_reason,
		                             'organisation_id', a.organisation_id);
	END IF;
	IF role = 'worker' AND a.worker_id::text = current_setting('app.subject', true)
	   AND a.status IN ('accepted', 'in_progress', 'on_hold') THEN
		SELECT * INTO r FROM referrals WHERE id = a.referral_id;
		j := j || jsonb_build_object(
			'client', jsonb_build_object('birth_year', r.birth_year, 'gender', r.gender,
			                             'languages', to_jsonb(r.languages), 'region', r.region,
			                             'contact_sealed', sealed_ref('referrals', 'contact', r.id, r.contact_sealed)),
			'note_sealed', sealed_ref('referrals', 'note', r.id, r.note_sealed));
	END IF;
	RETURN j;
END $$;

-- Does this shape carry client data (so the read must be audited)?
CREATE OR REPLACE FUNCTION assignment_shows_client(a assignments) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT current_setting('app.role', true) = 'worker'
	   AND a.worker_id::text = current_setting('app.subject', true)
	   AND a.status IN ('accepted', 'in_progress', 'on_hold')
$$;
