-- 09_admin.sql - the administration operations (admin role only).
--
-- Owns: organisations, offices (binding a certificate later:
-- 85_admin_lists.sql), workers,
-- supervisors, tokens, deadline policies and webhooks, each action audited.
-- Must never: return or touch client data; store a token or webhook secret in
-- clear (the daemon passes only the token's hash and the sealed secret).

CREATE OR REPLACE FUNCTION admin_check(p_who jsonb, p_request_id text, p_action text) RETURNS jsonb
LANGUAGE sql AS $$
	SELECT api_check(p_who, p_request_id, p_action, ARRAY['admin'])
$$;

DROP FUNCTION IF EXISTS admin_done(jsonb, text, text, text, uuid, integer, jsonb);

CREATE OR REPLACE FUNCTION organisation_json(o organisations) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('id', o.id, 'name', o.name, 'created_at', ts(o.created_at))
$$;

CREATE OR REPLACE FUNCTION api_organisation_create(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	err jsonb := admin_check(p_who, p_request_id, 'organisation.create');
	o organisations;
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	BEGIN
		INSERT INTO organisations (name) VALUES (p_args->>'name') RETURNING * INTO o;
	EXCEPTION WHEN unique_violation THEN
		RETURN api_error(409, 'duplicate_name', 'an organisation with this name exists', '/name');
	END;
	RETURN api_done(p_who, p_request_id, 'organisation.create', 'organisation', o.id::text, 201,
	                  organisation_json(o));
END $$;

CREATE OR REPLACE FUNCTION api_office_create(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	err jsonb := admin_check(p_who, p_request_id, 'office.create');
	o offices;
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	BEGIN
		INSERT INTO offices (name, region) VALUES (p_args->>'name', p_args->>'region')
		RETURNING * INTO o;
		IF p_args->>'cert_fingerprint' IS NOT NULL OR p_args->>'cert_subject' IS NOT NULL THEN
			INSERT INTO office_certs (office_id, fingerprint, subject)
			VALUES (o.id, lower(p_args->>'cert_fingerprint'), p_args->>'cert_subject');
		END IF;
	EXCEPTION WHEN unique_violation THEN
		RETURN api_error(409, 'duplicate_name',
		                 'an office with this name or certificate exists', '/name');
	END;
	RETURN api_done(p_who, p_request_id, 'office.create', 'office', o.id::text, 201,
		jsonb_build_object('id', o.id, 'name', o.name, 'region', o.region,
		                   'cert_fingerprint', lower(p_args->>'cert_fingerprint'),
		                   'cert_subject', p_args->>'cert_subject',
		                   'created_at', ts(o.created_at)));
END $$;

CREATE OR REPLACE FUNCTION worker_json(w workers) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('id', w.id, 'organisation_id', w.organisation_id, 'kind', w.kind,
		'handle', w.handle, 'regions', to_jsonb(w.regions), 'languages', to_jsonb(w.languages),
		'capacity', w.capacity, 'on_leave', w.on_leave, 'active', w.active,
		'open_assignments', w.open_count, 'created_at', ts(w.created_at),
		'updated_at', ts(w.updated_at))
$$;

CREATE OR REPLACE FUNCTION api_worker_create(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	err jsonb := admin_check(p_who, p_request_id, 'worker.create');
	w workers;
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	PERFORM 1 FROM organisations WHERE id = try_uuid(p_args->>'organisation_id');
	IF NOT FOUND THEN
		RETURN api_error(400, 'invalid_field', 'no such organisation', '/organisation_id');
	END IF;
	BEGIN
		INSERT INTO workers (organisation_id, kind, handle, regions, languages, capacity)
		VALUES ((p_args->>'organisation_id')::uuid, p_args->>'kind', p_args->>'handle',
		        jsonb_text_array(p_args->'regions'), jsonb_text_array(p_args->'languages'),
		        (p_args->>'capacity')::integer)
		RETURNING * INTO w;
	EXCEPTION WHEN unique_violation THEN
		RETURN api_error(409, 'duplicate_handle', 'a worker with this handle exists', '/handle');
	END;
	RETURN api_done(p_who, p_request_id, 'worker.create', 'worker', w.id::text, 201, worker_json(w));
END $$;

-- Going on leave or inactive hands that worker's open offers to the next
-- candidates in the same transaction.
CREATE OR REPLACE FUNCTION api_worker_patch(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	err jsonb := admin_check(p_who, p_request_id, 'worker.patch');
	w workers;
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	PERFORM ctx_system();
	UPDATE workers SET
		capacity = coalesce((p_args->>'capacity')::integer, capacity),
		on_leave = coalesce((p_args->>'on_leave')::boolean, on_leave),
		active = coalesce((p_args->>'active')::boolean, active),
		regions = coalesce(jsonb_text_array(p_args->'regions'), regions),
		languages = coalesce(jsonb_text_array(p_args->'languages'), languages),
		updated_at = now()
	WHERE id = try_uuid(p_args->>'id')
	RETURNING * INTO w;
	IF w.id IS NULL THEN
		PERFORM ctx_caller();
		RETURN api_not_found(p_who, p_request_id, 'worker.patch', 'worker', p_args->>'id');
	END IF;
	IF w.on_leave OR NOT w.active THEN
		PERFORM worker_release_offers(w.id);
		SELECT * INTO w FROM workers WHERE id = w.id;
	END IF;
	PERFORM ctx_caller();
	RETURN api_done(p_who, p_request_id, 'worker.patch', 'worker', w.id::text, 200, worker_json(w));
END $$;

CREATE OR REPLACE FUNCTION api_supervisor_create(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	err jsonb := admin_check(p_who, p_request_id, 'supervisor.create');
	s supervisors;
	prog boolean := coalesce(p_args->>'scope', 'organisation') = 'programme';
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	IF NOT prog THEN
		PERFORM 1 FROM organisations WHERE id = try_uuid(p_args->>'organisation_id');
		IF NOT FOUND THEN
			RETURN api_error(400, 'invalid_field', 'no such organisation', '/organisation_id');
		END IF;
	END IF;
	BEGIN
		INSERT INTO supervisors (organisation_id, scope, handle)
		VALUES (CASE WHEN prog THEN NULL ELSE (p_args->>'organisation_id')::uuid END,
		        CASE WHEN prog THEN 'programme' ELSE 'organisation' END, p_args->>'handle')
		RETURNING * INTO s;
	EXCEPTION WHEN unique_violation THEN
		RETURN api_error(409, 'duplicate_handle', 'a supervisor with this handle exists', '/handle');
	END;
	RETURN api_done(p_who, p_request_id, 'supervisor.create', 'supervisor', s.id::text, 201,
		jsonb_build_object('id', s.id, 'organisation_id', s.organisation_id, 'scope', s.scope,
		                   'handle', s.handle, 'created_at', ts(s.created_at)));
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
	RETURN api_done(p_who, p_request_id, 'token.create', 'token', t.id::text, 201, token_json(t));
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
	RETURN api_done(p_who, p_request_id, 'token.revoke', 'token', t.id::text, 200, token_json(t));
END $$;

CREATE OR REPLACE FUNCTION policy_json(p deadline_policies) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('need', p.need, 'urgency', p.urgency,
		'accept_within', iso_duration(p.accept_within),
		'first_contact_within', iso_duration(p.first_contact_within),
		'consultation_within', iso_duration(p.consultation_within),
		'clock', p.clock, 'remind_before', iso_duration(p.remind_before),
		'updated_at', ts(p.updated_at))
$$;

-- ISO 8601 durations as received (PT24H, P7D, PT2S); PostgreSQL's interval
-- input reads that format. Applies to deadlines created afterwards only.
CREATE OR REPLACE FUNCTION api_deadline_policy_put(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	err jsonb := admin_check(p_who, p_request_id, 'deadline_policy.put');
	p deadline_policies;
	rb interval;
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	IF NOT is_value_of(p_args->>'need', 'need') THEN
		RETURN api_error(404, 'not_found', 'no such need');
	END IF;
	IF NOT is_value_of(p_args->>'urgency', 'urgency') THEN
		RETURN api_error(404, 'not_found', 'no such urgency');
	END IF;
	IF p_args->>'clock' IS NOT NULL AND NOT is_value_of(p_args->>'clock', 'deadline_clock') THEN
		RETURN api_error(400, 'invalid_value', 'clock is wall or working', '/clock');
	END IF;
	err := durations_check(p_args, ARRAY['accept_within', 'first_contact_within',
	                                     'consultation_within', 'remind_before']);
	IF err IS NOT NULL THEN RETURN err; END IF;
	IF p_args->>'consultation_within' IS NOT NULL AND p_args->>'need' <> 'legal_support' THEN
		RETURN api_error(400, 'invalid_field', 'only legal support has a consultation deadline',
		                 '/consultation_within');
	END IF;
	SELECT * INTO STRICT p FROM deadline_policies
	WHERE need = p_args->>'need' AND urgency = p_args->>'urgency' FOR UPDATE;
	rb := coalesce((p_args->>'remind_before')::interval, p.remind_before);
	IF rb IS NOT NULL AND (
	   rb >= coalesce((p_args->>'accept_within')::interval, p.accept_within)
	   OR rb >= coalesce((p_args->>'first_contact_within')::interval, p.first_contact_within)
	   OR rb >= coalesce((p_args->>'consultation_within')::interval, p.consultation_within)) THEN
		RETURN api_error(422, 'invalid_value',
		                 'remind_before must be shorter than each deadline of the policy',
		                 '/remind_before');
	END IF;
	UPDATE deadline_policies SET
		accept_within = coalesce((p_args->>'accept_within')::interval, accept_within),
		first_contact_within = coalesce((p_args->>'first_contact_within')::interval, first_contact_within),
		consultation_within = coalesce((p_args->>'consultation_within')::interval, consultation_within),
		clock = coalesce(p_args->>'clock', clock),
		remind_before = rb,
		updated_at = now()
	WHERE need = p_args->>'need' AND urgency = p_args->>'urgency'
	RETURNING * INTO p;
	RETURN api_done(p_who, p_request_id, 'deadline_policy.put', 'deadline_policy',
	                p.need || ':' || p.urgency, 200, policy_json(p));
END $$;

-- A webhook as POST /v1/webhooks answers it: never its secret.
CREATE OR REPLACE FUNCTION webhook_json(h webhooks) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('id', h.id, 'url', h.url, 'events', to_jsonb(h.events),
	                          'organisation_id', h.organisation_id, 'office_id', h.office_id,
	                          'programme', h.programme, 'created_at', ts(h.created_at))
$$;

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
	RETURN api_done(p_who, p_request_id, 'webhook.create', 'webhook', h.id::text, 201, webhook_json(h));
END $$;

-- Credentials (protocol v1.1) -------------------------------------------------

-- Is this subject's token list the caller's to see? Admins: anyone.
-- Supervisors: the workers of their organisation and themselves (a
-- programme supervisor: every worker and itself).
CREATE OR REPLACE FUNCTION token_subject_visible(p_who jsonb, p_subject uuid, p_role text) RETURNS boolean
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

CREATE OR REPLACE FUNCTION api_token_list(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE sql AS $$
	SELECT list_page(p_who, p_request_id, p_args, 'token.list', ARRAY['admin', 'supervisor'],
	                 'token', try_uuid(p_args->>'subject_id')::text, 'tokens', 'token_json(x)', $f$
		(try_uuid($2->>'subject_id') IS NULL OR x.subject_id = try_uuid($2->>'subject_id'))
		AND token_subject_visible($1, x.subject_id, x.role)$f$)
$$;

CREATE OR REPLACE FUNCTION api_token_revoke_subject(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	err jsonb := admin_check(p_who, p_request_id, 'token.revoke_subject');
	sid uuid := try_uuid(p_args->>'subject_id');
	n integer;
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	n := token_revoke_subject(sid);
	RETURN api_done(p_who, p_request_id, 'token.revoke_subject', 'subject', sid::text, 200,
	                jsonb_build_object('subject_id', sid, 'revoked', n));
END $$;

CREATE OR REPLACE FUNCTION office_json(o offices) RETURNS jsonb
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
CREATE OR REPLACE FUNCTION api_office_patch(p_who jsonb, p_request_id text, p_args jsonb)
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
	RETURN api_done(p_who, p_request_id, 'office.patch', 'office', o.id::text, 200, office_json(o));
END $$;

CREATE OR REPLACE FUNCTION api_supervisor_patch(p_who jsonb, p_request_id text, p_args jsonb)
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
	RETURN api_done(p_who, p_request_id, 'supervisor.patch', 'supervisor', s.id::text, 200,
		jsonb_build_object('id', s.id, 'organisation_id', s.organisation_id, 'scope', s.scope,
		                   'handle', s.handle, 'active', s.active, 'created_at', ts(s.created_at)));
END $$;
