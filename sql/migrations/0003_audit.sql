-- 0003_audit.sql - what keeps an audit record encodable: no '|' and no
-- control character in any field, bounded lengths.
--
-- The chain itself (seq, prev_hash, hash), the triggers that build it and
-- refuse changes, audit_write() and audit_verify() are in
-- sql/functions/03_audit.sql, with the canonical content a record hashes.

ALTER TABLE audit_log
	ADD CHECK (actor_role !~ '[|[:cntrl:]]' AND length(actor_role) <= 32),
	ADD CHECK (actor_id !~ '[|[:cntrl:]]' AND length(actor_id) <= 64),
	ADD CHECK (action !~ '[|[:cntrl:]]' AND length(action) <= 64),
	ADD CHECK (object_type !~ '[|[:cntrl:]]' AND length(object_type) <= 32),
	ADD CHECK (object_id !~ '[|[:cntrl:]]' AND length(object_id) <= 64),
	ADD CHECK (request_id !~ '[|[:cntrl:]]' AND length(request_id) <= 64);
