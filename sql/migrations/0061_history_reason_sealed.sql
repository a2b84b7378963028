-- 0061_history_reason_sealed.sql - a reassignment's reason (a supervisor's
-- free text about the case) is sealed by the daemon under the referral's
-- data key like every other free text of it (issue 10 section 3), so it is
-- erased with the key; the clear column keeps codes and the reasons of rows
-- written before.

ALTER TABLE assignment_history ADD COLUMN reason_sealed text;
