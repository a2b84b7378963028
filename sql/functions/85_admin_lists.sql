-- 85_admin_lists.sql - the administration lists: organisations, offices and
-- webhooks (admin role only), newest first, paged like every list (limit,
-- cursor), each read audited. What `referralctl org|office|webhook list`
-- calls.
--
-- Owns: api_organisation_list, api_office_list, api_webhook_list, and
-- api_office_certificate_put (binding a certificate to an existing office).
-- Must never: return a webhook's secret (sealed or not) or any client data.

CREATE OR REPLACE FUNCTION api_organisation_list(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	err jsonb := admin_check(p_who, p_request_id, 'organisation.list');
	lim integer := api_limit(p_args);
	cur record;
	page organisations[];
	n integer;
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	BEGIN
		cur := cursor_decode(p_args->>'cursor');
	EXCEPTION WHEN SQLSTATE 'RF400' THEN
		RETURN api_error(400, 'invalid_cursor', 'cursor is not valid', '/cursor');
	END;
	SELECT array_agg(x ORDER BY x.created_at DESC, x.id DESC) INTO page FROM (
		SELECT o.* FROM organisations o
		WHERE cur.at IS NULL OR (o.created_at, o.id) < (cur.at, cur.id)
		ORDER BY o.created_at DESC, o.id DESC LIMIT lim + 1) x;
	n := coalesce(cardinality(page), 0);
	PERFORM audit_write(p_who, p_request_id, 'organisation.list', 'organisation', NULL, 'ok');
	RETURN api_result(200, jsonb_build_object(
		'items', coalesce((SELECT jsonb_agg(jsonb_build_object('id', page[i].id,
		                          'name', page[i].name, 'created_at', ts(page[i].created_at))
		                          ORDER BY i)
		                   FROM generate_series(1, least(n, lim)) i), '[]'),
		'next', CASE WHEN n > lim THEN cursor_encode(page[lim].created_at, page[lim].id) END));
END $$;

CREATE OR REPLACE FUNCTION api_office_list(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	err jsonb := admin_check(p_who, p_request_id, 'office.list');
	lim integer := api_limit(p_args);
	cur record;
	page offices[];
	n integer;
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	BEGIN
		cur := cursor_decode(p_args->>'cursor');
	EXCEPTION WHEN SQLSTATE 'RF400' THEN
		RETURN api_error(400, 'invalid_cursor', 'cursor is not valid', '/cursor');
	END;
	SELECT array_agg(x ORDER BY x.created_at DESC, x.id DESC) INTO page FROM (
		SELECT o.* FROM offices o
		WHERE cur.at IS NULL OR (o.created_at, o.id) < (cur.at, cur.id)
		ORDER BY o.created_at DESC, o.id DESC LIMIT lim + 1) x;
	n := coalesce(cardinality(page), 0);
	PERFORM audit_write(p_who, p_request_id, 'office.list', 'office', NULL, 'ok');
	RETURN api_result(200, jsonb_build_object(
		'items', coalesce((SELECT jsonb_agg(office_json(page[i]) ORDER BY i)
		                   FROM generate_series(1, least(n, lim)) i), '[]'),
		'next', CASE WHEN n > lim THEN cursor_encode(page[lim].created_at, page[lim].id) END));
END $$;

CREATE OR REPLACE FUNCTION api_webhook_list(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	err jsonb := admin_check(p_who, p_request_id, 'webhook.list');
	lim integer := api_limit(p_args);
	cur record;
	page webhooks[];
	n integer;
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	BEGIN
		cur := cursor_decode(p_args->>'cursor');
	EXCEPTION WHEN SQLSTATE 'RF400' THEN
		RETURN api_error(400, 'invalid_cursor', 'cursor is not valid', '/cursor');
	END;
	SELECT array_agg(x ORDER BY x.created_at DESC, x.id DESC) INTO page FROM (
		SELECT h.* FROM webhooks h
		WHERE cur.at IS NULL OR (h.created_at, h.id) < (cur.at, cur.id)
		ORDER BY h.created_at DESC, h.id DESC LIMIT lim + 1) x;
	n := coalesce(cardinality(page), 0);
	PERFORM audit_write(p_who, p_request_id, 'webhook.list', 'webhook', NULL, 'ok');
	-- The secret stays out: only what POST /v1/webhooks answered, and active.
	RETURN api_result(200, jsonb_build_object(
		'items', coalesce((SELECT jsonb_agg(jsonb_build_object('id', page[i].id,
		                          'url', page[i].url, 'events', to_jsonb(page[i].events),
		                          'organisation_id', page[i].organisation_id,
		                          'office_id', page[i].office_id, 'programme', page[i].programme,
		                          'active', page[i].active,
		                          'created_at', ts(page[i].created_at)) ORDER BY i)
		                   FROM generate_series(1, least(n, lim)) i), '[]'),
		'next', CASE WHEN n > lim THEN cursor_encode(page[lim].created_at, page[lim].id) END));
END $$;

-- Bind a client certificate to an existing office (by fingerprint and/or
-- subject), replacing the one bound before: what `referralctl office
-- bind-cert` calls; DELETE /v1/offices/{id}/certificate unbinds. A
-- certificate bound to another office answers 409.
CREATE OR REPLACE FUNCTION api_office_certificate_put(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	err jsonb := admin_check(p_who, p_request_id, 'office.certificate_put');
	o offices;
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	SELECT * INTO o FROM offices WHERE id = try_uuid(p_args->>'id') FOR UPDATE;
	IF o.id IS NULL THEN
		RETURN api_not_found(p_who, p_request_id, 'office.certificate_put', 'office',
		                     p_args->>'id');
	END IF;
	BEGIN
		DELETE FROM office_certs WHERE office_id = o.id;
		INSERT INTO office_certs (office_id, fingerprint, subject)
		VALUES (o.id, lower(p_args->>'cert_fingerprint'), p_args->>'cert_subject');
	EXCEPTION WHEN unique_violation THEN
		RETURN api_error(409, 'duplicate_name', 'this certificate is bound to another office',
		                 CASE WHEN p_args ? 'cert_fingerprint' THEN '/cert_fingerprint'
		                      ELSE '/cert_subject' END);
	END;
	RETURN admin_done(p_who, p_request_id, 'office.certificate_put', 'office', o.id, 200,
	                  office_json(o));
END $$;
