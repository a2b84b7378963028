-- 0050_sign_in.sql - the tables of one-time sign-in codes for the web pages
-- (issue 14); their functions are sql/functions/50_sign_in.sql.
--
-- Owns: sign_in_codes (codes only as keyed hashes, spent once). Failed
-- sign-ins are failed authentications: limited per address in the daemon
-- (auth_limits.c) and audited like any other.

CREATE TABLE sign_in_codes (
	id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	role            text NOT NULL CHECK (role IN ('office', 'worker', 'supervisor', 'admin')),
	subject_id      uuid NOT NULL,
	code_hash       text NOT NULL UNIQUE CHECK (code_hash ~ '^[0-9a-f]{64}$'),
	issued_by_role  text NOT NULL,
	issued_by       uuid NOT NULL,
	expires_at      timestamptz NOT NULL,
	used_at         timestamptz,
	token_id        uuid REFERENCES tokens(id),
	created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sign_in_codes_subject ON sign_in_codes (subject_id);

DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'referrald_app') THEN
		EXECUTE 'GRANT SELECT, INSERT, UPDATE ON sign_in_codes TO referrald_app';
	END IF;
END $$;
