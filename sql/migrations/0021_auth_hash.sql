-- 0021_auth_hash.sql - auth_token also returns the stored hash, so the daemon
-- decides on a constant-time comparison of its own (daemon/auth.c) rather
-- than on the database's text comparison alone.
--
-- Owns: the new auth_token() body; everything else as in 0006_api_common.sql.

CREATE OR REPLACE FUNCTION auth_token(p_token_hash text) RETURNS jsonb
LANGUAGE plpgsql AS $$
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
		INTO who FROM offices o WHERE o.id = t.subject_id;
	WHEN 'worker' THEN
		SELECT jsonb_build_object('role', 'worker', 'id', w.id, 'org_id', w.organisation_id, 'programme', false)
		INTO who FROM workers w WHERE w.id = t.subject_id AND w.active;
	WHEN 'supervisor' THEN
		SELECT jsonb_build_object('role', 'supervisor', 'id', s.id, 'org_id', s.organisation_id,
		                          'programme', s.scope = 'programme')
		INTO who FROM supervisors s WHERE s.id = t.subject_id;
	WHEN 'admin' THEN
		SELECT jsonb_build_object('role', 'admin', 'id', a.id, 'org_id', NULL, 'programme', false)
		INTO who FROM admins a WHERE a.id = t.subject_id;
	END CASE;
	IF who IS NULL THEN
		RETURN NULL;
	END IF;
	IF t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute' THEN
		UPDATE tokens SET last_used_at = now() WHERE id = t.id;
	END IF;
	RETURN who || jsonb_build_object('token_id', t.id, 'token_hash', t.token_hash);
END $$;
