-- 0093_worker_domains.sql - a worker's bounds as domains (issue 12).
--
-- Owns: the domains worker_handle (1 to 64 characters), worker_capacity
-- (0 to 1000) and worker_open_count (never below 0), and the three workers
-- columns that take them in place of their CHECKs (0002).
-- Must never: hold a function body, or loosen a bound.
--
-- Why: every offer updates its worker's load in a statement of its own, and
-- PostgreSQL rebuilt the table's three CHECKs from their stored text and
-- planned them for each: about 149,000 of a submission's 7.7 million
-- instructions (two offers; callgrind, tests/bench/README). A domain's check
-- is planned once per session. As in 0092 (and 0075), changing the type
-- rewrites the table once; a value out of bounds is refused as before
-- (check_violation), now in the domain's name.
--
-- The slots trigger's former WHEN named open_count and capacity, which a
-- type change refuses: it is dropped here and created again, without a
-- WHEN, by the functions step that follows every migration (the same
-- migrate run; sql/functions/05_matching.sql). A worker written in between
-- has its slots put right by the re-matching pass (worker_match_slots_repair).
DROP TRIGGER IF EXISTS worker_match_slots_upd ON workers;
CREATE DOMAIN worker_handle AS text CHECK (length(VALUE) BETWEEN 1 AND 64);
CREATE DOMAIN worker_capacity AS integer CHECK (VALUE BETWEEN 0 AND 1000);
CREATE DOMAIN worker_open_count AS integer CHECK (VALUE >= 0);
ALTER TABLE workers DROP CONSTRAINT workers_handle_check,
	DROP CONSTRAINT workers_capacity_check, DROP CONSTRAINT workers_open_count_check,
	ALTER COLUMN handle TYPE worker_handle, ALTER COLUMN capacity TYPE worker_capacity,
	ALTER COLUMN open_count TYPE worker_open_count;
