-- 0040_followup.sql - schema of "follow-up, continued" (issue 11): working
-- calendars, policy clocks and reminders, re-matching notices, deadline
-- holds and reminders, escalation levels, history reasons.
--
-- Owns: these tables, columns and indexes (the code is in
-- sql/functions/40_calendars.sql, 41_rematch.sql, 42_deadline_steps.sql).
-- Must never: hold a function body (functions are re-applied from
-- sql/functions/ after every migration).

-- Working calendars: {"mon": ["09:00", "18:00"], ..., "sun": []}, each day an
-- even list of HH:MM, pairs ascending and not overlapping ("24:00" may end a
-- day); holidays are local dates.
CREATE TABLE org_calendars (
	organisation_id  uuid PRIMARY KEY REFERENCES organisations(id),
	timezone         text NOT NULL CHECK (length(timezone) BETWEEN 1 AND 64),
	hours            jsonb NOT NULL,
	holidays         date[] NOT NULL DEFAULT '{}',
	updated_at       timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE deadline_policies
	ADD COLUMN clock text NOT NULL DEFAULT 'wall' CHECK (clock IN ('wall', 'working')),
	ADD COLUMN remind_before interval CHECK (remind_before > interval '0');

-- Left by every change after which a candidate may exist (one row per
-- (region, kind) the changed worker serves), drained by the re-matching job.
CREATE TABLE rematch_notices (
	id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	region      text NOT NULL,
	need        text NOT NULL,
	created_at  timestamptz NOT NULL DEFAULT now()
);

-- The re-matching pass: a skip scan over (region, need), oldest first in each.
CREATE INDEX assignments_unassigned_pair ON assignments (region, need, created_at, id)
	WHERE status = 'unassigned';

CREATE TYPE rematch_pair AS (region text, need text, oldest timestamptz);

ALTER TABLE deadlines
	ADD COLUMN clock text NOT NULL DEFAULT 'wall' CHECK (clock IN ('wall', 'working')),
	ADD COLUMN remind_at timestamptz,
	ADD COLUMN reminded_at timestamptz,
	-- On hold: paused_at is set, held_left is the time (on the deadline's
	-- clock) it had left, and due_at is parked far ahead so the sweeper,
	-- which reads only due_at, leaves it alone. held_total sums finished holds.
	ADD COLUMN paused_at timestamptz,
	ADD COLUMN held_left interval,
	ADD COLUMN held_total interval NOT NULL DEFAULT interval '0';

CREATE INDEX deadlines_remind_due ON deadlines (remind_at)
	WHERE state = 'pending' AND reminded_at IS NULL AND remind_at IS NOT NULL;
CREATE INDEX deadlines_pending_kind ON deadlines (kind, due_at) WHERE state = 'pending';

-- Level 1 is the row the sweeper creates; level 2 is recorded on it.
ALTER TABLE escalations
	ADD COLUMN level integer NOT NULL DEFAULT 1 CHECK (level IN (1, 2)),
	ADD COLUMN level2_at timestamptz,
	ADD CHECK ((level = 2) = (level2_at IS NOT NULL));
CREATE INDEX escalations_level1_open ON escalations (created_at)
	WHERE reason = 'deadline_missed' AND resolved_at IS NULL AND level2_at IS NULL;
CREATE INDEX escalations_open ON escalations (level) WHERE resolved_at IS NULL;

-- The reason of a change (decline, hold, fail, reassignment) in the history.
ALTER TABLE assignment_history ADD COLUMN reason text CHECK (length(reason) <= 500);

DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'referrald_app') THEN
		EXECUTE 'GRANT SELECT, INSERT, UPDATE ON org_calendars TO referrald_app';
		EXECUTE 'GRANT SELECT, INSERT, DELETE ON rematch_notices TO referrald_app';
	END IF;
END $$;
