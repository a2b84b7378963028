-- 0080_match_slots.sql - the matcher's ordered candidate index (issue 12).
--
-- Owns: table worker_match_slots and its index. The code that keeps it (the
-- workers trigger) and reads it (match_candidate) is in
-- sql/functions/05_matching.sql.
-- Must never: hold a function body, or hold a row for a worker who cannot
-- take an offer now (inactive, on leave, full).
--
-- Why a table: the candidate order (load = open_count / capacity, then idle
-- longest, then id) must be read from an index per (region, kind) so the
-- matcher takes the first free row instead of sorting every candidate of the
-- region. A worker serves an array of regions, and a b-tree cannot index one
-- entry per array element, so each free worker has one row here per region it
-- serves, carrying the order columns; the trigger on workers rewrites them in
-- the transaction that changes the worker (which holds the worker's row lock).
CREATE TABLE worker_match_slots (
	worker_id        uuid NOT NULL REFERENCES workers(id) ON DELETE CASCADE,
	region           text NOT NULL,
	kind             text NOT NULL,
	load             numeric NOT NULL,
	last_assigned_at timestamptz,
	PRIMARY KEY (worker_id, region)
);
CREATE INDEX worker_match_slots_order ON worker_match_slots
	(region, kind, load, last_assigned_at NULLS FIRST, worker_id);

INSERT INTO worker_match_slots (worker_id, region, kind, load, last_assigned_at)
SELECT DISTINCT ON (w.id, r) w.id, r, w.kind, w.open_count::numeric / w.capacity, w.last_assigned_at
FROM workers w CROSS JOIN LATERAL unnest(w.regions) r
WHERE w.active AND NOT w.on_leave AND w.open_count < w.capacity;

-- Every offer and every freed slot rewrites the worker's row (open_count,
-- last_assigned_at, neither indexed): room on the page keeps those updates
-- HOT, so they do not add entries to the workers' five indexes (two GIN).
ALTER TABLE workers SET (fillfactor = 80);

DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'referrald_app') THEN
		EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON worker_match_slots TO referrald_app';
	END IF;
END $$;
