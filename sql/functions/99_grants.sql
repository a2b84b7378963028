-- 99_grants.sql - EXECUTE for the runtime role, applied after every other
-- function file so that no later file can hand back what is withheld here.
--
-- Owns: the one blanket grant of EXECUTE to referrald_app and its exceptions.
-- Must never: be split up again; a file of functions ending in its own
-- "GRANT ... ON ALL FUNCTIONS" re-granted the bootstrap functions once
-- (trust_tokens.bats and sql_referrals.bats caught it).

DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'referrald_app') THEN
		EXECUTE 'GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO referrald_app';
		-- ... except the bootstrap: only the schema owner (the CLI) mints an
		-- admin token.
		EXECUTE 'REVOKE EXECUTE ON FUNCTION mint_admin_token(text, text, text, bigint), '
		        'admin_ensure(text) FROM referrald_app';
	END IF;
	EXECUTE 'REVOKE EXECUTE ON FUNCTION mint_admin_token(text, text, text, bigint), '
	        'admin_ensure(text) FROM PUBLIC';
END $$;
