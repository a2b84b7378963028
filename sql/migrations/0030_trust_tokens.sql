-- 0030_trust_tokens.sql - trust boundaries (issue 9, findings 1, 2, 6-10):
-- keyed and bound token rows, sealed values bound to their rows, every
-- free-text field sealed, credentials that can be listed and stopped,
-- webhooks that cannot reach the inside, events that cannot be backdated.
--
-- Owns: tokens.binding/issued_by, offices.active, supervisors.active,
-- webhooks.programme, the *_sealed free-text columns, sealed_ref(), the
-- SECURITY DEFINER token writers (token_insert, token_revoke_*), the
-- credential operations (api_token_list, api_token_revoke_subject,
-- api_office_patch, api_supervisor_patch, api_office_certificate_delete),
-- and new versions of the functions these change.
-- Must never: give the runtime role a direct write on tokens; return a
-- sealed value without naming the row, column and table it is bound to; keep
-- a worker's reason where the next worker offered the assignment can see it.
--
-- Token rows: token_hash is HMAC-SHA256 of the token under the daemon's
-- token key file (never in the database), and binding is HMAC under the same
-- key of "bind|v1|" token_hash "|" role "|" subject_id "|" expires (Unix
-- seconds), checked by the daemon at every authentication. So a row inserted
-- or altered (role, subject, expiry) by someone holding the database but not
-- the key file never authenticates. Rows from before this migration have no
-- binding and stop authenticating (mint new tokens; nothing has shipped).
--
-- Sealed values: the daemon seals each with AES-256-GCM whose associated
-- data is "v2|" kid "|" table "|" column "|" row id, so the functions here
-- hand every sealed value out as sealed_ref(table, column, row, value) and
-- the daemon opens it only at that place (daemon/api_call.c open_rules).

-- Schema ------------------------------------------------------------------------

ALTER TABLE tokens ADD COLUMN binding text CHECK (binding ~ '^[0-9a-f]{64}$'),
                   ADD COLUMN issued_by text,
                   ADD COLUMN issued_by_role text;
COMMENT ON COLUMN tokens.token_hash IS 'HMAC-SHA256 of the token under [security] token_key_file';
COMMENT ON COLUMN tokens.binding IS 'HMAC of hash, role, subject and expiry under the token key';
ALTER TABLE offices ADD COLUMN active boolean NOT NULL DEFAULT true;
ALTER TABLE supervisors ADD COLUMN active boolean NOT NULL DEFAULT true;
ALTER TABLE webhooks ADD COLUMN programme boolean NOT NULL DEFAULT false;
ALTER TABLE webhooks ADD CHECK (NOT programme OR (organisation_id IS NULL AND office_id IS NULL));
-- Free text about a client's case is sealed like the note; the clear
-- columns go. assignments.reason stays for system codes only
-- (referral_withdrawn, a fail reason code).
ALTER TABLE referrals DROP COLUMN withdrawn_reason;
ALTER TABLE referrals ADD COLUMN withdrawn_reason_sealed text;
ALTER TABLE assignments ADD COLUMN reason_sealed text;
ALTER TABLE assignment_events DROP COLUMN outcome;
ALTER TABLE assignment_events ADD COLUMN outcome_sealed text;
-- A decline reason is kept with the assignment only until it is offered
-- again (offer_make clears it); offers keep codes, never free text.
UPDATE offers SET reason = NULL WHERE outcome = 'declined';

-- A sealed value as the daemon opens it: where it is bound, and the value.
CREATE FUNCTION sealed_ref(p_table text, p_column text, p_row uuid, p_value text)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN p_value IS NULL THEN NULL
	            ELSE jsonb_build_object('sealed', p_value, 'table', p_table,
	                                    'column', p_column, 'row', p_row) END
$$;

-- Tokens ------------------------------------------------------------------------
-- The runtime role writes tokens only through these SECURITY DEFINER
-- functions, each taking an already keyed hash (and its binding).

CREATE FUNCTION token_insert(p_role text, p_subject uuid, p_hash text, p_binding text,
                             p_expires timestamptz, p_issued_by text, p_issued_by_role text)
RETURNS tokens LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
	INSERT INTO tokens (role, subject_id, token_hash, binding, expires_at, issued_by, issued_by_role)
	VALUES (p_role, p_subject, lower(p_hash), lower(p_binding), p_expires, p_issued_by,
	        p_issued_by_role)
	RETURNING *
$$;

CREATE FUNCTION token_revoke_one(p_id uuid) RETURNS tokens
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
	UPDATE tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = p_id RETURNING *
$$;

