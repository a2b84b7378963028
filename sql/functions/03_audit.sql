-- 03_audit.sql - the hash-chained, insert-only audit trail.
--
-- Owns: audit_log's chain (seq, prev_hash, hash), the triggers that build it
-- and refuse changes, audit_write() used by every api_ function, and
-- audit_verify().
-- Must never: store client data (only roles, ids, action names, outcomes and
-- request ids), or let anyone but a superuser who disables the triggers alter
-- a record.
--
-- Canonical content of a record (what the C verifier must rebuild byte for
-- byte): the fields joined with '|', in this order,
--   seq | at as YYYY-MM-DDTHH:MM:SS.ffffffZ (UTC) | actor_role | actor_id |
--   action | object_type | object_id | outcome | request_id
-- with NULL as the empty string; hash = sha256(prev_hash || utf8(canonical)),
-- prev_hash of seq 1 is 32 zero bytes. The CHECKs of migration 0003 keep '|' and control
-- characters out of every field so the encoding is unambiguous.


CREATE OR REPLACE FUNCTION audit_canonical(a audit_log) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT a.seq::text
		|| '|' || to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
		|| '|' || a.actor_role
		|| '|' || coalesce(a.actor_id, '')
		|| '|' || a.action
		|| '|' || coalesce(a.object_type, '')
		|| '|' || coalesce(a.object_id, '')
		|| '|' || a.outcome
		|| '|' || coalesce(a.request_id, '')
$$;

-- Why one chain-head row: a hash chain needs a total order in which each
-- record knows its predecessor's hash at insert time, and that order must be
-- the commit order, or a later-committed record could point at a predecessor
-- that rolls back (a broken chain) or two records could share one
-- predecessor (a fork). Locking the single head row (FOR UPDATE, held until
-- the transaction ends) lets auditing transactions pass one at a time, and a
-- rollback undoes everything it did: no gaps, no forks, dense sequence numbers
-- (a sequence would leave gaps on rollback, which the verifier could not tell
-- from a deleted record). The price is that auditing transactions serialise
-- from their first audit insert to commit; the api_ functions therefore write
-- their audit records as their last statements, so the lock is held only for
-- the commit itself. Measured on 2 cores with fsync on, this caps auditing
-- transactions at roughly one per commit flush (about 200 submissions/s here:
-- no group commit among them). If that ever binds, the way out is to chain
-- lazily: insert records unchained (no lock) and let one sealer job assign
-- seq and hashes in commit order; the verifier then checks sealed records.
-- Within one transaction the head is locked once; the running seq and hash
-- are kept in transaction-local settings (undone with a rolled-back
-- sub-transaction, like the rows themselves), and the head row is written
-- once, at commit, by a deferred trigger. Updating it for every record would
-- leave one dead row version per record that the same transaction must walk
-- past on its next read: quadratic for bulk inserts.
-- SECURITY DEFINER so the daemon's role needs no right on audit_chain_head
-- and cannot move the head itself; search_path is pinned for that reason.
CREATE OR REPLACE FUNCTION audit_chain_trg() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
	last_seq bigint := nullif(current_setting('audit.last_seq', true), '')::bigint;
	last_hash bytea;
BEGIN
	IF last_seq IS NULL THEN
		SELECT h.last_seq, h.last_hash INTO STRICT last_seq, last_hash
		FROM audit_chain_head h WHERE h.one FOR UPDATE;
	ELSE
		last_hash := decode(current_setting('audit.last_hash'), 'hex');
	END IF;
	NEW.seq := last_seq + 1;
	NEW.at := clock_timestamp();
	NEW.prev_hash := last_hash;
	NEW.hash := sha256(last_hash || convert_to(audit_canonical(NEW), 'UTF8'));
	PERFORM set_config('audit.last_seq', NEW.seq::text, true),
	        set_config('audit.last_hash', encode(NEW.hash, 'hex'), true);
	RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER audit_chain BEFORE INSERT ON audit_log
	FOR EACH ROW EXECUTE FUNCTION audit_chain_trg();

