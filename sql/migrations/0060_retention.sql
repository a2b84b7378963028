-- 0060_retention.sql - crypto-erasure and retention (issue 10 section 3);
-- the functions are sql/functions/60_retention.sql.
--
-- Owns: the columns that let a referral's personal fields be destroyed
-- (external_ref sealed beside a keyed hash for the per-office uniqueness
-- check; the UIC's keyed hash may go; forgotten_at), the queue of data keys
-- the daemon must delete from the key store (data_key_erasures), the one
-- retention policy row, and the anonymous facts the follow-up report keeps
-- after a referral's rows are deleted.
-- Must never: hold a data key, a clear personal field, or in the facts a
-- referral, assignment or worker id.
--
-- Each referral's personal fields (contact, note, external_ref, the free
-- text of its assignments and events) are sealed by the daemon under a data
-- key of its own. The data key lives only in the key store, a separate
-- database ([security] key_store_conninfo), wrapped by the keyring's
-- key-encryption key; a dump of this database never contains it.

-- external_ref: new rows keep only external_ref_sealed (opened for the
-- office) and external_ref_hash (the daemon's keyed hash of office id and
-- reference, for the duplicate check). Rows written before this migration
-- keep their clear external_ref. uic_hash goes when the referral's personal
-- data is destroyed: only open referrals link clients.
ALTER TABLE referrals ALTER COLUMN external_ref DROP NOT NULL;
ALTER TABLE referrals ALTER COLUMN uic_hash DROP NOT NULL;
ALTER TABLE referrals ADD COLUMN external_ref_sealed text,
                      ADD COLUMN external_ref_hash text CHECK (external_ref_hash ~ '^[0-9a-f]{64}$'),
                      ADD COLUMN forgotten_at timestamptz;
CREATE UNIQUE INDEX referrals_office_ref_hash ON referrals (office_id, external_ref_hash);
-- The retention job reads only these: closed referrals by the time they
-- closed (referral_closed_at() in the functions), those whose personal data still exists, and all of them.
CREATE INDEX referrals_closed_unforgotten ON referrals ((coalesce(closed_at, withdrawn_at, updated_at)))
	WHERE status <> 'open' AND forgotten_at IS NULL;
CREATE INDEX referrals_closed_time ON referrals ((coalesce(closed_at, withdrawn_at, updated_at)))
	WHERE status <> 'open';
CREATE INDEX referrals_duplicate_of ON referrals (duplicate_of) WHERE duplicate_of IS NOT NULL;

-- The purge finds a referral's rows through these.
CREATE INDEX outbox_referral ON outbox ((payload->>'referral_id'));
CREATE INDEX outbox_assignment ON outbox ((payload->>'assignment_id'));
CREATE INDEX escalations_assignment ON escalations (assignment_id);
CREATE INDEX deadlines_offer ON deadlines (offer_id) WHERE offer_id IS NOT NULL;
CREATE INDEX assignments_replaces ON assignments (replaces) WHERE replaces IS NOT NULL;
CREATE INDEX assignments_replaced_by ON assignments (replaced_by) WHERE replaced_by IS NOT NULL;
CREATE INDEX idempotency_keys_referral ON idempotency_keys ((response->>'id'));

-- Data keys the key store must lose. referral_forget() queues one in the
-- transaction that destroys the sealed columns; the daemon deletes it from
-- the key store right after that commits, and its erasure job retries until
-- the queue is empty (deleting twice is harmless).
CREATE TABLE data_key_erasures (
	referral_id  uuid PRIMARY KEY,
	queued_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX data_key_erasures_queued ON data_key_erasures (queued_at);

CREATE TABLE retention_policy (
	one                  boolean PRIMARY KEY DEFAULT true CHECK (one),
	contact_after_close  interval NOT NULL DEFAULT '30 days' CHECK (contact_after_close > '0'),
	record_after_close   interval NOT NULL DEFAULT '730 days' CHECK (record_after_close > '0'),
	updated_at           timestamptz NOT NULL DEFAULT now()
);
INSERT INTO retention_policy (one) VALUES (true);

-- What the follow-up report needs of purged rows, and nothing that names a
-- referral, an assignment or a worker.
CREATE TABLE deadline_facts (
	kind             text NOT NULL,
	organisation_id  uuid,
	office_id        uuid,
	region           text NOT NULL,
	need             text NOT NULL,
	state            text NOT NULL,
	starts_at        timestamptz NOT NULL,
	due_at           timestamptz NOT NULL,
	met_at           timestamptz,
	elapsed          interval
);
CREATE INDEX deadline_facts_starts ON deadline_facts (starts_at);
CREATE TABLE assignment_facts (
	organisation_id  uuid,
	office_id        uuid,
	region           text NOT NULL,
	need             text NOT NULL,
	urgency          text NOT NULL,
	status           text NOT NULL,
	outcome          text,
	created_at       timestamptz NOT NULL,
	accepted_at      timestamptz,
	first_contact_at timestamptz,
	ended_at         timestamptz
);
CREATE INDEX assignment_facts_created ON assignment_facts (created_at);

-- The runtime role reads and sets the policy and reads the facts; the
-- queue, the forgetting and the purge go through SECURITY DEFINER functions.
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'referrald_app') THEN
		EXECUTE 'GRANT SELECT, UPDATE ON retention_policy TO referrald_app';
		EXECUTE 'GRANT SELECT ON deadline_facts, assignment_facts TO referrald_app';
	END IF;
END $$;
