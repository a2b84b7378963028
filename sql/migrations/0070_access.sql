-- 0070_access.sql - the records of exceptional access (protocol v1.1:
-- "Subject access" and "Break-the-glass"); their functions are
-- sql/functions/70_access.sql.
--
-- Owns: break_glass (who opened which assignment, until when, and why, the
-- why sealed) and subject_access_requests (who asked, why, sealed, and the
-- referral ids answered). Neither holds a UIC, its keyed hash or any other
-- client value: ids, times and sealed free text only. No foreign keys to the
-- referral rows: like the audit trail, these records outlive the rows the
-- retention purge deletes.

CREATE TABLE break_glass (
	id               uuid PRIMARY KEY,
	supervisor_id    uuid NOT NULL REFERENCES supervisors(id),
	-- The supervisor's organisation at the time (NULL: programme scope).
	organisation_id  uuid,
	assignment_id    uuid NOT NULL,
	referral_id      uuid NOT NULL,
	reason_sealed    text NOT NULL,
	created_at       timestamptz NOT NULL DEFAULT now(),
	expires_at       timestamptz NOT NULL,
	CHECK (expires_at > created_at)
);
-- "Is this supervisor's window on this assignment open?" at every read.
CREATE INDEX break_glass_window ON break_glass (assignment_id, supervisor_id, expires_at);
CREATE INDEX break_glass_created ON break_glass (created_at DESC, id DESC);

CREATE TABLE subject_access_requests (
	id               uuid PRIMARY KEY,
	supervisor_id    uuid NOT NULL REFERENCES supervisors(id),
	reason_sealed    text NOT NULL,
	referral_ids     uuid[] NOT NULL,
	created_at       timestamptz NOT NULL DEFAULT now()
);

-- Subject access finds every referral of a client, closed ones too (the
-- index of 0002 covers open referrals only).
CREATE INDEX referrals_uic ON referrals (uic_hash);

DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'referrald_app') THEN
		-- Insert-only: a record of exceptional access is never changed.
		EXECUTE 'GRANT SELECT, INSERT ON break_glass, subject_access_requests TO referrald_app';
	END IF;
END $$;