-- At commit: the transaction's last record becomes the head.
CREATE OR REPLACE FUNCTION audit_head_trg() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
	IF NEW.seq = nullif(current_setting('audit.last_seq', true), '')::bigint THEN
		UPDATE audit_chain_head SET last_seq = NEW.seq, last_hash = NEW.hash WHERE one;
	END IF;
	RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS audit_head ON audit_log;
CREATE CONSTRAINT TRIGGER audit_head AFTER INSERT ON audit_log
	DEFERRABLE INITIALLY DEFERRED
	FOR EACH ROW EXECUTE FUNCTION audit_head_trg();

CREATE OR REPLACE FUNCTION audit_refuse_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE OR REPLACE TRIGGER audit_no_update BEFORE UPDATE OR DELETE ON audit_log
	FOR EACH ROW EXECUTE FUNCTION audit_refuse_trg();
CREATE OR REPLACE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_trg();

-- One audit record. p_who is the principal ({"role","id"}); the trigger
-- fills seq, time and hashes, whatever the caller passes.
CREATE OR REPLACE FUNCTION audit_write(p_who jsonb, p_request_id text, p_action text,
                            p_object_type text, p_object_id text, p_outcome text)
RETURNS void LANGUAGE sql AS $$
	INSERT INTO audit_log (seq, at, actor_role, actor_id, action, object_type,
	                       object_id, outcome, request_id, prev_hash, hash)
	VALUES (0, now(), coalesce(p_who->>'role', 'system'), p_who->>'id', p_action,
	        p_object_type, p_object_id, p_outcome, p_request_id, ''::bytea, ''::bytea)
$$;

-- Walk the chain from p_from_seq (1 = the start) for at most p_limit records.
-- Reports the first record whose position, link or hash does not match:
-- an altered record fails its hash, a removed one leaves a gap in seq or a
-- broken link, an inserted one breaks its successor's link.
CREATE OR REPLACE FUNCTION audit_verify(p_from_seq bigint DEFAULT 1, p_limit integer DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
	a audit_log;
	expect_seq bigint := greatest(p_from_seq, 1);
	prev bytea;
	n bigint := 0;
BEGIN
	IF expect_seq = 1 THEN
		prev := decode(repeat('00', 32), 'hex');
	ELSE
		SELECT hash INTO prev FROM audit_log WHERE seq = expect_seq - 1;
		IF prev IS NULL THEN
			RETURN jsonb_build_object('checked', 0, 'first_bad_seq', expect_seq - 1,
			                          'reason', 'missing');
		END IF;
	END IF;
	FOR a IN SELECT * FROM audit_log WHERE seq >= expect_seq ORDER BY seq
	         LIMIT p_limit LOOP
		IF a.seq <> expect_seq THEN
			RETURN jsonb_build_object('checked', n, 'first_bad_seq', expect_seq,
			                          'reason', 'missing');
		END IF;
		IF a.prev_hash <> prev THEN
			RETURN jsonb_build_object('checked', n, 'first_bad_seq', a.seq,
			                          'reason', 'broken_link');
		END IF;
		IF a.hash <> sha256(prev || convert_to(audit_canonical(a), 'UTF8')) THEN
			RETURN jsonb_build_object('checked', n, 'first_bad_seq', a.seq,
			                          'reason', 'altered');
		END IF;
		prev := a.hash;
		expect_seq := expect_seq + 1;
		n := n + 1;
	END LOOP;
	-- The head remembers the last record: a removed tail shows here.
	IF p_limit IS NULL AND (SELECT last_seq FROM audit_chain_head) <> expect_seq - 1 THEN
		RETURN jsonb_build_object('checked', n, 'first_bad_seq', expect_seq,
		                          'reason', 'missing');
	END IF;
	RETURN jsonb_build_object('checked', n, 'first_bad_seq', NULL, 'reason', NULL);
END $$;
