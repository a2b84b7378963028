-- 0065_office_view_consent.sql - consent revocation (protocol v1.1, "What an
-- office sees", "Consent revocation"); the functions are in
-- sql/functions/07_referrals.sql and 12_consent.sql.
--
-- Owns: the revocation times of a referral's consent. consent_services may
-- now be false: it becomes false when the client revokes consent to
-- services (a referral is still never created without it: the submission
-- refuses that with 422 consent_required).

ALTER TABLE referrals DROP CONSTRAINT IF EXISTS referrals_consent_services_check;
ALTER TABLE referrals ADD COLUMN consent_revoked_at timestamptz,
                      ADD COLUMN report_back_revoked_at timestamptz;
ALTER TABLE referrals ADD CONSTRAINT referrals_consent_revoked
	CHECK (consent_services = (consent_revoked_at IS NULL));
