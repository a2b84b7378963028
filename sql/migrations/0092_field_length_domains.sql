-- 0092_field_length_domains.sql - the length bounds a submission writes,
-- as domains (issue 12).
--
-- Owns: the domains reason_text (at most 500 characters: the free-text
-- reason of an assignment, an offer and a history row), outbox_error (at
-- most 200: an outbox message's last delivery error) and idempotency_key
-- (1 to 128: an office's Idempotency-Key), and the five columns that take
-- them in place of the CHECK each had (0002, 0004).
-- Must never: hold a function body, or loosen a bound.
--
-- Why: PostgreSQL rebuilds a table's CHECK expressions from their stored
-- text and plans them for every statement that writes the table, while a
-- domain's check is planned once per session (its type cache) and is part
-- of the statement's own plan. A submission writes these tables in six
-- statements: the five CHECKs cost about 146,000 of its 7.8 million
-- instructions (callgrind, tests/bench/README). A domain, unlike a trigger,
-- costs nothing per row in the sweeper's and the sender's batch statements.
-- A value over a bound is refused as before (check_violation), now in the
-- domain's name.
CREATE DOMAIN reason_text AS text CHECK (length(VALUE) <= 500);
CREATE DOMAIN outbox_error AS text CHECK (length(VALUE) <= 200);
CREATE DOMAIN idempotency_key AS text CHECK (length(VALUE) BETWEEN 1 AND 128);

ALTER TABLE assignments DROP CONSTRAINT assignments_reason_check,
	ALTER COLUMN reason TYPE reason_text;
ALTER TABLE offers DROP CONSTRAINT offers_reason_check, ALTER COLUMN reason TYPE reason_text;
ALTER TABLE assignment_history DROP CONSTRAINT assignment_history_reason_check,
	ALTER COLUMN reason TYPE reason_text;
ALTER TABLE outbox DROP CONSTRAINT outbox_last_error_check, ALTER COLUMN last_error TYPE outbox_error;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_key_check,
	ALTER COLUMN key TYPE idempotency_key;
