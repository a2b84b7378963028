-- 12_consent.sql - consent revocation (protocol v1.1, "Consent revocation").
--
-- Owns: api_referral_consent_revoke and its steps: who may revoke, the
-- services revocation (assignments cancelled, deadlines ended without
-- escalation, offers withdrawn, the referral's personal data destroyed,
-- closed) and the report-back revocation (the office's view without
-- report-back from then on; outbox_claim stops engagement events).
-- Must never: change anything on a refusal or on a repeated revocation,
-- emit referral.closed for a revocation, or put client data into an event.

-- May the caller revoke this referral's consent? The submitting office; a
-- worker holding an open assignment of it; a supervisor whose organisation
-- holds one. Once the scope was revoked, those who held one may still ask
-- again (and are told it is done).
CREATE OR REPLACE FUNCTION consent_revoke_allowed(r referrals, p_who jsonb, p_done boolean)
RETURNS boolean LANGUAGE sql STABLE AS $$
	SELECT CASE p_who->>'role'
	WHEN 'office' THEN r.office_id::text = p_who->>'id'
	WHEN 'worker' THEN EXISTS (
		SELECT 1 FROM assignments a
		WHERE a.referral_id = r.id AND a.worker_id::text = p_who->>'id'
		  AND (assignment_is_open(a.status) OR (p_done AND a.reason = 'consent_revoked')))
	WHEN 'supervisor' THEN EXISTS (
		SELECT 1 FROM assignments a
		WHERE a.referral_id = r.id AND a.organisation_id::text = p_who->>'org_id'
		  AND (assignment_is_open(a.status) OR (p_done AND a.reason = 'consent_revoked')))
	ELSE false END
$$;

-- services: every open assignment cancelled (its pending offer withdrawn,
-- its deadlines void, its escalations resolved: nothing escalates), the
-- personal data destroyed, the referral closed. The referral is closed
-- first, so the assignments' trigger does not announce referral.closed.
CREATE OR REPLACE FUNCTION consent_revoke_services(r referrals, p_at timestamptz) RETURNS referrals
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE referrals SET consent_services = false, consent_revoked_at = p_at,
	       status = CASE WHEN status = 'open' THEN 'closed' ELSE status END,
	       closed_at = CASE WHEN status = 'open' THEN now() ELSE closed_at END,
	       updated_at = now()
	WHERE id = r.id RETURNING * INTO r;
	PERFORM referral_cancel_assignments(r.id, 'withdrawn', 'consent_revoked', false);
	-- Contact, note, every free-text field and the UIC's keyed hash go, and
	-- the referral's data key is queued for deletion from the key store
	-- (crypto-erasure: 60_retention.sql), in this transaction.
	PERFORM referral_forget(r.id);
	-- The organisations that held it must stop too.
	INSERT INTO outbox (type, payload, organisation_id)
	SELECT DISTINCT 'referral.consent_revoked',
	       jsonb_build_object('referral_id', r.id, 'scope', 'services',
	                          'detail_url', '/v1/referrals/' || r.id),
	       a.organisation_id
	FROM assignments a WHERE a.referral_id = r.id AND a.organisation_id IS NOT NULL;
	SELECT * INTO r FROM referrals WHERE id = r.id;
	RETURN r;
END $$;

CREATE OR REPLACE FUNCTION consent_revoke_report_back(r referrals, p_at timestamptz) RETURNS referrals
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE referrals SET consent_report_back = false, report_back_revoked_at = p_at,
	       updated_at = now()
	WHERE id = r.id RETURNING * INTO r;
	RETURN r;
END $$;

-- POST /v1/referrals/{id}/consent/revoke. Args: id, scope (services |
-- report_back), recorded_at (RFC 3339, not in the future).
CREATE OR REPLACE FUNCTION api_referral_consent_revoke(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	v_scope text := p_args->>'scope';
	v_at timestamptz;
	r referrals;
	done boolean;
	err jsonb := api_check(p_who, p_request_id, 'referral.consent_revoke',
	                       ARRAY['office', 'worker', 'supervisor']);
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	IF NOT is_value_of(v_scope, 'consent_scope') THEN
		RETURN api_error(400, 'invalid_value', 'scope must be services or report_back', '/scope');
	END IF;
	BEGIN
		v_at := (p_args->>'recorded_at')::timestamptz;
	EXCEPTION WHEN OTHERS THEN
		RETURN api_error(400, 'invalid_value', 'recorded_at must be an RFC 3339 time', '/recorded_at');
	END;
	IF v_at IS NULL THEN
		RETURN api_error(400, 'missing_field', 'recorded_at is required', '/recorded_at');
	END IF;

	-- The referral and its assignments are looked at in system scope (a
	-- worker's view of referrals is narrower than the rule above), and
	-- the rule decides.
	PERFORM ctx_system();
	SELECT * INTO r FROM referrals WHERE id = try_uuid(p_args->>'id') FOR UPDATE;
	done := CASE v_scope WHEN 'services' THEN r.consent_revoked_at IS NOT NULL
	                   ELSE NOT r.consent_report_back END;
	IF r.id IS NULL OR NOT consent_revoke_allowed(r, p_who, done) THEN
		PERFORM ctx_caller();
		RETURN api_not_found(p_who, p_request_id, 'referral.consent_revoke', 'referral', p_args->>'id');
	END IF;
	IF v_at > now() THEN
		PERFORM ctx_caller();
		RETURN api_error(422, 'invalid_value', 'recorded_at lies in the future', '/recorded_at');
	END IF;

	IF NOT done THEN
		IF v_scope = 'services' THEN
			r := consent_revoke_services(r, v_at);
		ELSE
			r := consent_revoke_report_back(r, v_at);
		END IF;
		INSERT INTO outbox (type, payload, office_id)
		VALUES ('referral.consent_revoked',
		        jsonb_build_object('referral_id', r.id, 'scope', v_scope,
		                           'detail_url', '/v1/referrals/' || r.id),
		        r.office_id);
	END IF;
	PERFORM ctx_caller();
	RETURN api_done(p_who, p_request_id, 'referral.consent_revoke', 'referral', r.id::text, 200,
	                referral_json(r));
END $$;
