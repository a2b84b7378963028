-- 0030_trust_tokens.sql - trust boundaries (issue 9, findings 1, 2, 6-10):
-- keyed and bound token rows, sealed values bound to their rows, every
-- free-text field sealed, credentials that can be listed and stopped,
-- webhooks that cannot reach the inside, events that cannot be backdated.
--
-- Owns: tokens.binding/issued_by, offices.active, supervisors.active,
-- webhooks.programme, the *_sealed free-text columns, and the table rights
-- of the runtime role on tokens and office_certs. The functions that use
-- them (token_insert, auth_token, sealed_ref, api_token_list, ...) are in
-- sql/functions/.
-- Must never: give the runtime role a direct write on tokens; return a
-- sealed value without naming the row, column and table it is bound to; keep
-- a worker's reason where the next worker offered the assignment can see it.
--
-- Token rows: token_hash is HMAC-SHA256 of the token under the daemon's
-- token key file (never in the database), and binding is HMAC under the same
-- key of "bind|v1|" token_hash "|" role "|" subject_id "|" expires (Unix
-- seconds), checked by the daemon at every authentication. So a row inserted
-- or altered (role, subject, expiry) by someone holding the database but not
-- the key file never authenticates. Rows from before this migration have no
-- binding and stop authenticating (mint new tokens; nothing has shipped).
--
-- Sealed values: the daemon seals each with AES-256-GCM whose associated
-- data is "v2|" kid "|" table "|" column "|" row id, so the functions
-- (sql/functions) hand every sealed value out as sealed_ref(table, column,
-- row, value) and the daemon opens it only at that place (daemon/api_call.c
-- open_rules).

-- Schema ------------------------------------------------------------------------

ALTER TABLE tokens ADD COLUMN binding text CHECK (binding ~ '^[0-9a-f]{64}$'),
                   ADD COLUMN issued_by text,
                   ADD COLUMN issued_by_role text;
COMMENT ON COLUMN tokens.token_hash IS 'HMAC-SHA256 of the token under [security] token_key_file';
COMMENT ON COLUMN tokens.binding IS 'HMAC of hash, role, subject and expiry under the token key';
ALTER TABLE offices ADD COLUMN active boolean NOT NULL DEFAULT true;
ALTER TABLE supervisors ADD COLUMN active boolean NOT NULL DEFAULT true;
ALTER TABLE webhooks ADD COLUMN programme boolean NOT NULL DEFAULT false;
ALTER TABLE webhooks ADD CHECK (NOT programme OR (organisation_id IS NULL AND office_id IS NULL));
-- Free text about a client's case is sealed like the note; the clear
-- columns go. assignments.reason stays for system codes only
-- (referral_withdrawn, a fail reason code).
ALTER TABLE referrals DROP COLUMN withdrawn_reason;
ALTER TABLE referrals ADD COLUMN withdrawn_reason_sealed text;
ALTER TABLE assignments ADD COLUMN reason_sealed text;
ALTER TABLE assignment_events DROP COLUMN outcome;
ALTER TABLE assignment_events ADD COLUMN outcome_sealed text;
-- A decline reason is kept with the assignment only until it is offered
-- again (offer_make clears it); offers keep codes, never free text.
UPDATE offers SET reason = NULL WHERE outcome = 'declined';

-- Grants --------------------------------------------------------------------------
-- Row-level security here keys on app.* settings any session can set: it
-- catches mistakes in our own SQL, not a hostile runtime role (SECURITY.md).
-- Tables without policies, and why: offers, deadlines, escalations (read
-- only through functions that check scope on the assignment they belong
-- to); outbox (ids and detail_url only, no client data); tokens (no direct
-- write, only keyed hashes: a row is worthless without the token key);
-- webhooks (secrets sealed under their own subkey, bound to their row);
-- idempotency_keys (stored answers of submissions, which carry no sealed
-- field). A policy on them would guard the same functions that already
-- decide scope, against nothing a forged app.role could not also lift.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'referrald_app') THEN
		RETURN;
	END IF;
	EXECUTE 'REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON tokens FROM referrald_app';
	EXECUTE 'GRANT DELETE ON office_certs TO referrald_app';
END $$;
