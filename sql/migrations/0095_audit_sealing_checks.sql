-- 0095_audit_sealing_checks.sql - audit_log's last three CHECKs move into
-- its triggers (issue 12), as the field rules did in 0094.
--
-- Owns: dropping audit_log_sealed_whole, audit_log_unsealed_xid and
-- audit_log_version_check (migration 0041).
-- The same rules hold for every change the triggers let through
-- (sql/functions/03_audit.sql): audit_append_trg() makes every new record
-- unsealed (seq, prev_hash and hash NULL), of version 2 and with its
-- transaction's id, whoever inserts; audit_no_update refuses any update but
-- the one sealing of an unsealed record that sets seq, prev_hash and hash
-- together and leaves id, xid, version and content as they were; no
-- record is deleted. So a record is sealed whole or not at all, an unsealed
-- one has its xid, and its version is 1 (made before ledger v2) or 2.
-- Must never: hold a function body, or loosen a rule for a change the
-- triggers let through. (With triggers disabled, a superuser could always
-- also drop a CHECK: the hash chain and the signed head are what catch it.)
--
-- Why: PostgreSQL rebuilds each CHECK's expression from its stored text for
-- every INSERT statement. An audited read writes one record in its own
-- statement; these three were 77,000 of its 1.42 million instructions
-- (callgrind).
ALTER TABLE audit_log
	DROP CONSTRAINT audit_log_sealed_whole,
	DROP CONSTRAINT audit_log_unsealed_xid,
	DROP CONSTRAINT audit_log_version_check;
