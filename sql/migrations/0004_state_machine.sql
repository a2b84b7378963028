-- 0004_state_machine.sql - the assignment status machine as data.
--
-- Owns: assignment_transitions (the only allowed status changes; the guard
-- trigger of sql/functions/04_state_machine.sql refuses any other, whoever
-- makes it) and assignment_history (every transition with who, when and the
-- request id).
-- Must never: hold client data.

-- The machine ------------------------------------------------------------------

CREATE TABLE assignment_transitions (
	from_status  text NOT NULL,
	to_status    text NOT NULL,
	by_whom      text NOT NULL,
	PRIMARY KEY (from_status, to_status)
);

-- declined/expired -> offered|unassigned is the "new offer to the next
-- worker" of the brief: the same row goes on to the next candidate, in the
-- same transaction as the decline or the expiry.
INSERT INTO assignment_transitions (from_status, to_status, by_whom) VALUES
	('unassigned',  'offered',     'matcher or supervisor'),
	('offered',     'accepted',    'worker, before offer_expires_at'),
	('offered',     'declined',    'worker, with reason'),
	('offered',     'expired',     'sweeper; also the matcher when the worker goes on leave'),
	('declined',    'offered',     'matcher: next candidate'),
	('declined',    'unassigned',  'matcher: no candidate left'),
	('expired',     'offered',     'matcher: next candidate'),
	('expired',     'unassigned',  'matcher: no candidate left'),
	('accepted',    'in_progress', 'first contact recorded'),
	('accepted',    'on_hold',     'worker'),
	('in_progress', 'on_hold',     'worker'),
	('on_hold',     'in_progress', 'worker (resume)'),
	('in_progress', 'completed',   'worker, with outcome'),
	('in_progress', 'failed',      'worker, with reason'),
	('unassigned',  'cancelled',   'referral withdrawn'),
	('offered',     'cancelled',   'referral withdrawn'),
	('accepted',    'cancelled',   'referral withdrawn'),
	('in_progress', 'cancelled',   'referral withdrawn'),
	('on_hold',     'cancelled',   'referral withdrawn'),
	('unassigned',  'reassigned',  'supervisor'),
	('offered',     'reassigned',  'supervisor'),
	('accepted',    'reassigned',  'supervisor'),
	('in_progress', 'reassigned',  'supervisor'),
	('on_hold',     'reassigned',  'supervisor');

ALTER TABLE assignments ADD CHECK (status IN ('unassigned', 'offered', 'accepted', 'declined',
	'expired', 'in_progress', 'on_hold', 'completed', 'failed', 'cancelled', 'reassigned'));

CREATE TABLE assignment_history (
	id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	assignment_id  uuid NOT NULL REFERENCES assignments(id),
	from_status    text,
	to_status      text NOT NULL,
	worker_id      uuid,
	actor_role     text NOT NULL,
	actor_id       text,
	request_id     text,
	at             timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX assignment_history_assignment ON assignment_history (assignment_id, id);