CREATE FUNCTION token_revoke_subject(p_subject uuid) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
	WITH r AS (UPDATE tokens SET revoked_at = now()
	           WHERE subject_id = p_subject AND revoked_at IS NULL RETURNING 1)
	SELECT count(*)::integer FROM r
$$;

CREATE FUNCTION token_touch(p_id uuid) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
	UPDATE tokens SET last_used_at = now()
	WHERE id = p_id AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
$$;

-- Principal for a token's keyed hash; NULL when unknown, expired, revoked or
-- its subject is disabled. The daemon then checks hash and binding itself.
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
	PERFORM token_touch(t.id);
	RETURN who || jsonb_build_object('token_id', t.id, 'token_hash', t.token_hash,
	                                 'binding', t.binding,
	                                 'expires_epoch', extract(epoch FROM t.expires_at)::bigint);
END $$;

-- A certificate of a disabled office authenticates nobody.
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
CREATE FUNCTION admin_ensure(p_handle text) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
	aid uuid;
BEGIN
	INSERT INTO admins (handle) VALUES (p_handle) ON CONFLICT (handle) DO NOTHING;
	SELECT id INTO STRICT aid FROM admins WHERE handle = p_handle;
	RETURN aid;
END $$;

DROP FUNCTION mint_admin_token(text, text, timestamptz);
CREATE FUNCTION mint_admin_token(p_handle text, p_token_hash text, p_binding text,
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

CREATE OR REPLACE FUNCTION token_json(t tokens) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object('id', t.id, 'role', t.role, 'subject_id', t.subject_id,
		'expires_at', ts(t.expires_at), 'created_at', ts(t.created_at),
		'revoked_at', ts(t.revoked_at), 'last_used_at', ts(t.last_used_at),
		'issued_by', t.issued_by)
$$;
CREATE OR REPLACE FUNCTION api_token_create(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	err jsonb := admin_check(p_who, p_request_id, 'token.create');
	t tokens;
	sid uuid := try_uuid(p_args->>'subject_id');
	ok boolean;
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	ok := CASE p_args->>'role'
		WHEN 'office' THEN EXISTS (SELECT 1 FROM offices WHERE id = sid)
		WHEN 'worker' THEN EXISTS (SELECT 1 FROM workers WHERE id = sid)
		WHEN 'supervisor' THEN EXISTS (SELECT 1 FROM supervisors WHERE id = sid)
		WHEN 'admin' THEN EXISTS (SELECT 1 FROM admins WHERE id = sid)
		ELSE false END;
	IF NOT ok THEN
		RETURN api_error(400, 'invalid_field', 'no such subject for this role', '/subject_id');
	END IF;
	IF (p_args->>'expires_at')::timestamptz <= now() THEN
		RETURN api_error(400, 'invalid_field', 'expires_at must be in the future', '/expires_at');
	END IF;
	-- [security] max_token_lifetime, on the database's clock.
	IF (p_args->>'expires_at')::timestamptz
	   > now() + coalesce((p_args->>'max_lifetime_ms')::bigint * interval '1 millisecond',
	                      interval '90 days') THEN
		RETURN api_error(422, 'invalid_value',
		                 'expires_at is further ahead than the longest token lifetime allowed',
		                 '/expires_at');
	END IF;
	t := token_insert(p_args->>'role', sid, p_args->>'token_hash', p_args->>'binding',
	                  coalesce(to_timestamp((p_args->>'expires_epoch')::bigint),
	                           (p_args->>'expires_at')::timestamptz), p_who->>'id',
	                  p_who->>'role');
	RETURN admin_done(p_who, p_request_id, 'token.create', 'token', t.id, 201, token_json(t));
END $$;
CREATE OR REPLACE FUNCTION api_token_revoke(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	err jsonb := admin_check(p_who, p_request_id, 'token.revoke');
	t tokens;
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	t := token_revoke_one(try_uuid(p_args->>'id'));
	IF t.id IS NULL THEN
		RETURN api_not_found(p_who, p_request_id, 'token.revoke', 'token', p_args->>'id');
	END IF;
	RETURN admin_done(p_who, p_request_id, 'token.revoke', 'token', t.id, 200, token_json(t));
END $$;

-- Is this subject's token list the caller's to see? Admins: anyone.
-- Supervisors: the workers of their organisation and themselves (a
-- programme supervisor: every worker and itself).
CREATE FUNCTION token_subject_visible(p_who jsonb, p_subject uuid, p_role text) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT CASE p_who->>'role'
	WHEN 'admin' THEN true
	WHEN 'supervisor' THEN
		(p_role = 'supervisor' AND p_subject::text = p_who->>'id')
		OR (p_role = 'worker' AND EXISTS (
			SELECT 1 FROM workers w WHERE w.id = p_subject
			  AND (coalesce((p_who->>'programme')::boolean, false)
			       OR w.organisation_id::text = p_who->>'org_id')))
	ELSE false END
$$;

CREATE FUNCTION api_token_list(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	lim integer := api_limit(p_args);
	cur record;
	page tokens[];
	n integer;
	sid uuid := try_uuid(p_args->>'subject_id');
BEGIN
	PERFORM ctx_set(p_who, p_request_id);
	IF p_who->>'role' NOT IN ('admin', 'supervisor') THEN
		RETURN api_forbidden(p_who, p_request_id, 'token.list');
	END IF;
	BEGIN
		cur := cursor_decode(p_args->>'cursor');
	EXCEPTION WHEN SQLSTATE 'RF400' THEN
		RETURN api_error(400, 'invalid_cursor', 'cursor is not valid', '/cursor');
	END;
	SELECT array_agg(x ORDER BY x.created_at DESC, x.id DESC) INTO page FROM (
		SELECT t.* FROM tokens t
		WHERE (sid IS NULL OR t.subject_id = sid)
		  AND token_subject_visible(p_who, t.subject_id, t.role)
		  AND (cur.at IS NULL OR (t.created_at, t.id) < (cur.at, cur.id))
		ORDER BY t.created_at DESC, t.id DESC
		LIMIT lim + 1) x;
	n := coalesce(cardinality(page), 0);
	PERFORM audit_write(p_who, p_request_id, 'token.list', 'token', sid::text, 'ok');
	RETURN api_result(200, jsonb_build_object(
		'items', coalesce((SELECT jsonb_agg(token_json(page[i]) ORDER BY i)
		                   FROM generate_series(1, least(n, lim)) i), '[]'),
		'next', CASE WHEN n > lim THEN cursor_encode(page[lim].created_at, page[lim].id) END));
END $$;

CREATE FUNCTION api_token_revoke_subject(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	err jsonb := admin_check(p_who, p_request_id, 'token.revoke_subject');
	sid uuid := try_uuid(p_args->>'subject_id');
	n integer;
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	n := token_revoke_subject(sid);
	PERFORM audit_write(p_who, p_request_id, 'token.revoke_subject', 'subject', sid::text, 'ok');
	RETURN api_result(200, jsonb_build_object('subject_id', sid, 'revoked', n));
END $$;

CREATE FUNCTION office_json(o offices) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('id', o.id, 'name', o.name, 'region', o.region,
		'active', o.active,
		'cert_fingerprint', (SELECT c.fingerprint FROM office_certs c WHERE c.office_id = o.id
		                     ORDER BY c.created_at LIMIT 1),
		'cert_subject', (SELECT c.subject FROM office_certs c WHERE c.office_id = o.id
		                 ORDER BY c.created_at LIMIT 1),
		'created_at', ts(o.created_at))
$$;

-- Disabling takes effect at the next request of every credential of the
-- office (tokens and certificate): auth_token and auth_cert read it.
CREATE FUNCTION api_office_patch(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	err jsonb := admin_check(p_who, p_request_id, 'office.patch');
	o offices;
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	UPDATE offices SET active = (p_args->>'active')::boolean
	WHERE id = try_uuid(p_args->>'id') RETURNING * INTO o;
	IF o.id IS NULL THEN
		RETURN api_not_found(p_who, p_request_id, 'office.patch', 'office', p_args->>'id');
	END IF;
	RETURN admin_done(p_who, p_request_id, 'office.patch', 'office', o.id, 200, office_json(o));
END $$;

CREATE FUNCTION api_office_certificate_delete(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	err jsonb := admin_check(p_who, p_request_id, 'office.certificate_delete');
	o offices;
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	SELECT * INTO o FROM offices WHERE id = try_uuid(p_args->>'id') FOR UPDATE;
	IF o.id IS NULL THEN
		RETURN api_not_found(p_who, p_request_id, 'office.certificate_delete', 'office',
		                     p_args->>'id');
	END IF;
	DELETE FROM office_certs WHERE office_id = o.id;
	RETURN admin_done(p_who, p_request_id, 'office.certificate_delete', 'office', o.id, 200,
	                  office_json(o));
END $$;

CREATE FUNCTION api_supervisor_patch(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	err jsonb := admin_check(p_who, p_request_id, 'supervisor.patch');
	s supervisors;
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	UPDATE supervisors SET active = (p_args->>'active')::boolean
	WHERE id = try_uuid(p_args->>'id') RETURNING * INTO s;
	IF s.id IS NULL THEN
		RETURN api_not_found(p_who, p_request_id, 'supervisor.patch', 'supervisor', p_args->>'id');
	END IF;
	RETURN admin_done(p_who, p_request_id, 'supervisor.patch', 'supervisor', s.id, 200,
		jsonb_build_object('id', s.id, 'organisation_id', s.organisation_id, 'scope', s.scope,
		                   'handle', s.handle, 'active', s.active, 'created_at', ts(s.created_at)));
END $$;

-- Sealed values and free text -----------------------------------------------------
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
CREATE OR REPLACE FUNCTION api_assignment_list(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	lim integer := api_limit(p_args);
	cur record;
	page assignments[];
	n integer;
	overdue boolean := coalesce((p_args->>'overdue')::boolean, false);
BEGIN
	PERFORM ctx_set(p_who, p_request_id);
	IF p_who->>'role' NOT IN ('worker', 'supervisor') THEN
		RETURN api_forbidden(p_who, p_request_id, 'assignment.list');
	END IF;
	BEGIN
		cur := cursor_decode(p_args->>'cursor');
	EXCEPTION WHEN SQLSTATE 'RF400' THEN
		RETURN api_error(400, 'invalid_cursor', 'cursor is not valid', '/cursor');
	END;

	SELECT array_agg(x ORDER BY x.created_at DESC, x.id DESC) INTO page FROM (
		SELECT a.* FROM assignments a
		WHERE assignment_in_scope(a, p_who)
		  AND (p_who->>'role' <> 'worker' OR a.worker_id = (p_who->>'id')::uuid)
		  AND (p_args->>'status' IS NULL OR a.status = p_args->>'status')
		  AND (NOT overdue OR assignment_overdue(a.id))
		  AND (cur.at IS NULL OR (a.created_at, a.id) < (cur.at, cur.id))
		ORDER BY a.created_at DESC, a.id DESC
		LIMIT lim + 1) x;
	n := coalesce(cardinality(page), 0);

	PERFORM audit_write(p_who, p_request_id, 'assignment.list', 'assignment', NULL, 'ok');
	RETURN api_result(200, jsonb_build_object(
		'items', coalesce((SELECT jsonb_agg(assignment_json(page[i]) - 'client' - 'note_sealed' - 'reason_sealed' ORDER BY i)
		                   FROM generate_series(1, least(n, lim)) i), '[]'),
		'next', CASE WHEN n > lim THEN cursor_encode(page[lim].created_at, page[lim].id) END));
END $$;
CREATE OR REPLACE FUNCTION api_referral_submit(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	office uuid := (p_who->>'id')::uuid;
	k text := p_args->>'idempotency_key';
	h text := p_args->>'request_hash';
	c jsonb := p_args->'client';
	stored idempotency_keys;
	existing uuid;
	dup uuid;
	r referrals;
	v_need text;
	aid uuid;
	prefer uuid;
	body jsonb;
	headers jsonb;
BEGIN
	PERFORM ctx_set(p_who, p_request_id);
	IF p_who->>'role' IS DISTINCT FROM 'office' THEN
		RETURN api_forbidden(p_who, p_request_id, 'referral.submit');
	END IF;
	IF k IS NULL OR length(k) NOT BETWEEN 1 AND 128 THEN
		RETURN api_error(400, 'idempotency_key_required', 'Idempotency-Key header is required');
	END IF;

	-- One transaction per (office, key) at a time: a second one arriving
	-- while the first is still running is told so instead of waiting.
	IF NOT pg_try_advisory_xact_lock(hashtextextended('idem:' || office || ':' || k, 0)) THEN
		RETURN api_error(409, 'idempotency_key_in_flight',
		                 'a request with this Idempotency-Key is still being processed');
	END IF;
	SELECT * INTO stored FROM idempotency_keys WHERE office_id = office AND key = k;
	IF FOUND THEN
		IF stored.request_hash IS DISTINCT FROM h THEN
			RETURN api_error(422, 'idempotency_key_reused',
			                 'this Idempotency-Key was used with a different request');
		END IF;
		PERFORM audit_write(p_who, p_request_id, 'referral.submit_replay', 'referral',
		                    stored.response->>'id', 'ok');
		RETURN api_result(stored.status, stored.response,
		                  jsonb_build_object('Idempotent-Replayed', 'true',
		                                     'Location', '/v1/referrals/' || (stored.response->>'id')));
	END IF;

	IF NOT coalesce((p_args->'consent'->>'services')::boolean, false) THEN
		RETURN api_error(422, 'consent_required', 'the client must consent to services',
		                 '/consent/services');
	END IF;

	SELECT id INTO existing FROM referrals
	WHERE office_id = office AND external_ref = p_args->>'external_ref';
	IF FOUND THEN
		RETURN api_error(409, 'duplicate_referral',
		                 'this office already submitted a referral with this external_ref',
		                 '/external_ref', jsonb_build_object('existing_id', existing));
	END IF;

	-- Duplicate detection and continuity of care look at every office's
	-- referrals: system scope until the response is shaped.
	PERFORM ctx_system();
	-- Submissions for one client queue here (any office), so the second
	-- sees the first once it commits and links to it: without the lock two
	-- concurrent ones would both look, find nothing, and both be originals.
	PERFORM pg_advisory_xact_lock(hashtextextended('uic:' || (c->>'uic_hash'), 0));
	SELECT id INTO dup FROM referrals
	WHERE uic_hash = c->>'uic_hash' AND status = 'open'
	ORDER BY created_at, id LIMIT 1;

	BEGIN
		INSERT INTO referrals (id, office_id, external_ref, uic_hash, birth_year, gender, languages,
		                       region, needs, urgency, consent_services, consent_report_back,
		                       consent_obtained_at, probation_starts_on, probation_ends_on,
		                       contact_sealed, note_sealed, duplicate_of)
		VALUES (coalesce(try_uuid(p_args->>'id'), gen_random_uuid()), office, p_args->>'external_ref', c->>'uic_hash', (c->>'birth_year')::integer,
		        c->>'gender', jsonb_text_array(c->'languages'), c->>'region',
		        ARRAY(SELECT DISTINCT n FROM jsonb_array_elements_text(p_args->'needs') n ORDER BY n),
		        coalesce(p_args->>'urgency', 'normal'), true,
		        coalesce((p_args->'consent'->>'report_back')::boolean, false),
		        (p_args->'consent'->>'obtained_at')::timestamptz,
		        (p_args->'probation'->>'starts_on')::date, (p_args->'probation'->>'ends_on')::date,
		        c->>'contact_sealed', p_args->>'note_sealed', dup)
		RETURNING * INTO r;
	EXCEPTION WHEN unique_violation THEN
		-- Another key raced us with the same external_ref and committed first.
		PERFORM ctx_caller();
		SELECT id INTO existing FROM referrals
		WHERE office_id = office AND external_ref = p_args->>'external_ref';
		RETURN api_error(409, 'duplicate_referral',
		                 'this office already submitted a referral with this external_ref',
		                 '/external_ref', jsonb_build_object('existing_id', existing));
	END;

	-- Needs in a fixed order, so concurrent submissions lock workers of the
	-- two kinds in the same order.
	FOREACH v_need IN ARRAY r.needs LOOP
		INSERT INTO assignments (referral_id, office_id, need, urgency, region, languages)
		VALUES (r.id, office, v_need, r.urgency, r.region, r.languages)
		RETURNING id INTO aid;
		prefer := NULL;
		IF dup IS NOT NULL THEN
			SELECT a.worker_id INTO prefer
			FROM referrals o JOIN assignments a ON a.referral_id = o.id
			WHERE o.uic_hash = r.uic_hash AND o.status = 'open' AND o.id <> r.id
			  AND a.need = v_need AND a.worker_id IS NOT NULL
			  AND a.status IN ('offered', 'accepted', 'in_progress', 'on_hold')
			ORDER BY a.status = 'offered', a.created_at
			LIMIT 1;
		END IF;
		PERFORM match_assignment(aid, prefer);
	END LOOP;

	PERFORM ctx_caller();
	SELECT referral_json(x) INTO body FROM referrals x WHERE x.id = r.id;
	INSERT INTO idempotency_keys (office_id, key, request_hash, status, response)
	VALUES (office, k, coalesce(h, ''), 201, body);
	headers := jsonb_build_object('Location', '/v1/referrals/' || r.id);
	PERFORM audit_write(p_who, p_request_id, 'referral.submit', 'referral', r.id::text, 'ok');
	RETURN api_result(201, body, headers);
END $$;
CREATE OR REPLACE FUNCTION api_referral_withdraw(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	r referrals;
	aid uuid;
BEGIN
	PERFORM ctx_set(p_who, p_request_id);
	IF p_who->>'role' IS DISTINCT FROM 'office' THEN
		RETURN api_forbidden(p_who, p_request_id, 'referral.withdraw');
	END IF;
	SELECT * INTO r FROM referrals WHERE id = try_uuid(p_args->>'id') FOR UPDATE;
	IF r.id IS NULL OR NOT referral_in_scope(r, p_who) THEN
		RETURN api_not_found(p_who, p_request_id, 'referral.withdraw', 'referral', p_args->>'id');
	END IF;
	IF r.status <> 'open' THEN
		RETURN api_error(409, 'invalid_transition', 'only an open referral can be withdrawn');
	END IF;

	PERFORM ctx_system();
	UPDATE referrals SET status = 'withdrawn', withdrawn_at = now(), updated_at = now(),
	       withdrawn_reason_sealed = p_args->>'reason_sealed'
	WHERE id = r.id RETURNING * INTO r;
	-- Lock the workers whose load goes down in id order first: two
	-- withdrawals touching the same two workers then cannot deadlock.
	PERFORM 1 FROM workers
	WHERE id IN (SELECT worker_id FROM assignments
	             WHERE referral_id = r.id AND assignment_is_open(status))
	ORDER BY id FOR UPDATE;
	FOR aid IN SELECT id FROM assignments
	           WHERE referral_id = r.id AND NOT assignment_is_ended(status)
	           ORDER BY id FOR UPDATE LOOP
		PERFORM offer_end(aid, 'cancelled', 'referral_withdrawn');
		-- declined/expired rows are matched again in the same transaction
		-- that set them, so every live row here has a cancel transition.
		UPDATE assignments SET status = 'cancelled', reason = 'referral_withdrawn', reason_sealed = NULL
		WHERE id = aid;
		UPDATE deadlines SET state = 'void' WHERE assignment_id = aid AND state = 'pending';
		UPDATE escalations SET resolved_at = now() WHERE assignment_id = aid AND resolved_at IS NULL;
		INSERT INTO outbox (type, payload, organisation_id)
		SELECT 'assignment.cancelled',
		       jsonb_build_object('assignment_id', aid, 'detail_url', '/v1/assignments/' || aid),
		       organisation_id
		FROM assignments WHERE id = aid;
	END LOOP;
	INSERT INTO outbox (type, payload, office_id)
	VALUES ('referral.withdrawn',
	        jsonb_build_object('referral_id', r.id, 'detail_url', '/v1/referrals/' || r.id), r.office_id);
	PERFORM ctx_caller();
	PERFORM audit_write(p_who, p_request_id, 'referral.withdraw', 'referral', r.id::text, 'ok');
	RETURN api_result(200, referral_json(r));
END $$;
CREATE OR REPLACE FUNCTION offer_make(a assignments, w workers, p_reason jsonb) RETURNS assignments
LANGUAGE plpgsql AS $$
DECLARE
	pol deadline_policies := policy_for(a.need, a.urgency);
	o offers;
	r assignments;
BEGIN
	INSERT INTO offers (assignment_id, worker_id, expires_at, match_reason)
	VALUES (a.id, w.id, now() + pol.accept_within, p_reason)
	RETURNING * INTO o;

	-- A new worker sees none of what the previous one wrote (its decline
	-- reason): cleared with the offer.
	UPDATE assignments SET status = 'offered', worker_id = w.id, reason = NULL, reason_sealed = NULL,
	       organisation_id = w.organisation_id, offer_expires_at = o.expires_at,
	       match_reason = p_reason
	WHERE id = a.id RETURNING * INTO r;

	UPDATE workers SET last_assigned_at = now() WHERE id = w.id;

	INSERT INTO deadlines (kind, assignment_id, offer_id, worker_id, organisation_id, due_at)
	VALUES ('accept', a.id, o.id, w.id, w.organisation_id, o.expires_at);

	UPDATE escalations SET resolved_at = now()
	WHERE assignment_id = a.id AND reason = 'unassigned' AND resolved_at IS NULL;

	INSERT INTO outbox (type, payload, organisation_id)
	VALUES ('assignment.offered',
	        jsonb_build_object('assignment_id', a.id, 'worker_id', w.id,
	                           'detail_url', '/v1/assignments/' || a.id),
	        w.organisation_id);
	RETURN r;
END $$;
CREATE OR REPLACE FUNCTION api_assignment_decline(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	a assignments;
	seen jsonb;
BEGIN
	PERFORM ctx_set(p_who, p_request_id);
	IF p_who->>'role' IS DISTINCT FROM 'worker' THEN
		RETURN api_forbidden(p_who, p_request_id, 'assignment.decline');
	END IF;
	a := assignment_lock(p_who, p_args->>'id');
	IF a.id IS NULL THEN
		RETURN api_not_found(p_who, p_request_id, 'assignment.decline', 'assignment', p_args->>'id');
	END IF;
	IF a.status <> 'offered' THEN
		RETURN invalid_transition(a.status, 'decline');
	END IF;

	PERFORM ctx_system();
	PERFORM offer_end(a.id, 'declined', NULL);
	UPDATE assignments SET status = 'declined', reason = NULL,
	       reason_sealed = p_args->>'reason_sealed'
	WHERE id = a.id RETURNING * INTO a;
	-- What the declining worker last saw, before the row moves on.
	PERFORM ctx_caller();
	seen := assignment_json(a);
	PERFORM ctx_system();
	PERFORM match_assignment(a.id);
	PERFORM ctx_caller();
	PERFORM audit_write(p_who, p_request_id, 'assignment.decline', 'assignment', a.id::text, 'ok');
	RETURN api_result(200, seen);
END $$;
CREATE OR REPLACE FUNCTION api_assignment_event(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	a assignments;
	e assignment_events;
	at_ timestamptz := coalesce((p_args->>'at')::timestamptz, now());
	typ text := p_args->>'type';
BEGIN
	PERFORM ctx_set(p_who, p_request_id);
	IF p_who->>'role' IS DISTINCT FROM 'worker' THEN
		RETURN api_forbidden(p_who, p_request_id, 'assignment.event');
	END IF;
	a := assignment_lock(p_who, p_args->>'id');
	IF a.id IS NULL THEN
		RETURN api_not_found(p_who, p_request_id, 'assignment.event', 'assignment', p_args->>'id');
	END IF;
	IF a.status NOT IN ('accepted', 'in_progress', 'on_hold') THEN
		RETURN invalid_transition(a.status, 'record an event on');
	END IF;
	-- An event happened after the assignment was accepted and not in the
	-- future: a backdated contact would meet a deadline in no time. A
	-- minute of clock skew is forgiven (and clamped to now).
	IF at_ < date_trunc('second', a.accepted_at) OR at_ > now() + interval '1 minute' THEN
		RETURN api_error(422, 'invalid_value',
		                 'at must lie between the assignment''s acceptance and now', '/at');
	END IF;
	at_ := least(at_, now());

	PERFORM ctx_system();
	INSERT INTO assignment_events (id, assignment_id, type, at, outcome_sealed, detail_sealed,
	                               actor_role, actor_id)
	VALUES (coalesce(try_uuid(p_args->>'event_id'), gen_random_uuid()), a.id, typ, at_,
	        p_args->>'outcome_sealed', p_args->>'detail_sealed', 'worker', (p_who->>'id')::uuid)
	RETURNING * INTO e;

	IF typ = 'contact_made' AND a.first_contact_at IS NULL THEN
		UPDATE assignments SET first_contact_at = at_,
		       status = CASE WHEN status = 'accepted' THEN 'in_progress' ELSE status END
		WHERE id = a.id;
		-- Late contact still records when it happened (the reports need it).
		UPDATE deadlines SET state = CASE WHEN state = 'pending' THEN 'met' ELSE state END,
		       met_at = at_, elapsed = greatest(at_ - starts_at, interval '0')
		WHERE assignment_id = a.id AND kind = 'first_contact' AND met_at IS NULL
		  AND state IN ('pending', 'missed');
	ELSIF typ = 'service_delivered' THEN
		UPDATE deadlines SET state = CASE WHEN state = 'pending' THEN 'met' ELSE state END,
		       met_at = at_, elapsed = greatest(at_ - starts_at, interval '0')
		WHERE assignment_id = a.id AND kind = 'consultation' AND met_at IS NULL
		  AND state IN ('pending', 'missed');
	END IF;

	PERFORM ctx_caller();
	PERFORM audit_write(p_who, p_request_id, 'assignment.event', 'assignment', a.id::text, 'ok');
	RETURN api_result(201, jsonb_build_object('id', e.id, 'assignment_id', a.id, 'type', e.type,
		'at', ts(e.at),
		'outcome_sealed', sealed_ref('assignment_events', 'outcome', e.id, e.outcome_sealed),
		'created_at', ts(e.created_at)));
END $$;
CREATE OR REPLACE FUNCTION assignment_worker_step(p_who jsonb, p_request_id text, p_args jsonb,
                                       p_action text, p_from text[], p_to text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	a assignments;
BEGIN
	PERFORM ctx_set(p_who, p_request_id);
	IF p_who->>'role' IS DISTINCT FROM 'worker' THEN
		RETURN api_forbidden(p_who, p_request_id, 'assignment.' || p_action);
	END IF;
	a := assignment_lock(p_who, p_args->>'id');
	IF a.id IS NULL THEN
		RETURN api_not_found(p_who, p_request_id, 'assignment.' || p_action, 'assignment', p_args->>'id');
	END IF;
	IF NOT (a.status = ANY (p_from)) THEN
		RETURN invalid_transition(a.status, p_action);
	END IF;

	PERFORM ctx_system();
	UPDATE assignments SET status = p_to,
	       reason = CASE WHEN p_action = 'fail' THEN left(p_args->>'reason', 32) ELSE reason END,
	       reason_sealed = CASE WHEN p_action = 'hold' THEN p_args->>'reason_sealed'
	                            ELSE reason_sealed END,
	       outcome = CASE WHEN p_action = 'complete' THEN p_args->>'outcome'
	                      WHEN p_action = 'fail' THEN 'failed' ELSE outcome END,
	       detail_sealed = CASE WHEN p_action IN ('complete', 'fail')
	                            THEN p_args->>'detail_sealed' ELSE detail_sealed END
	WHERE id = a.id;
	IF p_to IN ('completed', 'failed') THEN
		PERFORM deadlines_void(a.id);
		INSERT INTO outbox (type, payload, organisation_id, office_id)
		VALUES ('assignment.' || p_to,
		        jsonb_build_object('assignment_id', a.id, 'referral_id', a.referral_id,
		                           'detail_url', '/v1/assignments/' || a.id),
		        a.organisation_id, a.office_id);
	END IF;
	RETURN assignment_reply(p_who, p_request_id, 'assignment.' || p_action, a.id, 200);
END $$;

-- Webhooks ------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION api_webhook_create(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	err jsonb := admin_check(p_who, p_request_id, 'webhook.create');
	h webhooks;
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	IF p_args->>'organisation_id' IS NOT NULL
	   AND NOT EXISTS (SELECT 1 FROM organisations WHERE id = try_uuid(p_args->>'organisation_id')) THEN
		RETURN api_error(400, 'invalid_field', 'no such organisation', '/organisation_id');
	END IF;
	IF p_args->>'office_id' IS NOT NULL
	   AND NOT EXISTS (SELECT 1 FROM offices WHERE id = try_uuid(p_args->>'office_id')) THEN
		RETURN api_error(400, 'invalid_field', 'no such office', '/office_id');
	END IF;
	INSERT INTO webhooks (id, url, events, secret_sealed, organisation_id, office_id, programme)
	VALUES (coalesce(try_uuid(p_args->>'id'), gen_random_uuid()), p_args->>'url',
	        jsonb_text_array(p_args->'events'), p_args->>'secret_sealed',
	        try_uuid(p_args->>'organisation_id'), try_uuid(p_args->>'office_id'),
	        coalesce((p_args->>'programme')::boolean, false))
	RETURNING * INTO h;
	RETURN admin_done(p_who, p_request_id, 'webhook.create', 'webhook', h.id, 201,
		jsonb_build_object('id', h.id, 'url', h.url, 'events', to_jsonb(h.events),
		                   'organisation_id', h.organisation_id, 'office_id', h.office_id,
		                   'programme', h.programme,
		                   'created_at', ts(h.created_at)));
END $$;
CREATE OR REPLACE FUNCTION outbox_claim(p_limit integer) RETURNS SETOF jsonb
LANGUAGE plpgsql AS $$
BEGIN
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
		                             OR h.office_id = c.office_id)), '[]'))
	FROM claimed c;
END $$;

-- Grants --------------------------------------------------------------------------
-- Row-level security here keys on app.* settings any session can set: it
-- catches mistakes in our own SQL, not a hostile runtime role (SECURITY.md).
-- Tables without policies, and why: offers, deadlines, escalations (read
-- only through functions that check scope on the assignment they belong
-- to); outbox (ids and detail_url only, no client data); tokens (no direct
-- write, only keyed hashes: a row is worthless without the token key);
-- webhooks (secrets sealed under their own subkey, bound to their row);
-- idempotency_keys (stored answers of submissions, which carry no sealed
-- field). A policy on them would guard the same functions that already
-- decide scope, against nothing a forged app.role could not also lift.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'referrald_app') THEN
		RETURN;
	END IF;
	EXECUTE 'REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON tokens FROM referrald_app';
	EXECUTE 'GRANT DELETE ON office_certs TO referrald_app';
	EXECUTE 'REVOKE EXECUTE ON FUNCTION mint_admin_token(text, text, text, bigint) FROM PUBLIC';
	EXECUTE 'REVOKE EXECUTE ON FUNCTION admin_ensure(text) FROM PUBLIC';
	EXECUTE 'GRANT EXECUTE ON FUNCTION sealed_ref(text, text, uuid, text), '
	        'token_insert(text, uuid, text, text, timestamptz, text, text), '
	        'token_revoke_one(uuid), token_revoke_subject(uuid), token_touch(uuid), '
	        'token_subject_visible(jsonb, uuid, text), api_token_list(jsonb, text, jsonb), '
	        'api_token_revoke_subject(jsonb, text, jsonb), office_json(offices), '
	        'api_office_patch(jsonb, text, jsonb), '
	        'api_office_certificate_delete(jsonb, text, jsonb), '
	        'api_supervisor_patch(jsonb, text, jsonb) TO referrald_app';
END $$;
