-- 0041_audit_ledger_v2.sql - the schema of the audit ledger v2: append
-- unsealed, seal later. The code (triggers, audit_write, audit_seal, the
-- head, the verifier) is in sql/functions/03_audit.sql.
--
-- Owns: the v2 columns of audit_log (id, xid, credential_id, version,
-- sealed_at), its indexes and constraints, audit_head_published, and the
-- runtime role's table rights on them (none to write).
-- Must never: give the runtime role a write on audit_log, audit_chain_head or
-- audit_head_published (only SECURITY DEFINER functions write them).
--
-- Why v2. v1 chained every record at insert time under one chain-head row
-- lock and kept the running seq/hash in session settings, which the runtime
-- role could set itself (it moved the head and made --verify-audit report a
-- "removed" record that never was) and which serialised every auditing
-- transaction. v2:
--   1. A request's transaction appends its records unsealed (seq, prev_hash,
--      hash NULL) through audit_write(), SECURITY DEFINER, with no lock on
--      any shared row. Each record carries its top-level transaction id
--      (xid, pg_current_xact_id(), set by the trigger below whatever the
--      caller passes).
--   2. One sealer at a time (pg_try_advisory_xact_lock; a periodic job of
--      every daemon, the others skip) runs audit_seal(): it reads the
--      snapshot's xmin horizon H = pg_snapshot_xmin(pg_current_snapshot())
--      first; every transaction with xid < H has ended, so no record with
--      xid < H can appear any more. It seals exactly those, ordered by
--      (xid, id), continuing the chain from the head. Records of
--      transactions still running (or younger than the oldest running one)
--      wait for a later run. Because each run seals everything below a
--      horizon that never moves backwards, the (xid, id) order of all sealed
--      records is one total order: no later record can ever be sealed in
--      front of an earlier seal (no fork), seq is dense (it is assigned in
--      the sealer's own transaction; a sealer that dies rolls back whole)
--      and a rolled-back request leaves no record to seal (no gap).
--   3. A sealed record never changes (the update trigger allows only the
--      one transition unsealed -> sealed, without touching content).
-- The price: a record is chained a little after its commit (the sealing
-- lag), and one long-running transaction anywhere in the cluster holds the
-- horizon back; --verify-audit reports unsealed records older than
-- [audit] max_unsealed_age.
--
-- Canonical content of a v2 record (what the C verifier rebuilds):
--   v2|seq|at|actor_role|actor_id|credential_id|action|object_type|object_id|
--   outcome|request_id
-- at as YYYY-MM-DDTHH:MM:SS.ffffffZ (UTC), NULL as the empty string;
-- hash = sha256(prev_hash || utf8(canonical)). v1 records (version 1, made
-- before this migration) keep their v1 form (0003_audit.sql).

ALTER TABLE audit_log
	ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY,
	ADD COLUMN xid xid8,
	ADD COLUMN credential_id text
		CHECK (credential_id !~ '[|[:cntrl:]]' AND length(credential_id) <= 80),
	ADD COLUMN version smallint NOT NULL DEFAULT 1 CHECK (version IN (1, 2)),
	ADD COLUMN sealed_at timestamptz;
ALTER TABLE audit_log ALTER COLUMN version SET DEFAULT 2;
ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey;
ALTER TABLE audit_log ALTER COLUMN seq DROP NOT NULL,
	ALTER COLUMN prev_hash DROP NOT NULL,
	ALTER COLUMN hash DROP NOT NULL;
ALTER TABLE audit_log ADD PRIMARY KEY (id);
CREATE UNIQUE INDEX audit_log_seq ON audit_log (seq);
CREATE INDEX audit_log_unsealed ON audit_log (xid, id) WHERE seq IS NULL;
ALTER TABLE audit_log
	ADD CONSTRAINT audit_log_sealed_whole
		CHECK ((seq IS NULL) = (hash IS NULL) AND (seq IS NULL) = (prev_hash IS NULL)),
	ADD CONSTRAINT audit_log_unsealed_xid CHECK (seq IS NOT NULL OR xid IS NOT NULL);

-- When the head was last published, so several daemons publish one
-- audit.head per interval between them.
CREATE TABLE audit_head_published (
	one  boolean PRIMARY KEY DEFAULT true CHECK (one),
	at   timestamptz NOT NULL,
	seq  bigint NOT NULL
);

-- Least privilege for v2: no direct INSERT any more (audit_write is the way
-- in), nothing on the head tables.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'referrald_app') THEN
		RETURN;
	END IF;
	EXECUTE 'REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_log FROM referrald_app';
	EXECUTE 'REVOKE ALL ON audit_chain_head, audit_head_published FROM referrald_app';
	EXECUTE 'GRANT SELECT ON audit_chain_head TO referrald_app';
END $$;
