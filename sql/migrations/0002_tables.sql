-- 0002_tables.sql - the data model of referrals, matching, deadlines and audit.
--
-- Owns: every table of the referral protocol, their constraints and indexes.
-- Must never: hold a client's name or any clear-text client secret. The UIC
-- arrives only as an HMAC (uic_hash), contact and notes only as AES-GCM blobs
-- sealed by the daemon ("kid:base64"); the audit log holds ids, never data.
-- Business rules live in the later migrations (state machine, matching, api).

-- Principals ----------------------------------------------------------------

CREATE TABLE organisations (
	id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
	created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE offices (
	id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
	region      text NOT NULL CHECK (region ~ '^[a-z0-9-]{1,64}$'),
	created_at  timestamptz NOT NULL DEFAULT now()
);

-- A client certificate maps to an office by its SHA-256 fingerprint or by its
-- subject (the daemon's configuration says which one it presents).
CREATE TABLE office_certs (
	id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	office_id   uuid NOT NULL REFERENCES offices(id),
	fingerprint text UNIQUE CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
	subject     text UNIQUE CHECK (length(subject) BETWEEN 1 AND 255),
	created_at  timestamptz NOT NULL DEFAULT now(),
	CHECK (fingerprint IS NOT NULL OR subject IS NOT NULL)
);

CREATE TABLE workers (
	id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organisation_id  uuid NOT NULL REFERENCES organisations(id),
	kind             text NOT NULL CHECK (kind IN ('harm_reduction', 'legal_support')),
	handle           text NOT NULL UNIQUE CHECK (length(handle) BETWEEN 1 AND 64),
	regions          text[] NOT NULL,
	languages        text[] NOT NULL,
	capacity         integer NOT NULL CHECK (capacity BETWEEN 0 AND 1000),
	on_leave         boolean NOT NULL DEFAULT false,
	active           boolean NOT NULL DEFAULT true,
	-- Open assignments (offered, accepted, in_progress, on_hold) held now.
	-- Kept by the trigger on assignments so the matcher reads one row per
	-- candidate instead of counting; it changes only under the row's lock.
	open_count       integer NOT NULL DEFAULT 0 CHECK (open_count >= 0),
	-- Idle since: the time of the worker's last offer (NULL = never offered,
	-- idle longest). Ties in load go to the oldest value.
	last_assigned_at timestamptz,
	created_at       timestamptz NOT NULL DEFAULT now(),
	updated_at       timestamptz NOT NULL DEFAULT now()
);
-- The candidate search filters with @> and && on these: GIN keeps its cost
-- proportional to the workers of the client's region, not to all workers.
CREATE INDEX workers_regions_gin ON workers USING gin (regions);
CREATE INDEX workers_languages_gin ON workers USING gin (languages);
CREATE INDEX workers_org ON workers (organisation_id);

CREATE TABLE supervisors (
	id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organisation_id  uuid REFERENCES organisations(id),
	scope            text NOT NULL CHECK (scope IN ('organisation', 'programme')),
	handle           text NOT NULL UNIQUE CHECK (length(handle) BETWEEN 1 AND 64),
	created_at       timestamptz NOT NULL DEFAULT now(),
	CHECK ((scope = 'programme') = (organisation_id IS NULL))
);

CREATE TABLE admins (
	id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	handle      text NOT NULL UNIQUE CHECK (length(handle) BETWEEN 1 AND 64),
	created_at  timestamptz NOT NULL DEFAULT now()
);

-- Only the SHA-256 of a bearer token is kept; the token is shown once.
CREATE TABLE tokens (
	id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	role         text NOT NULL CHECK (role IN ('office', 'worker', 'supervisor', 'admin')),
	subject_id   uuid NOT NULL,
	token_hash   text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
	expires_at   timestamptz NOT NULL,
	revoked_at   timestamptz,
	last_used_at timestamptz,
	created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tokens_subject ON tokens (role, subject_id);

-- Deadlines policy --------------------------------------------------------
-- first_contact_within applies to both kinds. consultation_within is legal
-- support's "first consultation" (meant by a service_delivered event); it is
-- NULL for harm reduction. Urgency changes accept and first contact; the
-- consultation default is 7 days for both urgencies (an admin can shorten the
-- urgent one).
CREATE TABLE deadline_policies (
	need                  text NOT NULL CHECK (need IN ('harm_reduction', 'legal_support')),
	urgency               text NOT NULL CHECK (urgency IN ('normal', 'urgent')),
	accept_within         interval NOT NULL CHECK (accept_within > interval '0'),
	first_contact_within  interval NOT NULL CHECK (first_contact_within > interval '0'),
	consultation_within   interval CHECK (consultation_within > interval '0'),
	updated_at            timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (need, urgency)
);
INSERT INTO deadline_policies (need, urgency, accept_within, first_contact_within, consultation_within)
VALUES ('harm_reduction', 'normal', '24 hours', '72 hours', NULL),
       ('harm_reduction', 'urgent', '4 hours',  '24 hours', NULL),
       ('legal_support',  'normal', '24 hours', '72 hours', '7 days'),
       ('legal_support',  'urgent', '4 hours',  '24 hours', '7 days');

-- Referrals -------------------------------------------------------------------

CREATE TABLE referrals (
	id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	office_id            uuid NOT NULL REFERENCES offices(id),
	external_ref         text NOT NULL CHECK (length(external_ref) BETWEEN 1 AND 64),
	uic_hash             text NOT NULL CHECK (uic_hash ~ '^[0-9a-f]{64}$'),
	birth_year           integer NOT NULL CHECK (birth_year BETWEEN 1900 AND 2200),
	gender               text NOT NULL CHECK (gender IN ('f', 'm', 'x')),
	languages            text[] NOT NULL CHECK (cardinality(languages) >= 1),
	region               text NOT NULL CHECK (region ~ '^[a-z0-9-]{1,64}$'),
	needs                text[] NOT NULL CHECK (cardinality(needs) BETWEEN 1 AND 2
	                         AND needs <@ ARRAY['harm_reduction', 'legal_support']),
	urgency              text NOT NULL CHECK (urgency IN ('normal', 'urgent')),
	consent_services     boolean NOT NULL CHECK (consent_services),
	consent_report_back  boolean NOT NULL,
	consent_obtained_at  timestamptz NOT NULL,
	probation_starts_on  date,
	probation_ends_on    date,
	contact_sealed       text,
	note_sealed          text,
	status               text NOT NULL DEFAULT 'open'
	                         CHECK (status IN ('open', 'closed', 'withdrawn')),
	duplicate_of         uuid REFERENCES referrals(id),
	created_at           timestamptz NOT NULL DEFAULT now(),
	updated_at           timestamptz NOT NULL DEFAULT now(),
	closed_at            timestamptz,
	withdrawn_at         timestamptz,
	withdrawn_reason     text CHECK (length(withdrawn_reason) <= 500),
	UNIQUE (office_id, external_ref)
);
CREATE INDEX referrals_open_uic ON referrals (uic_hash) WHERE status = 'open';
CREATE INDEX referrals_office_created ON referrals (office_id, created_at DESC, id DESC);
CREATE INDEX referrals_created ON referrals (created_at DESC, id DESC);

-- The stored answer of a submission, keyed by office and Idempotency-Key.
-- request_hash is the daemon's keyed hash of the body, never the body.
CREATE TABLE idempotency_keys (
	office_id     uuid NOT NULL REFERENCES offices(id),
	key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 128),
	request_hash  text NOT NULL,
	status        integer NOT NULL,
	response      jsonb NOT NULL,
	created_at    timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (office_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Assignments -----------------------------------------------------------------

-- One row per need of a referral (and one more per reassignment). The same
-- row moves from worker to worker through offers; region, languages, urgency,
-- office and the current worker's organisation are copied here so row-level
-- security and the worker inbox need no join.
CREATE TABLE assignments (
	id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	referral_id       uuid NOT NULL REFERENCES referrals(id),
	office_id         uuid NOT NULL REFERENCES offices(id),
	need              text NOT NULL CHECK (need IN ('harm_reduction', 'legal_support')),
	urgency           text NOT NULL CHECK (urgency IN ('normal', 'urgent')),
	region            text NOT NULL,
	languages         text[] NOT NULL,
	status            text NOT NULL DEFAULT 'unassigned',
	worker_id         uuid REFERENCES workers(id),
	organisation_id   uuid REFERENCES organisations(id),
	offer_expires_at  timestamptz,
	match_reason      jsonb,
	offered_at        timestamptz,
	accepted_at       timestamptz,
	first_contact_at  timestamptz,
	on_hold_at        timestamptz,
	ended_at          timestamptz,
	outcome           text,
	reason            text CHECK (length(reason) <= 500),
	detail_sealed     text,
	replaces          uuid REFERENCES assignments(id),
	replaced_by       uuid REFERENCES assignments(id),
	created_at        timestamptz NOT NULL DEFAULT now(),
	updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assignments_referral ON assignments (referral_id);
CREATE INDEX assignments_worker ON assignments (worker_id, created_at DESC, id DESC);
CREATE INDEX assignments_org ON assignments (organisation_id, created_at DESC, id DESC);
CREATE INDEX assignments_created ON assignments (created_at DESC, id DESC);
CREATE INDEX assignments_unassigned ON assignments (region) WHERE status = 'unassigned';

-- Each offer of an assignment to one worker, and how it ended. The matcher
-- skips workers with a declined or expired offer for the same assignment.
CREATE TABLE offers (
	id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	assignment_id  uuid NOT NULL REFERENCES assignments(id),
	worker_id      uuid NOT NULL REFERENCES workers(id),
	offered_at     timestamptz NOT NULL DEFAULT now(),
	expires_at     timestamptz NOT NULL,
	outcome        text NOT NULL DEFAULT 'pending'
	                   CHECK (outcome IN ('pending', 'accepted', 'declined', 'expired',
	                                      'withdrawn', 'cancelled', 'reassigned')),
	ended_at       timestamptz,
	reason         text CHECK (length(reason) <= 500),
	match_reason   jsonb NOT NULL
);
-- Never two live offers for one assignment.
CREATE UNIQUE INDEX offers_one_pending ON offers (assignment_id) WHERE outcome = 'pending';
CREATE INDEX offers_assignment_worker ON offers (assignment_id, worker_id);
CREATE INDEX offers_worker ON offers (worker_id, offered_at);

CREATE TABLE assignment_events (
	id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	assignment_id  uuid NOT NULL REFERENCES assignments(id),
	type           text NOT NULL CHECK (type IN ('contact_attempt', 'contact_made',
	                                             'service_delivered', 'note')),
	at             timestamptz NOT NULL,
	outcome        text CHECK (length(outcome) <= 64),
	detail_sealed  text,
	actor_role     text NOT NULL,
	actor_id       uuid,
	created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assignment_events_assignment ON assignment_events (assignment_id, at);

-- Deadlines and escalations ---------------------------------------------------

CREATE TABLE deadlines (
	id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	kind             text NOT NULL CHECK (kind IN ('accept', 'first_contact', 'consultation')),
	assignment_id    uuid NOT NULL REFERENCES assignments(id),
	offer_id         uuid REFERENCES offers(id),
	worker_id        uuid REFERENCES workers(id),
	organisation_id  uuid REFERENCES organisations(id),
	starts_at        timestamptz NOT NULL DEFAULT now(),
	due_at           timestamptz NOT NULL,
	-- void: the thing it waited for can no longer happen (offer withdrawn,
	-- assignment cancelled or reassigned); excluded from on-time rates.
	state            text NOT NULL DEFAULT 'pending'
	                     CHECK (state IN ('pending', 'met', 'missed', 'void')),
	met_at           timestamptz,
	elapsed          interval,
	missed_at        timestamptz,
	escalated        boolean NOT NULL DEFAULT false,
	created_at       timestamptz NOT NULL DEFAULT now()
);
-- The sweeper reads only this index: its cost follows what is due.
CREATE INDEX deadlines_due_pending ON deadlines (due_at) WHERE state = 'pending';
CREATE INDEX deadlines_assignment ON deadlines (assignment_id, kind);
CREATE INDEX deadlines_org_due ON deadlines (organisation_id, due_at);
CREATE UNIQUE INDEX deadlines_one_pending ON deadlines (assignment_id, kind) WHERE state = 'pending';

CREATE TABLE escalations (
	id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	reason           text NOT NULL CHECK (reason IN ('deadline_missed', 'unassigned')),
	deadline_id      uuid UNIQUE REFERENCES deadlines(id),
	assignment_id    uuid NOT NULL REFERENCES assignments(id),
	-- NULL: no organisation could take it (unassigned): programme supervisors
	-- and supervisors of organisations serving the region see it.
	organisation_id  uuid REFERENCES organisations(id),
	created_at       timestamptz NOT NULL DEFAULT now(),
	resolved_at      timestamptz,
	CHECK ((reason = 'deadline_missed') = (deadline_id IS NOT NULL))
);
-- One open "unassigned" escalation per assignment, however often matching fails.
CREATE UNIQUE INDEX escalations_one_unassigned ON escalations (assignment_id)
	WHERE reason = 'unassigned' AND resolved_at IS NULL;
CREATE INDEX escalations_org ON escalations (organisation_id, created_at DESC);

-- Webhooks and the transactional outbox --------------------------------------

CREATE TABLE webhooks (
	id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	url              text NOT NULL CHECK (url ~ '^https://' AND length(url) <= 2048),
	events           text[] NOT NULL,
	secret_sealed    text NOT NULL,
	organisation_id  uuid REFERENCES organisations(id),
	office_id        uuid REFERENCES offices(id),
	active           boolean NOT NULL DEFAULT true,
	created_at       timestamptz NOT NULL DEFAULT now(),
	CHECK (organisation_id IS NULL OR office_id IS NULL)
);

-- Events carry ids and a detail_url only (never client data). organisation_id
-- and office_id say whose webhooks receive it.
CREATE TABLE outbox (
	id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	type             text NOT NULL,
	payload          jsonb NOT NULL,
	organisation_id  uuid,
	office_id        uuid,
	created_at       timestamptz NOT NULL DEFAULT now(),
	delivered_at     timestamptz,
	attempts         integer NOT NULL DEFAULT 0,
	next_attempt_at  timestamptz NOT NULL DEFAULT now(),
	last_error       text CHECK (length(last_error) <= 200)
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL;

-- Audit (the chain itself is built in 0003_audit.sql) -------------------------

CREATE TABLE audit_log (
	seq          bigint PRIMARY KEY,
	at           timestamptz NOT NULL,
	actor_role   text NOT NULL,
	actor_id     text,
	action       text NOT NULL,
	object_type  text,
	object_id    text,
	outcome      text NOT NULL CHECK (outcome IN ('ok', 'denied', 'error')),
	request_id   text,
	prev_hash    bytea NOT NULL,
	hash         bytea NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_object ON audit_log (object_id);

-- The single row every audit insert serialises on (see 0003_audit.sql).
CREATE TABLE audit_chain_head (
	one       boolean PRIMARY KEY DEFAULT true CHECK (one),
	last_seq  bigint NOT NULL,
	last_hash bytea NOT NULL
);
INSERT INTO audit_chain_head (one, last_seq, last_hash) VALUES (true, 0, '\x'::bytea || decode(repeat('00', 32), 'hex'));
