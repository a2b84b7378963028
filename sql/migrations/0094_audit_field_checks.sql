-- 0094_audit_field_checks.sql - the audit record's field rules move from
-- eight CHECK constraints into its append trigger (issue 12).
--
-- Owns: dropping audit_log's per-field CHECKs (migrations 0003 and 0041).
-- The same rules, unchanged (no '|' or control character in a field that
-- the canonical form joins, the same length bounds, outcome one of ok,
-- denied, error), are refused by audit_append_trg() in
-- sql/functions/03_audit.sql, which runs before every insert whoever
-- inserts (a record's content can never change after: audit_no_update).
-- Must never: hold a function body, or loosen a rule.
--
-- Why: PostgreSQL rebuilds a table's CHECK expressions from their stored
-- text for every INSERT statement. Each audited request writes one record
-- in its own statement, and the eight CHECKs were a fifth of the whole
-- audited read's CPU (callgrind: about 395,000 of 1.98 million instructions
-- per read). A PL/pgSQL trigger keeps its expressions for the session.
-- The sealing CHECKs (audit_log_sealed_whole, audit_log_unsealed_xid,
-- audit_log_version_check) stay: the sealer's UPDATE needs them.
ALTER TABLE audit_log
	DROP CONSTRAINT audit_log_action_check,
	DROP CONSTRAINT audit_log_actor_id_check,
	DROP CONSTRAINT audit_log_actor_role_check,
	DROP CONSTRAINT audit_log_credential_id_check,
	DROP CONSTRAINT audit_log_object_id_check,
	DROP CONSTRAINT audit_log_object_type_check,
	DROP CONSTRAINT audit_log_outcome_check,
	DROP CONSTRAINT audit_log_request_id_check;
