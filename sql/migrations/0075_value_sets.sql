-- 0075_value_sets.sql - the protocol's closed value sets, once each, as domains.
--
-- Owns: one CREATE DOMAIN per value set (need, urgency, statuses, outcomes,
-- ...), the source the C tables (daemon/vocab.c) and the spec's enums
-- (proto/openapi.yaml) are checked against (tests/integration/sql_value_sets.bats),
-- and the columns that hold them, which take the domain as their type in
-- place of the CHECK (x IN (...)) each table had written out again.
-- Must never: hold a value the protocol does not name (deadline state 'void'
-- and the offer outcomes are internal and stay out of the spec's enums).
--
-- Sets the database never stores (report grouping, completion outcomes, fail
-- reasons) are domains too, so the one list is here for every set.
--
-- Changing a column's type is refused while a policy, a view or a trigger's
-- WHEN names the column. Those all live in sql/functions/ and are created
-- again by the functions step that follows every migration (the same
-- migrate run): they are dropped here first. In between, row-level security
-- admits no row (no policy), never more.

CREATE DOMAIN need AS text CHECK (VALUE IN ('harm_reduction', 'legal_support'));
CREATE DOMAIN urgency AS text CHECK (VALUE IN ('normal', 'urgent'));
CREATE DOMAIN gender AS text CHECK (VALUE IN ('f', 'm', 'x'));
CREATE DOMAIN subject_role AS text CHECK (VALUE IN ('office', 'worker', 'supervisor', 'admin'));
CREATE DOMAIN referral_status AS text CHECK (VALUE IN ('open', 'closed', 'withdrawn'));
CREATE DOMAIN assignment_status AS text CHECK (VALUE IN ('unassigned', 'offered', 'accepted',
	'declined', 'expired', 'in_progress', 'on_hold', 'completed', 'failed', 'cancelled',
	'reassigned'));
CREATE DOMAIN event_type AS text CHECK (VALUE IN ('contact_attempt', 'contact_made',
	'service_delivered', 'note'));
CREATE DOMAIN completion_outcome AS text CHECK (VALUE IN ('linked_to_services', 'engaged',
	'declined_services', 'other'));
-- An assignment's outcome: how it was completed, or 'failed'.
CREATE DOMAIN assignment_outcome AS text CHECK (VALUE IN ('linked_to_services', 'engaged',
	'declined_services', 'other', 'failed'));
CREATE DOMAIN fail_reason AS text CHECK (VALUE IN ('lost_contact', 'client_declined', 'detained',
	'other'));
CREATE DOMAIN deadline_kind AS text CHECK (VALUE IN ('accept', 'first_contact', 'consultation'));
-- 'void': the thing a deadline waited for can no longer happen (internal).
CREATE DOMAIN deadline_state AS text CHECK (VALUE IN ('pending', 'met', 'missed', 'void'));
CREATE DOMAIN deadline_clock AS text CHECK (VALUE IN ('wall', 'working'));
CREATE DOMAIN supervisor_scope AS text CHECK (VALUE IN ('organisation', 'programme'));
CREATE DOMAIN report_group_by AS text CHECK (VALUE IN ('organisation', 'office', 'worker',
	'region', 'need'));
-- What a consent revocation revokes (POST /v1/referrals/{id}/consent/revoke).
CREATE DOMAIN consent_scope AS text CHECK (VALUE IN ('services', 'report_back'));
CREATE DOMAIN offer_outcome AS text CHECK (VALUE IN ('pending', 'accepted', 'declined', 'expired',
	'withdrawn', 'cancelled', 'reassigned'));

-- What names the columns below, re-created by sql/functions/.
DO $$
DECLARE
	x record;
BEGIN
	FOR x IN SELECT policyname, tablename FROM pg_policies WHERE schemaname = 'public' LOOP
		EXECUTE format('DROP POLICY %I ON %I', x.policyname, x.tablename);
	END LOOP;
	FOR x IN SELECT viewname FROM pg_views WHERE schemaname = 'public' LOOP
		EXECUTE format('DROP VIEW IF EXISTS %I CASCADE', x.viewname);
	END LOOP;
	FOR x IN SELECT t.tgname, t.tgrelid::regclass AS rel FROM pg_trigger t
	         JOIN pg_class c ON c.oid = t.tgrelid
	         JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
	         WHERE NOT t.tgisinternal AND t.tgqual IS NOT NULL AND c.relname <> 'audit_log' LOOP
		EXECUTE format('DROP TRIGGER %I ON %s', x.tgname, x.rel);
	END LOOP;
END $$;

ALTER TABLE workers DROP CONSTRAINT workers_kind_check, ALTER COLUMN kind TYPE need;
ALTER TABLE supervisors DROP CONSTRAINT supervisors_scope_check,
	ALTER COLUMN scope TYPE supervisor_scope;
ALTER TABLE tokens DROP CONSTRAINT tokens_role_check, ALTER COLUMN role TYPE subject_role;
ALTER TABLE sign_in_codes DROP CONSTRAINT sign_in_codes_role_check,
	ALTER COLUMN role TYPE subject_role;
ALTER TABLE deadline_policies DROP CONSTRAINT deadline_policies_need_check,
	DROP CONSTRAINT deadline_policies_urgency_check, DROP CONSTRAINT deadline_policies_clock_check,
	ALTER COLUMN need TYPE need, ALTER COLUMN urgency TYPE urgency,
	ALTER COLUMN clock TYPE deadline_clock;
-- needs stays text[] (array operators do not mix an array of a domain with
-- text[]); each element is held to the domain by the cast.
ALTER TABLE referrals DROP CONSTRAINT referrals_gender_check,
	DROP CONSTRAINT referrals_urgency_check, DROP CONSTRAINT referrals_status_check,
	DROP CONSTRAINT referrals_needs_check,
	ALTER COLUMN gender TYPE gender, ALTER COLUMN urgency TYPE urgency,
	ALTER COLUMN status TYPE referral_status,
	ADD CONSTRAINT referrals_needs_check
		CHECK (cardinality(needs) BETWEEN 1 AND 2 AND needs::need[] IS NOT NULL);
ALTER TABLE assignments DROP CONSTRAINT assignments_need_check,
	DROP CONSTRAINT assignments_urgency_check, DROP CONSTRAINT assignments_status_check,
	ALTER COLUMN need TYPE need, ALTER COLUMN urgency TYPE urgency,
	ALTER COLUMN status TYPE assignment_status, ALTER COLUMN outcome TYPE assignment_outcome;
ALTER TABLE offers DROP CONSTRAINT offers_outcome_check, ALTER COLUMN outcome TYPE offer_outcome;
ALTER TABLE assignment_events DROP CONSTRAINT assignment_events_type_check,
	ALTER COLUMN type TYPE event_type;
ALTER TABLE deadlines DROP CONSTRAINT deadlines_kind_check, DROP CONSTRAINT deadlines_state_check,
	DROP CONSTRAINT deadlines_clock_check,
	ALTER COLUMN kind TYPE deadline_kind, ALTER COLUMN state TYPE deadline_state,
	ALTER COLUMN clock TYPE deadline_clock;
ALTER TABLE assignment_transitions ALTER COLUMN from_status TYPE assignment_status,
	ALTER COLUMN to_status TYPE assignment_status;
ALTER TABLE rematch_notices ALTER COLUMN need TYPE need;
