-- 41_rematch.sql - unassigned is never the end: re-matching.
--
-- Owns: the notices (table rematch_notices, migration 0040: left by any
-- transaction after which a candidate may exist), the workers trigger that
-- leaves them, and rematch_run() (the re-matching job's statement: drain
-- the notices, or every [matching] rematch_interval look at every region and
-- kind). match_assignment() (05_matching.sql) emits `assignment.unassigned`
-- once per fall-through, with the organisation that last held it.
-- Must never: offer one assignment twice or a worker over capacity when
-- several daemons re-match at once; cost one candidate query per unassigned
-- assignment when nobody is free.
--
-- When may a candidate exist? Only when some worker changes: a slot is freed
-- (complete, fail, cancel, withdraw, decline, expiry, reassignment away all
-- lower workers.open_count through the assignments trigger), capacity rises,
-- a worker is created, activated or back from leave, or its regions or
-- languages change. So one AFTER trigger on workers covers every trigger of
-- the protocol, whatever function made the change, and leaves one notice row
-- per (region, kind) the worker serves, in the changing transaction: the
-- notice exists exactly when the change commits.
--
-- Cost of a pass: the unassigned assignments are indexed by (region, need,
-- created_at); the distinct (region, need) pairs are found by a skip scan
-- (one index probe per pair), and for each pair one probe of workers (GIN on
-- regions) says whether anybody has a free slot. With 10,000 unassigned and
-- nobody free a pass is those probes only (tests/bench/rematch.sh).
--
-- Exactly once with several daemons: each assignment is taken with FOR
-- UPDATE SKIP LOCKED and re-checked 'unassigned'; the worker is locked and
-- re-checked below capacity by match_candidate (0005). A candidate busy in
-- another transaction is a retry (the pair's notice is put back), never a
-- wrong "nobody".

CREATE OR REPLACE FUNCTION worker_rematch_notice_trg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT NEW.active OR NEW.on_leave OR NEW.open_count >= NEW.capacity THEN
		RETURN NULL;
	END IF;
	IF TG_OP = 'INSERT' OR NEW.capacity > OLD.capacity OR NEW.open_count < OLD.open_count
	   OR NOT OLD.active OR OLD.on_leave OR NEW.kind <> OLD.kind
	   OR NEW.regions IS DISTINCT FROM OLD.regions
	   OR NEW.languages IS DISTINCT FROM OLD.languages THEN
		INSERT INTO rematch_notices (region, need)
		SELECT DISTINCT r, NEW.kind FROM unnest(NEW.regions) r;
	END IF;
	RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER worker_rematch_notice AFTER INSERT OR UPDATE ON workers
	FOR EACH ROW EXECUTE FUNCTION worker_rematch_notice_trg();

-- Is any worker of kind p_need serving p_region free now? (one GIN probe)
CREATE OR REPLACE FUNCTION rematch_free_worker(p_region text, p_need text) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT EXISTS (SELECT 1 FROM workers w
	               WHERE w.regions @> ARRAY[p_region] AND w.kind = p_need
	                 AND w.active AND NOT w.on_leave AND w.open_count < w.capacity)
$$;

-- Every (region, need) with an unassigned assignment, with its oldest: a skip
-- scan of assignments_unassigned_pair, one probe per pair.
CREATE OR REPLACE FUNCTION rematch_pairs_all() RETURNS TABLE (region text, need text, oldest timestamptz)
LANGUAGE sql STABLE AS $$
	WITH RECURSIVE p AS (
		(SELECT a.region, a.need, a.created_at FROM assignments a WHERE a.status = 'unassigned'
		 ORDER BY a.region, a.need, a.created_at LIMIT 1)
		UNION ALL
		SELECT n.* FROM p, LATERAL (
			SELECT a.region, a.need, a.created_at FROM assignments a
			WHERE a.status = 'unassigned' AND (a.region, a.need) > (p.region, p.need)
			ORDER BY a.region, a.need, a.created_at LIMIT 1) n
	)
	SELECT * FROM p
$$;

-- The oldest unassigned assignment of a pair after (p_at, p_id) that some
-- free worker could take (kind, region, a shared language, and no decline or
-- expiry of this assignment by that worker), locked; NULL when none. Runs
-- only for pairs where rematch_free_worker() said someone is free.
CREATE OR REPLACE FUNCTION rematch_next(p_region text, p_need text, p_at timestamptz, p_id uuid)
RETURNS assignments LANGUAGE sql AS $$
	SELECT x.* FROM assignments x
	WHERE x.status = 'unassigned' AND x.region = p_region AND x.need = p_need
	  AND (x.created_at, x.id) > (p_at, p_id)
	  AND EXISTS (SELECT 1 FROM workers c
	              WHERE c.regions @> ARRAY[x.region] AND c.kind = x.need
	                AND c.active AND NOT c.on_leave AND c.open_count < c.capacity
	                AND c.languages && x.languages
	                AND NOT EXISTS (SELECT 1 FROM offers o
	                                WHERE o.assignment_id = x.id AND o.worker_id = c.id
	                                  AND o.outcome IN ('declined', 'expired')))
	ORDER BY x.created_at, x.id LIMIT 1
	FOR UPDATE OF x SKIP LOCKED
$$;

-- The pairs to look at, oldest waiting first: every pair (p_full), or those
-- the notices name (the notices taken are deleted: this transaction owns
-- them; SKIP LOCKED leaves other runs' notices to them).
CREATE OR REPLACE FUNCTION rematch_pairs(p_full boolean) RETURNS rematch_pair[]
LANGUAGE plpgsql AS $$
DECLARE
	pairs rematch_pair[];
BEGIN
	IF p_full THEN
		SELECT array_agg(ROW(p.region, p.need, p.oldest)::rematch_pair ORDER BY p.oldest)
		INTO pairs FROM rematch_pairs_all() p;
		RETURN pairs;
	END IF;
	WITH gone AS (
		DELETE FROM rematch_notices WHERE id IN (
			SELECT id FROM rematch_notices ORDER BY id LIMIT 1000 FOR UPDATE SKIP LOCKED)
		RETURNING region, need
	)
	SELECT array_agg(ROW(g.region, g.need, o.created_at)::rematch_pair ORDER BY o.created_at)
	INTO pairs
	FROM (SELECT DISTINCT region, need FROM gone) g
	CROSS JOIN LATERAL (SELECT a.created_at FROM assignments a
	                    WHERE a.status = 'unassigned' AND a.region = g.region AND a.need = g.need
	                    ORDER BY a.created_at LIMIT 1) o;
	RETURN pairs;
END $$;

-- Re-match what the notices point at (p_full: every pair instead), oldest
-- first, at most p_limit attempts. Returns {"offered", "attempts", "probes",
-- "busy", "more"}: "more" when the limit cut the pass short (the pair's
-- notice is put back for the next run).
CREATE OR REPLACE FUNCTION rematch_run(p_full boolean, p_limit integer DEFAULT 100) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	sys jsonb := job_begin('rematch');
	lim integer := greatest(coalesce(p_limit, 100), 1);
	pairs rematch_pair[];
	pr rematch_pair;
	a assignments;
	r assignments;
	last_at timestamptz;
	last_id uuid;
	offered integer := 0;
	attempts integer := 0;
	probes integer := 0;
	busy integer := 0;
	more boolean := false;
	done uuid[] := '{}';
	aid uuid;
BEGIN
	pairs := rematch_pairs(p_full);
	FOREACH pr IN ARRAY coalesce(pairs, '{}') LOOP
		probes := probes + 1;
		IF p_full THEN
			-- Changes made with triggers off left the matcher's index behind.
			PERFORM worker_match_slots_repair(pr.region, pr.need);
		END IF;
		CONTINUE WHEN NOT rematch_free_worker(pr.region, pr.need);
		-- One run per pair at a time, across daemons: two runs working one
		-- pair side by side each skip the other's locked workers, and one
		-- could offer a younger assignment while an older one waits. The
		-- run holding the pair goes on; this one leaves a notice and
		-- counts it busy, so its daemon comes back shortly.
		IF NOT pg_try_advisory_xact_lock(hashtextextended('rematch:' || pr.region || ':' || pr.need, 0)) THEN
			busy := busy + 1;
			INSERT INTO rematch_notices (region, need) VALUES (pr.region, pr.need);
			CONTINUE;
		END IF;
		last_at := '-infinity';
		last_id := '00000000-0000-0000-0000-000000000000';
		LOOP
			IF attempts >= lim THEN
				more := true;
				INSERT INTO rematch_notices (region, need) VALUES (pr.region, pr.need);
				EXIT;
			END IF;
			a := rematch_next(pr.region, pr.need, last_at, last_id);
			EXIT WHEN a.id IS NULL;
			last_at := a.created_at;
			last_id := a.id;
			attempts := attempts + 1;
			-- One sub-transaction per assignment: a busy candidate or a
			-- deadlock undoes only this one, which is retried soon.
			BEGIN
				r := match_assignment(a.id);
				IF r.status = 'offered' THEN
					offered := offered + 1;
					done := done || a.id;
				END IF;
			EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
				busy := busy + 1;
				INSERT INTO rematch_notices (region, need) VALUES (pr.region, pr.need);
				EXIT;
			END;
			probes := probes + 1;
			EXIT WHEN NOT rematch_free_worker(pr.region, pr.need);
		END LOOP;
		EXIT WHEN more;
	END LOOP;
	-- Audit last (the chain head is the last lock a transaction takes).
	FOREACH aid IN ARRAY done LOOP
		PERFORM audit_write(sys, 'rematch', 'assignment.rematch', 'assignment', aid::text, 'ok');
	END LOOP;
	RETURN jsonb_build_object('offered', offered, 'attempts', attempts, 'probes', probes,
	                          'busy', busy, 'more', more);
END $$;

