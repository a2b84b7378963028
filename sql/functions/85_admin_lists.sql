-- 85_admin_lists.sql - the administration lists: organisations, offices and
-- webhooks (admin role only), newest first, paged like every list (limit,
-- cursor), each read audited. What `referralctl org|office|webhook list`
-- calls.
--
-- Owns: api_organisation_list, api_office_list, api_webhook_list, and
-- api_office_certificate_put/_delete (binding a certificate to an existing
-- office, unbinding it).
-- Must never: return a webhook's secret (sealed or not) or any client data.

CREATE OR REPLACE FUNCTION api_organisation_list(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE sql AS $$
	SELECT list_page(p_who, p_request_id, p_args, 'organisation.list', ARRAY['admin'],
	                 'organisation', NULL, 'organisations', 'organisation_json(x)', 'true')
$$;

CREATE OR REPLACE FUNCTION api_office_list(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE sql AS $$
	SELECT list_page(p_who, p_request_id, p_args, 'office.list', ARRAY['admin'],
	                 'office', NULL, 'offices', 'office_json(x)', 'true')
$$;

-- The secret stays out: only what POST /v1/webhooks answered, and active.
CREATE OR REPLACE FUNCTION api_webhook_list(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE sql AS $$
	SELECT list_page(p_who, p_request_id, p_args, 'webhook.list', ARRAY['admin'],
	                 'webhook', NULL, 'webhooks',
	                 $i$webhook_json(x) || jsonb_build_object('active', (x).active)$i$, 'true')
$$;

-- Bind a client certificate to an existing office (by fingerprint and/or
-- subject), replacing the one bound before (office.certificate_put: what
-- `referralctl office bind-cert` calls), or unbind it
-- (office.certificate_delete, DELETE /v1/offices/{id}/certificate). A
-- certificate bound to another office answers 409.
CREATE OR REPLACE FUNCTION office_certificate_set(p_who jsonb, p_request_id text, p_args jsonb,
                                                  p_action text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	err jsonb := admin_check(p_who, p_request_id, p_action);
	o offices;
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	SELECT * INTO o FROM offices WHERE id = try_uuid(p_args->>'id') FOR UPDATE;
	IF o.id IS NULL THEN
		RETURN api_not_found(p_who, p_request_id, p_action, 'office', p_args->>'id');
	END IF;
	BEGIN
		DELETE FROM office_certs WHERE office_id = o.id;
		IF p_action = 'office.certificate_put' THEN
			INSERT INTO office_certs (office_id, fingerprint, subject)
			VALUES (o.id, lower(p_args->>'cert_fingerprint'), p_args->>'cert_subject');
		END IF;
	EXCEPTION WHEN unique_violation THEN
		RETURN api_error(409, 'duplicate_name', 'this certificate is bound to another office',
		                 CASE WHEN p_args ? 'cert_fingerprint' THEN '/cert_fingerprint'
		                      ELSE '/cert_subject' END);
	END;
	RETURN api_done(p_who, p_request_id, p_action, 'office', o.id::text, 200, office_json(o));
END $$;

CREATE OR REPLACE FUNCTION api_office_certificate_put(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE sql AS $$
	SELECT office_certificate_set(p_who, p_request_id, p_args, 'office.certificate_put')
$$;

CREATE OR REPLACE FUNCTION api_office_certificate_delete(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE sql AS $$
	SELECT office_certificate_set(p_who, p_request_id, p_args, 'office.certificate_delete')
$$;
