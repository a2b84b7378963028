-- 0071_access_forget.sql - a break-the-glass reason goes with the referral's
-- personal data (sql/functions/70_access.sql: access_forget_trg): the
-- record of the use stays (ids and times), its free text may be destroyed.

ALTER TABLE break_glass ALTER COLUMN reason_sealed DROP NOT NULL;
