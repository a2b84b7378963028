-- 0090_referral_field_checks.sql - a referral's field rules move from eight
-- CHECK constraints into a trigger (issue 12), as audit_log's did in 0094.
--
-- Owns: dropping the referrals CHECKs of migrations 0002, 0060, 0065 and
-- 0075. The same rules, unchanged and under the same names (birth year
-- 1900-2200, consent_services exactly when consent_revoked_at is NULL,
-- external_ref 1-64 characters, external_ref_hash and uic_hash 64 lower-case
-- hex digits, at least one language, one or two needs each a value of the
-- need domain, region a slug of 1-64), are refused by referral_checks_trg()
-- in sql/functions/07_referrals.sql, before every insert and update whoever
-- writes, with the error a CHECK gives (check_violation, the constraint's
-- name).
-- Must never: hold a function body, or loosen a rule.
--
-- Why: PostgreSQL rebuilds a table's CHECK expressions from their stored
-- text, and plans them, for every INSERT or UPDATE statement. A submission
-- writes its referral in one statement, and these eight were about 340,000
-- of its 8.3 million instructions (callgrind, tests/bench/README); a
-- PL/pgSQL trigger keeps its expression for the session.
ALTER TABLE referrals
	DROP CONSTRAINT referrals_birth_year_check,
	DROP CONSTRAINT referrals_consent_revoked,
	DROP CONSTRAINT referrals_external_ref_check,
	DROP CONSTRAINT referrals_external_ref_hash_check,
	DROP CONSTRAINT referrals_languages_check,
	DROP CONSTRAINT referrals_needs_check,
	DROP CONSTRAINT referrals_region_check,
	DROP CONSTRAINT referrals_uic_hash_check;
